#!/usr/bin/env bash
# Installs what is needed, builds bpftree, and applies examples/ under policies/platform.yaml to a scratch
# bpffs (mounted on a temporary directory, unmounted at the end); shows that `diff` then finds nothing to
# do, then grows a map (migrated, entries kept) and drops an entry (pruned).
# Needs root (or CAP_BPF + CAP_SYS_ADMIN) on Linux >= 6.6.
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
bpftool map dump pinned "$scratch/jobs/A/config" | head -4
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
