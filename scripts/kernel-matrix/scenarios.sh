#!/bin/bash
# The kernel matrix's scenarios, run inside a guest by kernel-matrix.sh (as root, on the guest's own
# kernel, with this machine's files read-only). Each scenario works on its own scratch bpffs and checks
# its result with tools nobody here wrote (bpftool -j, find, real traffic and calls). It ends in one of:
#   pass     - it did what it says, and the checks held;
#   refused  - bpftree refused it before anything changed (the tree is compared before and after), with
#              the text of its error; kernel-matrix.sh checks that text against its expected file;
#   fail     - anything else.
# Results: one line per scenario in /run/matrix/results (NAME<TAB>OUTCOME<TAB>DETAIL), logs beside it.
set -uo pipefail
cd "$BPFTREE_ROOT"
bin="$BPFTREE_BIN"
objects="$BPFTREE_OBJECTS"
platform=(--policy policies/network.yaml --policy policies/tracing.yaml)
out=/run/matrix
results="$out/results"
: > "$results"
echo "kernel $(uname -r)" > "$out/uname"
# The guest kernel's own modules (veth, netfilter's, ...), for the kernel's request_module: this
# machine's / has none of them, and no /lib/modules to mount them on.
printf '#!/bin/sh\nexec /usr/sbin/modprobe -d %s "$@"\n' "$MATRIX_MODULES" > /run/modprobe
chmod 0755 /run/modprobe
echo /run/modprobe > /proc/sys/kernel/modprobe

# --- helpers (scenarios run in a subshell with set -e) ----------------------------------------------
scratch_bpffs() { # prints a new, private bpffs mount point
    local dir
    dir=$(mktemp -d /tmp/matrix-bpffs-XXXXXX)
    mount -t bpf bpf "$dir"
    echo "$dir"
}
# A text without the scenario's temporary paths, so that the recorded table stays the same run to run.
stable() { sed -E 's|/tmp/matrix-bpffs-[A-Za-z0-9]+|ANCHOR|g; s|/tmp/matrix-[^/ ]*/||g'; }
listing() { (cd "$1" && find . -mindepth 1 -printf '%M %U:%G %i %p\n' | sort); }
# Runs bpftree; when it fails, the tree must be unchanged, and the scenario ends as refused with the
# first 'error:' line. ANCHOR first, then the arguments.
refusable() {
    local anchor="$1" before after status
    shift
    before=$(listing "$anchor")
    status=0
    "$bin" "$@" 2> >(tee /tmp/matrix-stderr >&2) || status=$?
    wait
    [ "$status" -ne 0 ] || return 0
    after=$(listing "$anchor")
    if [ "$before" != "$after" ]; then
        echo "bpftree exited $status and the tree changed:"; diff <(echo "$before") <(echo "$after") || true
        exit 1
    fi
    { grep -m1 '^error' /tmp/matrix-stderr || echo "exit $status"; } | stable > /tmp/matrix-refusal
    exit 3
}
expect_exit() { # CODE COMMAND...: runs the command, which must exit CODE
    local want="$1" status=0
    shift
    "$@" || status=$?
    [ "$status" -eq "$want" ] || { echo "expected exit $want from: $*; got $status"; exit 1; }
}

# An example's manifest with its object beside it (examples/ is read-only here): prints the directory.
example() {
    local dir
    dir=$(mktemp -d "/tmp/matrix-$1-XXXXXX")
    cp "examples/$1"/*.yaml "$dir/"
    local object="${1//-/_}.bpf.o"
    [ ! -f "$objects/$object" ] || cp "$objects/$object" "$dir/"
    echo "$dir"
}
# The u64 at OFFSET (default 0) of KEY's value in the pinned map, summed over CPUs, as bpftool reads it.
counter() {
    bpftool -j map lookup pinned "$1" key $(python3 -c 'import sys; print(" ".join(str(b) for b in int(sys.argv[1]).to_bytes(4, "little")))' "$2") \
        | python3 -c '
import json, sys
entry, offset = json.load(sys.stdin), int(sys.argv[1])
values = [v["value"] for v in entry["values"]] if "values" in entry else [entry["value"]]
print(sum(int.from_bytes(bytes(int(b, 16) for b in v[offset:offset + 8]), "little") for v in values))' "${3:-0}"
}
# A veth pair: veth0 here (10.99.0.1), veth1 in the network namespace "peer" (10.99.0.2).
veth_pair() {
    ip netns add peer
    ip link add veth0 type veth peer name veth1
    ip link set veth1 netns peer
    ip addr add 10.99.0.1/24 dev veth0
    ip link set veth0 up
    ip -n peer addr add 10.99.0.2/24 dev veth1
    ip -n peer link set veth1 up
    ip -n peer link set lo up
}
# COUNT UDP datagrams from the peer namespace to 10.99.0.1:PORT.
send_udp() {
    ip netns exec peer bash -c 'for ((i = 0; i < $1; i++)); do echo x > "/dev/udp/10.99.0.1/$2"; done' sh "$1" "$2"
}
at_least() { # WHAT GOT WANT
    [ "$2" -ge "$3" ] || { echo "$1: $2, expected at least $3"; exit 1; }
}

# --- scenarios --------------------------------------------------------------------------------------

# The README's quick start: examples/ under policies/platform.yaml; the second diff is a no-op.
scenario_examples() {
    local anchor
    anchor=$(scratch_bpffs)
    local args=(-f examples --policy policies/platform.yaml --anchor "$anchor")
    expect_exit 2 "$bin" diff "${args[@]}"
    refusable "$anchor" apply "${args[@]}"
    expect_exit 0 "$bin" diff "${args[@]}"
    bpftool -j map show pinned "$anchor/jobs/A/config" | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert m["type"] == "array", m'
    echo "$(find "$anchor" -mindepth 1 | wc -l) entries; second diff: no change"
}

# examples/job-stats with real cgroups: a cgroup link and a cgroup iterator per cgroup of the job, each
# counting its own cgroup's packets; a removed cgroup's subtree goes with the next apply.
scenario_job_stats() {
    local anchor dir cgroup=/sys/fs/cgroup/matrix-job
    anchor=$(scratch_bpffs)
    dir=$(example job-stats)
    mkdir -p "$cgroup/w1" "$cgroup/w2"
    sed -i 's|forEachCgroup: {path: jobs/A,|forEachCgroup: {path: matrix-job,|' "$dir/job-stats.yaml"
    local args=(-f "$dir" --policy policies/platform.yaml --anchor "$anchor")
    refusable "$anchor" apply "${args[@]}"
    local w sent
    for w in "w1 5" "w2 9"; do
        set -- $w
        sh -c 'echo $$ > "$1/cgroup.procs" && exec python3 -c "
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[1])): s.sendto(b\"x\" * 10, (\"127.0.0.1\", 9))" "$2"' sh "$cgroup/$1" "$2"
        sent=$(awk '$1 == "packets" { print $2 }' "$anchor/jobs/A/$(stat -c %i "$cgroup/$1")/stats")
        [ "$sent" = "$2" ] || { echo "cgroup $1 sent $2 packets, its stats say $sent"; exit 1; }
    done
    [ "$(bpftool -j link show pinned "$anchor/jobs/A/$(stat -c %i "$cgroup/w1")/egress" | python3 -c 'import json,sys; print(json.load(sys.stdin)["type"])')" = cgroup ]
    expect_exit 0 "$bin" diff "${args[@]}"
    local gone
    gone=$(stat -c %i "$cgroup/w2")
    rmdir "$cgroup/w2"
    "$bin" apply "${args[@]}"
    [ ! -e "$anchor/jobs/A/$gone" ] || { echo "the removed cgroup's subtree is still there"; exit 1; }
    echo "2 cgroups counted 5 and 9 packets; the removed one's subtree was pruned"
}

# Tracepoint, raw tracepoint and BTF tracepoint links (examples/exec-count), counting real execs.
scenario_tracepoints() {
    local anchor dir
    anchor=$(scratch_bpffs)
    dir=$(example exec-count)
    refusable "$anchor" apply -f "$dir" "${platform[@]}" --anchor "$anchor"
    local before=() after=() slot
    for slot in 0 1 2; do before+=("$(counter "$anchor/tracing/exec/execs" $slot)"); done
    for _ in 1 2 3 4 5; do /bin/true; done
    for slot in 0 1 2; do
        after+=("$(counter "$anchor/tracing/exec/execs" $slot)")
        at_least "execs seen by slot $slot" "$((after[slot] - before[slot]))" 5
    done
    expect_exit 0 "$bin" diff -f "$dir" "${platform[@]}" --anchor "$anchor"
    echo "5 execs counted by tracepoint, raw_tp and tp_btf links"
}

# Iterator links (examples/task-iter, examples/map-dump): reading the pins runs the programs.
scenario_iterators() {
    local anchor tasks dump
    anchor=$(scratch_bpffs)
    tasks=$(example task-iter)
    dump=$(example map-dump)
    refusable "$anchor" apply -f "$tasks" -f "$dump" "${platform[@]}" --anchor "$anchor"
    grep -q "^$$ $$ " "$anchor/tracing/tasks/all" || { echo "this shell ($$) is not in the task iterator's list"; exit 1; }
    [ "$(sort "$anchor/tracing/counts/dump" | tr '\n' ' ')" = "1 10 2 20 3 30 " ] \
        || { echo "the map iterator printed:"; cat "$anchor/tracing/counts/dump"; exit 1; }
    echo "task and bpf_map_elem iterators read"
}

# XDP (examples/xdp-count) on a veth pair, counting real packets; detached by hand, repaired by apply.
scenario_xdp() {
    local anchor dir id
    anchor=$(scratch_bpffs)
    dir=$(example xdp-count)
    veth_pair
    refusable "$anchor" apply -f "$dir" "${platform[@]}" --anchor "$anchor"
    send_udp 7 9
    at_least "packets received" "$(counter "$anchor/net/edge/received" 0)" 7
    id=$(bpftool -j link show pinned "$anchor/net/edge/ingress" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    bpftool link detach id "$id"
    expect_exit 2 "$bin" diff -f "$dir" "${platform[@]}" --anchor "$anchor"
    "$bin" apply -f "$dir" "${platform[@]}" --anchor "$anchor"
    expect_exit 0 "$bin" diff -f "$dir" "${platform[@]}" --anchor "$anchor"
    echo "7 packets counted; a detached link repaired"
}

# tcx (examples/tcx-filter, Linux 6.6): two programs on veth0's ingress in a declared order.
scenario_tcx() {
    local anchor dir
    anchor=$(scratch_bpffs)
    dir=$(example tcx-filter)
    veth_pair
    refusable "$anchor" apply -f "$dir" "${platform[@]}" --anchor "$anchor"
    send_udp 4 9
    send_udp 3 10
    at_least "packets counted" "$(counter "$anchor/net/tc/counted" 0)" 7
    at_least "packets dropped" "$(counter "$anchor/net/tc/dropped" 0)" 4
    expect_exit 0 "$bin" diff -f "$dir" "${platform[@]}" --anchor "$anchor"
    echo "7 packets counted, 4 to port 9 dropped"
}

# A netfilter link (examples/nf-count, Linux 6.4) at IPv4 input.
scenario_netfilter() {
    local anchor dir
    anchor=$(scratch_bpffs)
    dir=$(example nf-count)
    veth_pair
    refusable "$anchor" apply -f "$dir" "${platform[@]}" --anchor "$anchor"
    send_udp 6 9
    at_least "packets seen at input" "$(counter "$anchor/net/nf/packets" 0)" 6
    echo "6 packets counted at IPv4 input"
}

# An sk_lookup link (examples/sk-lookup-count) in the network namespace /run/netns/blue.
scenario_sk_lookup() {
    local anchor dir
    anchor=$(scratch_bpffs)
    dir=$(example sk-lookup-count)
    ip netns add blue
    ip -n blue link set lo up
    refusable "$anchor" apply -f "$dir" "${platform[@]}" --anchor "$anchor"
    ip netns exec blue python3 -c '
import socket
for _ in range(3): socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9))'
    local total=0 slot
    for slot in 0 1 2; do total=$((total + $(counter "$anchor/net/lookups/counts" $slot))); done
    at_least "lookups" "$total" 3
    echo "3 socket lookups counted in netns blue"
}

# Uprobes (examples/uprobe-count): bash's readline, entered and returned, called by an interactive bash.
scenario_uprobes() {
    local anchor dir
    anchor=$(scratch_bpffs)
    dir=$(example uprobe-count)
    refusable "$anchor" apply -f "$dir" "${platform[@]}" --anchor "$anchor"
    printf 'true\ntrue\ntrue\n' | script -qc '/bin/bash --norc -i' /dev/null >/dev/null 2>&1 || true
    at_least "readline calls" "$(counter "$anchor/tracing/readline/calls" 0)" 3
    at_least "readline returns" "$(counter "$anchor/tracing/readline/calls" 1)" 3
    echo "readline calls and returns counted"
}

# The token (Linux 6.9): root of a new user namespace, with no capability here, applies
# examples/containers/tenant.yaml on a bpffs delegated to it. A kernel without tokens (none of their
# names in its BTF) must refuse --token require instead, before anything changes.
scenario_token() {
    local delegated
    if ! grep -qa BPF_TOKEN_CREATE /sys/kernel/btf/vmlinux; then
        delegated=$(scratch_bpffs)
        refusable "$delegated" apply -f examples/containers/tenant.yaml --anchor "$delegated" --token require
        echo "a kernel without tokens, and bpftree applied with --token require"; exit 1
    fi
    delegated=$(mktemp -d /tmp/matrix-delegated-XXXXXX)
    chmod 755 "$delegated"
    ./scripts/delegated-bpffs.py --maps array:hash:ringbuf "$delegated" -- sh -c '
        "$1" apply -f "$2" --anchor "$3" && "$1" diff -f "$2" --anchor "$3"' \
        sh "$bin" "$PWD/examples/containers/tenant.yaml" "$delegated" > /tmp/token.log 2>&1 || {
        cat /tmp/token.log
        grep -m1 '^error' /tmp/token.log | stable > /tmp/matrix-refusal && exit 3
        exit 1
    }
    echo "applied with a BPF token in a user namespace; the second diff found nothing"
}

# Drift: a pin removed, a mode changed and a ring buffer unpinned by hand are found (diff exits 2) and
# repaired; a map pinned by someone else in the job's directory is left alone (prune: owned).
scenario_drift() {
    local anchor
    anchor=$(scratch_bpffs)
    local args=(-f examples --policy policies/platform.yaml --anchor "$anchor")
    refusable "$anchor" apply "${args[@]}"
    rm "$anchor/platform/seen" "$anchor/jobs/A/stats/events"
    chmod 0666 "$anchor/jobs/A/config"
    bpftool map create "$anchor/jobs/A/stranger" type hash key 4 value 4 entries 8 name stranger
    expect_exit 2 "$bin" diff "${args[@]}"
    "$bin" apply "${args[@]}"
    expect_exit 0 "$bin" diff "${args[@]}"
    [ -e "$anchor/platform/seen" ] && [ -e "$anchor/jobs/A/stats/events" ] || { echo "a removed pin was not made again"; exit 1; }
    [ "$(stat -c %a "$anchor/jobs/A/config")" = 640 ] || { echo "jobs/A/config's mode was not repaired"; exit 1; }
    [ "$(bpftool -j map show pinned "$anchor/jobs/A/stranger" | python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])')" = stranger ] \
        || { echo "a map bpftree did not make is gone"; exit 1; }
    echo "2 removed pins and a mode repaired; a foreign map left alone"
}

# A SIGKILL in the middle of an apply of 3,000 maps, then a rerun that converges and leaves nothing over.
scenario_kill() {
    local anchor dir
    anchor=$(scratch_bpffs)
    dir=$(mktemp -d /tmp/matrix-kill-XXXXXX)
    python3 - "$dir/many.yaml" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("apiVersion: bpftree/v1\nkind: Tree\nmetadata: {name: many}\nspec:\n  root: many\n  entries:\n")
    for d in range(30):
        f.write(f"    d{d}:\n      directory:\n        entries:\n")
        for m in range(100):
            f.write(f"          m{m}: {{map: {{type: array, keySize: 4, valueSize: 8, maxEntries: 1}}}}\n")
PY
    # Killed a moment after the anchor's first entry appears (the maps are staged, then renamed into
    # place); tried again on a fresh bpffs, sooner, when the apply was done by then.
    local delay entries=0 complete=1 pid
    for delay in 0.3 0.15 0.05 0.02 0; do
        "$bin" apply -f "$dir" --anchor "$anchor" >/dev/null 2>&1 &
        pid=$!
        { set +x; } 2>/dev/null
        until [ -n "$(ls -A "$anchor")" ] || ! kill -0 "$pid" 2>/dev/null; do :; done
        set -x
        sleep "$delay"
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        entries=$(find "$anchor" -mindepth 1 | wc -l)
        complete=0
        [ ! -d "$anchor/many" ] || [ "$(find "$anchor/many" -mindepth 2 | wc -l)" -lt 3000 ] || complete=1
        [ "$complete" -eq 1 ] || break
        anchor=$(scratch_bpffs)
    done
    [ "$complete" -eq 0 ] || { echo "every apply was done before its kill"; exit 1; }
    "$bin" apply -f "$dir" --anchor "$anchor" >/dev/null
    expect_exit 0 "$bin" diff -f "$dir" --anchor "$anchor"
    [ "$(find "$anchor/many" -mindepth 2 | wc -l)" -eq 3000 ] || { echo "not 3,000 maps after the rerun"; exit 1; }
    local leftover
    leftover=$(find "$anchor" -mindepth 1 -maxdepth 1 ! -name many ! -name 'bpftree_*' | wc -l)
    [ "$leftover" -eq 0 ] || { echo "left over after the rerun:"; ls -la "$anchor"; exit 1; }
    echo "killed with $entries entries in the anchor; the rerun converged to 3,000 maps"
}

# Tracing attachments of kernel functions (examples/unlink-count): fentry, fexit, kprobe and kretprobe
# on vfs_unlink, counting real unlinks; the BPF LSM's file_open hook and fmod_ret on
# security_file_open, counting real opens. Each link is checked with bpftool, then detached by hand
# and repaired.
scenario_fentry_lsm_kprobe() {
    local anchor dir slot
    anchor=$(scratch_bpffs)
    dir=$(example unlink-count)
    rm "$dir/unlink-multi.yaml"
    # The kprobe one instruction in: past endbr64 (4 bytes) where the kernel has IBT, else past the
    # 5-byte call to __fentry__ that starts every traceable function.
    local offset=5
    ! grep -q '^CONFIG_X86_KERNEL_IBT=y' "$MATRIX_CONFIG" || offset=4
    sed -i "s|kprobe: {function: vfs_unlink}|kprobe: {function: vfs_unlink, offset: $offset}|" "$dir/unlink-count.yaml"
    refusable "$anchor" apply -f "$dir" "${platform[@]}" --anchor "$anchor"
    local before=() after=()
    for slot in 0 1 2 3 5 6; do before[slot]=$(counter "$anchor/tracing/unlink/calls" $slot); done
    for i in 1 2 3 4 5; do : > "/tmp/matrix-unlink-$i"; rm "/tmp/matrix-unlink-$i"; done
    for slot in 0 1 2 3 5 6; do
        after[slot]=$(counter "$anchor/tracing/unlink/calls" $slot)
        at_least "slot $slot" "$((after[slot] - before[slot]))" 5
    done
    local link
    for link in entered exited probed returned opened checked; do
        bpftool -j link show pinned "$anchor/tracing/unlink/$link" > /tmp/link.json
        python3 -c 'import json, sys; l = json.load(open("/tmp/link.json")); assert l["type"] in ("tracing", "perf_event"), l' \
            || { cat /tmp/link.json; exit 1; }
    done
    # Tracing links cannot be detached (EOPNOTSUPP): unpinned, they go with their last reference.
    rm "$anchor/tracing/unlink/checked" "$anchor/tracing/unlink/probed"
    expect_exit 2 "$bin" diff -f "$dir" "${platform[@]}" --anchor "$anchor"
    "$bin" apply -f "$dir" "${platform[@]}" --anchor "$anchor"
    expect_exit 0 "$bin" diff -f "$dir" "${platform[@]}" --anchor "$anchor"
    echo "fentry, fexit, kprobe, kretprobe, lsm and fmod_ret each counted 5 calls; 2 unpinned links repaired"
}

# A kprobe_multi link (CONFIG_FPROBE) matching vfs_unlin*, counting real unlinks.
scenario_kprobe_multi() {
    local anchor dir
    anchor=$(scratch_bpffs)
    dir=$(example unlink-count)
    refusable "$anchor" apply -f "$dir" "${platform[@]}" --anchor "$anchor"
    local before
    before=$(counter "$anchor/tracing/unlink/calls" 4)
    for i in 1 2 3 4 5; do : > "/tmp/matrix-unlink-$i"; rm "/tmp/matrix-unlink-$i"; done
    at_least "kprobe_multi calls" "$(( $(counter "$anchor/tracing/unlink/calls" 4) - before ))" 5
    expect_exit 0 "$bin" diff -f "$dir" "${platform[@]}" --anchor "$anchor"
    echo "a kprobe_multi link on vfs_unlin* counted 5 calls"
}

# The anchor's escape tests (symlinks, renames and foreign pins at the worst moment), on this kernel:
# before Linux 6.5 every pin goes through /proc/self/fd/N/NAME instead of BPF_F_PATH_FD.
scenario_escapes() {
    "$BPFTREE_TESTS" --testing-library swift-testing --filter 'SafetyTests|HostileTreeTests' > "$out/escapes-tests.log" 2>&1 \
        || { tail -40 "$out/escapes-tests.log"; exit 1; }
    grep -a "Test run with" "$out/escapes-tests.log" | sed 's/\x1b\[[0-9;]*m//g; s/^✔ //; s/ after [0-9.]* seconds//'
}

# --- runner -----------------------------------------------------------------------------------------
all=(examples job_stats tracepoints iterators xdp tcx netfilter sk_lookup uprobes fentry_lsm_kprobe kprobe_multi token drift kill escapes)
# Scenarios that run on some kernels only (each guest runs under TCG, and CI has 45 minutes for all):
# the escape tests where pins take the /proc/self/fd route (the host's suite runs them on 6.18).
declare -A only=([escapes]="6.1")
selected=()
for name in "${all[@]}"; do
    [[ -z "${only[$name]:-}" || " ${only[$name]} " == *" $MATRIX_KERNEL "* ]] && selected+=("$name")
done
[ -z "${MATRIX_SCENARIOS:-}" ] || IFS=, read -r -a selected <<<"$MATRIX_SCENARIOS"
printf '%s\n' "${selected[@]}" > "$out/planned"
for name in "${selected[@]}"; do
    started=$SECONDS
    # Not in an || list: bash would ignore set -e in the whole subshell.
    (set -e; PS4='+ [${SECONDS}s] '; set -x; "scenario_$name") > "$out/$name.log" 2>&1
    status=$?
    case "$status" in
    0) outcome=pass; detail=$(tail -1 "$out/$name.log") ;;
    3) outcome=refused; detail=$(cat /tmp/matrix-refusal) ;;
    *) outcome=fail; detail=$(tail -3 "$out/$name.log" | tr '\n' ' ') ;;
    esac
    printf '%s\t%s\t%s\t%s\n' "$name" "$outcome" "$((SECONDS - started))" "$detail" >> "$results"
    # What a scenario made that outlives it: network devices and namespaces, cgroups, mounts.
    ip link del veth0 2>/dev/null; ip netns del peer 2>/dev/null; ip netns del blue 2>/dev/null
    find /sys/fs/cgroup -mindepth 1 -depth -type d -name 'matrix-*' -exec rmdir {} + 2>/dev/null
    for mount in /tmp/matrix-*; do umount -l "$mount" 2>/dev/null; done
    echo "$name: $outcome ($((SECONDS - started)) s)"
done
