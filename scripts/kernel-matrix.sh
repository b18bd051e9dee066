#!/usr/bin/env bash
# The kernel matrix: boots Debian's own kernels (scripts/kernel-matrix/kernels) under qemu and runs the
# scenario set (scripts/kernel-matrix/scenarios.sh) with the release bpftree inside each guest, then prints
# a kernel x scenario table and checks each cell against scripts/kernel-matrix/expected (a scenario a
# kernel cannot run must be refused before anything changes, with the text given there).
# The guest sees this machine's / read-only over virtio-9p (tmpfs on /tmp, /var and /root), so it runs
# the very binaries and tools built and installed here; results come back through a second, writable share.
# Needs root (apt-get, mounts in the guest are its own). qemu runs TCG only: this machine's /dev/kvm does
# not run stock kernels.
# Usage: scripts/kernel-matrix.sh [--kernels 6.1,6.12,7.2] [--scenarios NAME,...] [--record]
#   --record writes the table into docs/kernels.md (between its matrix markers).
# Environment: BPFTREE_KERNEL_CACHE (default .build-kernels) keeps the kernels and initramfs between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
here="$root/scripts/kernel-matrix"
cache="${BPFTREE_KERNEL_CACHE:-$root/.build-kernels}"
kernels="" scenarios="" record=0
while (($#)); do
    case "$1" in
    --kernels) kernels="$2"; shift 2 ;;
    --scenarios) scenarios="$2"; shift 2 ;;
    --record) record=1; shift ;;
    *) echo "usage: $0 [--kernels 6.1,6.12,...] [--scenarios NAME,...] [--record]" >&2; exit 64 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "kernel-matrix.sh needs root" >&2; exit 1; }

log() { printf '[kernel-matrix %(%T)T] %s\n' -1 "$*" >&2; }

# --- what the host needs --------------------------------------------------------------------------
need=()
for package in qemu-system-x86 busybox-static kmod cpio; do
    dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
done
if ((${#need[@]})); then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

log "building the release bpftree and the test objects"
swift build -c release --static-swift-stdlib --product bpftree >/dev/null
bin="$(swift build -c release --static-swift-stdlib --show-bin-path)/bpftree"
swift build --build-tests >/dev/null  # the escape tests run in the guests too
tests="$(swift build --show-bin-path)/bpftreePackageTests.xctest"
mkdir -p "$cache/objects"
./scripts/build-bpf.sh "$cache/objects" >/dev/null
compgen -G "$here/bpf/*.bpf.c" >/dev/null && ./scripts/build-bpf.sh "$cache/objects" "$here"/bpf/*.bpf.c >/dev/null

# --- kernels, from a private apt index (the system's apt configuration is not touched) --------------
apt_dir="$cache/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=/dev/null
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir" -o Dir::Cache::archives="$apt_dir/archives"
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
suites=$(awk '!/^#/ && NF { print $2 }' "$here/kernels" | sort -u)
: > "$apt_dir/sources.list.new"
for suite in $suites; do
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
        >> "$apt_dir/sources.list.new"
done
mv "$apt_dir/sources.list.new" "$apt_dir/sources.list"
index_fresh() { [ -n "$(find "$apt_dir/lists" -maxdepth 1 -name '*Packages*' -mmin -720 2>/dev/null | head -1)" ]; }

# Prints the package to fetch for PINNED: itself when the index has it, else the newest of its series.
resolve_package() {
    local pinned="$1" prefix
    if apt-cache "${apt_opts[@]}" show "$pinned" >/dev/null 2>&1; then echo "$pinned"; return; fi
    # linux-image-6.1.0-50-amd64 -> linux-image-6.1.0-; linux-binary-7.2.13+deb14-amd64 -> linux-binary-7.2.
    prefix=$(sed -E 's/^(linux-[a-z]+-[0-9]+\.[0-9]+)[.+-].*/\1/' <<<"$pinned")
    apt-cache "${apt_opts[@]}" pkgnames "$prefix" | grep -E -e '-amd64$' | grep -v -e cloud -e rt- -e dbg \
        | sort -V | tail -1
}

fetch_kernel() { # NAME SUITE PACKAGE...: extracts into $cache/NAME, prints nothing
    local name="$1" suite="$2" dir="$cache/$1"
    shift 2
    [ -f "$dir/ready" ] && return
    index_fresh || { log "apt index update"; apt-get -qq "${apt_opts[@]}" update; }
    rm -rf "$dir" && mkdir -p "$dir/root"
    local package actual
    for package in "$@"; do
        actual=$(resolve_package "$package")
        [ -n "$actual" ] || { log "no package like $package in $suite"; return 1; }
        [ "$actual" = "$package" ] || log "$package has left $suite: taking $actual"
        log "fetching $actual"
        (cd "$dir" && apt-get -qq "${apt_opts[@]}" download "$actual")
    done
    for deb in "$dir"/*.deb; do dpkg -x "$deb" "$dir/root"; done
    rm -f "$dir"/*.deb
    local vmlinuz release
    vmlinuz=$(find "$dir/root/boot" "$dir/root/usr/lib/modules" "$dir/root/lib/modules" -name 'vmlinuz*' 2>/dev/null | head -1 || true)
    [ -n "$vmlinuz" ] || { log "$name: no vmlinuz in $*"; return 1; }
    release=$(basename "$(find "$dir/root/lib/modules" "$dir/root/usr/lib/modules" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -1 || true)")
    mv "$vmlinuz" "$dir/vmlinuz"
    echo "$release" > "$dir/release"
    local modules
    modules=$(dirname "$(find "$dir/root" -path "*/modules/$release/kernel" -type d | head -1)")
    # Only the modules of the guest's own init are kept: the rest of the package is 500 MB unpacked.
    mkdir -p "$dir/mods/lib/modules"
    mv "$modules" "$dir/mods/lib/modules/$release"
    # From 7.x the image package carries modules.builtin (what is built in), the modules package the rest.
    find "$dir/root" \( -path "*/modules/$release/modules.builtin*" -o -path "*/modules/$release/modules.order" \) \
        -exec cp -t "$dir/mods/lib/modules/$release" {} +
    # The kernel's configuration, for the record of what each kernel has.
    find "$dir/root" "$dir/mods" \( -path "*/boot/config-$release" -o -path "*/modules/$release/config" \) \
        -exec cp {} "$dir/config" \;
    rm -rf "$dir/root"
    depmod -b "$dir/mods" "$release"
    touch "$dir/ready"
}

# The guest's initramfs: busybox, the modules that mount the host's / (and their dependencies,
# uncompressed for busybox's insmod), and init.
build_initramfs() { # NAME
    local dir="$cache/$1" release work
    release=$(cat "$dir/release")
    [ -f "$dir/initramfs.cpio.gz" ] && [ "$dir/initramfs.cpio.gz" -nt "$here/init" ] && return
    work=$(mktemp -d)
    mkdir -p "$work/bin" "$work/lib/modules"
    cp /bin/busybox "$work/bin/busybox"
    : > "$work/modules"
    local module path n=0
    for module in virtio_pci 9pnet_virtio 9p overlay; do
        while read -r _ path; do
            [ -n "$path" ] || continue
            grep -qxF "$path" "$work/modules.seen" 2>/dev/null && continue
            echo "$path" >> "$work/modules.seen"
            n=$((n + 1))
            case "$path" in
            *.xz) xz -dc "$path" > "$work/lib/modules/$n.ko" ;;
            *.zst) zstd -qdc "$path" > "$work/lib/modules/$n.ko" ;;
            *) cp "$path" "$work/lib/modules/$n.ko" ;;
            esac
            echo "/lib/modules/$n.ko" >> "$work/modules"
        done < <(modprobe -d "$dir/mods" -S "$release" --show-depends "$module" | grep '^insmod ')
    done
    cp "$here/init" "$work/init"
    chmod 0755 "$work/init"
    (cd "$work" && find . ! -name modules.seen | cpio -o -H newc --quiet | gzip -1) > "$dir/initramfs.cpio.gz"
    rm -rf "$work"
}

# --- one guest --------------------------------------------------------------------------------------
run_guest() { # NAME: leaves $out/NAME/{results,console.log}
    local name="$1" dir="$cache/$1" share="$out/$1"
    mkdir -p "$share"
    cat > "$share/job" <<EOF
export BPFTREE_BIN='$bin' BPFTREE_TESTS='$tests' BPFTREE_ROOT='$root' BPFTREE_OBJECTS='$cache/objects'
export MATRIX_KERNEL='$name' MATRIX_MODULES='$dir/mods' MATRIX_CONFIG='$dir/config'
export MATRIX_SCENARIOS='$scenarios' CI='${CI:-}' HOME=/root
# Debian's python3, not a version manager's shim: under TCG every process start counts.
export PATH='/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$(dirname "$(command -v swift)")'
exec /bin/bash '$here/scenarios.sh'
EOF
    local started=$SECONDS
    # -smp 2 with multi-threaded TCG; the guest powers off when done, and the timeout bounds a hang.
    timeout --foreground 900 qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 2048 \
        -nographic -no-reboot -serial "file:$share/console.log" -monitor none \
        -kernel "$dir/vmlinuz" -initrd "$dir/initramfs.cpio.gz" \
        -append "console=ttyS0 panic=-1 quiet loglevel=4 init=/init" \
        -fsdev "local,id=host,path=/,security_model=none,readonly=on,multidevs=remap" \
        -device virtio-9p-pci,fsdev=host,mount_tag=host \
        -fsdev "local,id=out,path=$share,security_model=none" \
        -device virtio-9p-pci,fsdev=out,mount_tag=out \
        -nic none </dev/null >/dev/null 2>"$share/qemu.err" || true
    log "$name ($(cat "$dir/release")): $((SECONDS - started)) s"
}

out=$(mktemp -d /tmp/bpftree-kernel-matrix-XXXXXX)
chmod 0755 "$out"
names=()
while read -r name suite packages; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    if [ -n "$kernels" ] && [[ ",$kernels," != *",$name,"* ]]; then continue; fi
    # shellcheck disable=SC2086
    fetch_kernel "$name" "$suite" $packages
    build_initramfs "$name"
    names+=("$name")
done < "$here/kernels"
((${#names[@]})) || { echo "no kernel selected" >&2; exit 64; }
for name in "${names[@]}"; do run_guest "$name"; done

table=(python3 "$here/table.py" --expected "$here/expected" --out "$out")
[ "$record" -eq 0 ] || table+=(--record "$root/docs/kernels.md")
log "results and logs in $out"
"${table[@]}" "${names[@]}"
