#!/usr/bin/env bash
# Compiles the example BPF objects (bpf/*.bpf.c other than batch.bpf.c, which is embedded in bpftree at
# build time), or the SOURCE files given, into OUTDIR (default examples/job-stats), with the Swift
# toolchain's clang. Usage: scripts/build-bpf.sh [OUTDIR [SOURCE...]]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-examples/job-stats}"
shift || true
sources=("$@")
[ ${#sources[@]} -gt 0 ] || sources=(bpf/*.bpf.c)
clang="${CLANG:-$(command -v clang || true)}"
if [ -z "$clang" ]; then
    swift="$(readlink -f "$(command -v swift)")"
    clang="$(dirname "$swift")/clang"
fi
mkdir -p "$out"
for source in "${sources[@]}"; do
    [ "$(basename "$source")" = batch.bpf.c ] && continue
    object="$out/$(basename "${source%.c}").o"
    "$clang" -g -O2 -target bpf -Wall -Werror \
        -idirafter /usr/include/x86_64-linux-gnu -idirafter /usr/include/aarch64-linux-gnu \
        -c "$source" -o "$object.tmp"
    mv "$object.tmp" "$object"
    echo "$object"
done
