#!/usr/bin/env bash
# Installs what is needed, builds bpftree, and applies examples/ under policies/platform.yaml to a scratch
# bpffs (mounted on a temporary directory, unmounted at the end); shows that `diff` then finds nothing to
# do, then grows a map (migrated, entries kept) and drops an entry (pruned). Then the job-stats workflow
# (examples/job-stats) on a second scratch bpffs, for two scratch cgroups: each cgroup's stats pin
# counts its own packets, and a removed cgroup loses its links. Last, the same as an unprivileged user
# namespace on a delegated bpffs, with a BPF token.
# Needs root (or CAP_BPF + CAP_SYS_ADMIN) on Linux >= 6.1; the last part, with a BPF token, >= 6.9.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
swift build -c release >/dev/null
bin="$(swift build -c release --show-bin-path)/bpftree"

scratch=$(mktemp -d /tmp/bpftree-demo-XXXXXX)
edited=$(mktemp -d /tmp/bpftree-demo-manifests-XXXXXX)
mount -t bpf bpf "$scratch"
trap 'umount "$scratch"; rmdir "$scratch"; rm -rf "$edited"' EXIT
policy=(--policy policies/platform.yaml --anchor "$scratch")

echo "== bpftree diff (empty scratch bpffs at $scratch)"
"$bin" diff -f examples "${policy[@]}" || [ $? -eq 2 ]
echo
echo "== bpftree apply"
"$bin" apply -f examples "${policy[@]}"
echo
echo "== the tree, as find(1) sees it (bpftree_ledger is bpftree's ownership record)"
(cd "$scratch" && find . -mindepth 1 ! -name '*.debug' -printf '%M %u:%g %p\n' | sort -k3)
echo
echo "== bpftool map dump pinned jobs/A/config"
bpftool map dump pinned "$scratch/jobs/A/config" | sed -n 1,4p   # sed reads to the end: no SIGPIPE under pipefail
echo
echo "== bpftree diff again"
"$bin" diff -f examples "${policy[@]}"
echo
echo "== a counter is written, then the job's packets map grows from 1024 to 4096 entries"
bpftool map update pinned "$scratch/jobs/A/stats/packets" key hex 01 00 00 00 00 00 00 00 \
    value hex 07 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 any
cp examples/*.yaml "$edited/"
sed -i 's/maxEntries: 1024}/maxEntries: 4096}/' "$edited/job-a.yaml"
"$bin" diff -f "$edited" "${policy[@]}" || [ $? -eq 2 ]
"$bin" apply -f "$edited" "${policy[@]}"
bpftool map dump pinned "$scratch/jobs/A/stats/packets" | head -3
echo
echo "== the job's event ring is dropped from its manifest: it is pruned (bpftree created it)"
sed -i '/events:/,+1d' "$edited/job-a.yaml"
"$bin" apply -f "$edited" "${policy[@]}"

echo
echo "== job stats: a stats pin per cgroup (examples/job-stats, bpf/job_stats.bpf.c)"
./scripts/build-bpf.sh "$edited/job-stats" >/dev/null
cgroup2=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo)
job=$(basename "$(mktemp -u /tmp/bpftree-demo-job-XXXXXX)")
stats=$(mktemp -d /tmp/bpftree-demo-stats-XXXXXX)
mount -t bpf bpf "$stats"
mkdir -p "$cgroup2/$job/w1" "$cgroup2/$job/w2"
trap 'umount "$scratch" "$stats"; rmdir "$scratch" "$stats"; rm -rf "$edited";
      rmdir "$cgroup2/$job"/w* "$cgroup2/$job" 2>/dev/null || true' EXIT
sed "s|forEachCgroup: {path: jobs/A,|forEachCgroup: {path: $job,|" examples/job-stats/job-stats.yaml > "$edited/job-stats/job-stats.yaml"
jobstats=(-f "$edited/job-stats" --policy policies/platform.yaml --anchor "$stats")
"$bin" apply "${jobstats[@]}"
send() { # cgroup packets: a process in the cgroup sends that many UDP datagrams to 127.0.0.1
    sh -c 'echo $$ > "$1/cgroup.procs" && exec python3 -c "
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[1])): s.sendto(b\"x\" * 10, (\"127.0.0.1\", 9))" "$2"' sh "$cgroup2/$job/$1" "$2"
}
send w1 5
send w2 9
for sent in "w1 5" "w2 9"; do
    set -- $sent
    id=$(stat -c %i "$cgroup2/$job/$1")   # a cgroup's id is its inode number on cgroup2
    echo "-- cat jobs/A/$id/stats   ($1 sent $2 datagrams: 38-byte IP packets)"
    cat "$stats/jobs/A/$id/stats"
done
echo "-- bpftool link show pinned jobs/A/$id/egress"
bpftool link show pinned "$stats/jobs/A/$id/egress"
echo
echo "== cgroup w2 is removed: the next pass removes its links and its subtree"
rmdir "$cgroup2/$job/w2"
"$bin" apply "${jobstats[@]}"
echo
echo "== unprivileged: root of a new user namespace (uid 100000 on the host, no capability there) applies"
echo "   examples/containers/tenant.yaml with a BPF token from a bpffs delegated to it"
echo "   (scripts/delegated-bpffs.py is the privileged parent side, as a container runtime would do it)"
delegated=$(mktemp -d /tmp/bpftree-demo-delegated-XXXXXX)
chmod 755 "$delegated"
trap 'umount "$scratch" "$stats"; rmdir "$scratch" "$stats" "$delegated"; rm -rf "$edited";
      rmdir "$cgroup2/$job"/w* "$cgroup2/$job" 2>/dev/null || true' EXIT
./scripts/delegated-bpffs.py --maps array:hash:ringbuf "$delegated" -- sh -c '
    "$1" apply -f "$2" --anchor "$3" && ls -ln "$3/tenant" && "$1" diff -f "$2" --anchor "$3"' \
    sh "$bin" "$PWD/examples/containers/tenant.yaml" "$delegated" | grep -v '^ready \|^exit '
