#!/usr/bin/env bash
# The runtime side of --anchor-fd: the runtime opens the job's bpffs directory on the host, starts the
# "container" in a new mount namespace where that directory is bind-mounted at another path (here
# /sys/fs/bpf), and execs bpftree there with the descriptor. bpftree never resolves a path for its
# anchor, so the tree comes out the same as when applied on the host path.
#   examples/containers/anchor-fd.sh HOST_DIR apply -f MANIFESTS [--policy POLICIES]
# Needs root (unshare, mount). BPFTREE names the binary (default: bpftree on PATH).
set -euo pipefail
host_dir=$1
shift
# 1. open: O_RDONLY | O_DIRECTORY on the host path, as fd 3 (inherited across exec).
exec 3<"$host_dir"
# 2. pass and exec: in the container's mount namespace the same directory is at /sys/fs/bpf.
exec unshare --mount --propagation private sh -c '
    mount --bind "$1" /sys/fs/bpf
    echo "in the container: /sys/fs/bpf is $(stat -f -c %T /sys/fs/bpf), anchor is fd 3" >&2
    shift
    exec "${BPFTREE:-bpftree}" "$@" --anchor-fd 3
' sh "$host_dir" "$@"
