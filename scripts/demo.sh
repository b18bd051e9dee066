#!/usr/bin/env bash
# Installs what is needed, builds bpftree, and applies examples/ to a scratch bpffs (mounted on a
# temporary directory, unmounted at the end), then shows that `diff` finds nothing left to do.
# Needs root (or CAP_BPF + CAP_SYS_ADMIN) on Linux >= 6.5.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
swift build -c release >/dev/null
bin="$(swift build -c release --show-bin-path)/bpftree"

scratch=$(mktemp -d /tmp/bpftree-demo-XXXXXX)
mount -t bpf bpf "$scratch"
trap 'umount "$scratch"; rmdir "$scratch"' EXIT

echo "== bpftree diff (empty scratch bpffs at $scratch)"
"$bin" diff -f examples --anchor "$scratch" || [ $? -eq 2 ]
echo
echo "== bpftree apply"
"$bin" apply -f examples --anchor "$scratch"
echo
echo "== the tree, as find(1) sees it"
(cd "$scratch" && find . -mindepth 1 ! -name '*.debug' -printf '%M %u:%g %p\n' | sort -k3)
echo
echo "== bpftool map dump pinned jobs/A/config"
bpftool map dump pinned "$scratch/jobs/A/config" | head -4
echo
echo "== bpftree diff again"
"$bin" diff -f examples --anchor "$scratch"
