#!/usr/bin/env bash
# Builds the OCI image `bpftree:VERSION` (and `bpftree:latest`, unless TAG is given) with podman (or buildah) without pulling
# anything: the image is assembled `FROM scratch` out of this machine's files, the bpftree that
# scripts/install.sh installs (Swift runtime linked in) and the shared libraries it needs as ldd lists
# them (libbpf, libyaml, libelf, zlib, the C and C++ runtimes and the dynamic loader).
# Usage: scripts/build-image.sh [TAG]   (default bpftree:VERSION; BUILDER=buildah to use buildah;
# INSTALLED=DIR takes bpftree from DIR/usr/local instead of running scripts/install.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
builder="${BUILDER:-podman}"
context=$(mktemp -d /tmp/bpftree-image-XXXXXX)
trap 'rm -rf "$context"' EXIT
if [ -z "${INSTALLED:-}" ]; then
    DESTDIR="$context/install" ./scripts/install.sh /usr/local >/dev/null
    INSTALLED="$context/install"
fi
binary="$INSTALLED/usr/local/bin/bpftree"
version="$("$binary" --version)"
tag="${1:-bpftree:$version}"
tags=(-t "$tag")
[ $# -gt 0 ] || tags+=(-t bpftree:latest)
rootfs="$context/rootfs"
install -d "$rootfs/usr/local/bin" "$rootfs/etc/bpftree/manifests" "$rootfs/etc/bpftree/policies" "$rootfs/sys/fs/bpf" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
cp -a "$INSTALLED/usr/local/." "$rootfs/usr/local/"
# Each library at the path the loader finds it at, symbolic links resolved.
ldd "$binary" | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}' | while read -r library; do
    install -D -m 0755 "$(readlink -f "$library")" "$rootfs$library"
done
cp policies/default.yaml "$rootfs/etc/bpftree/policies/default.yaml"
printf 'root:x:0:0:root:/:/usr/local/bin/bpftree\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\n' > "$rootfs/etc/group"
cp Containerfile "$context/Containerfile"
case "$builder" in
    # One image, no intermediate layers left behind (--layers=false).
    podman) podman build --pull=never --no-cache --layers=false -f "$context/Containerfile" "${tags[@]}" "$context" >&2 ;;
    buildah) buildah build --pull=never --no-cache --layers=false -f "$context/Containerfile" "${tags[@]}" "$context" >&2 ;;
    *) echo "BUILDER must be podman or buildah" >&2; exit 64 ;;
esac
echo "$tag"
