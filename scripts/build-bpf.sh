#!/usr/bin/env bash
# Compiles the example BPF objects (bpf/*.bpf.c other than batch.bpf.c, which is embedded in bpftree at
# build time), or the SOURCE files given, into OUTDIR (default: each next to its example, bpf/NAME.bpf.c
# into examples/NAME with '_' as '-', e.g. examples/job-stats), with the Swift toolchain's clang.
# Usage: scripts/build-bpf.sh [OUTDIR [SOURCE...]]   (extra clang flags in BPF_CFLAGS, e.g. -DREVISION=2)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-}"
shift || true
sources=("$@")
[ ${#sources[@]} -gt 0 ] || sources=(bpf/*.bpf.c)
clang="${CLANG:-$(command -v clang || true)}"
if [ -z "$clang" ]; then
    swift="$(readlink -f "$(command -v swift)")"
    clang="$(dirname "$swift")/clang"
fi
for source in "${sources[@]}"; do
    [ "$(basename "$source")" = batch.bpf.c ] && continue
    name="$(basename "${source%.bpf.c}")"
    dir="${out:-examples/${name//_/-}}"
    mkdir -p "$dir"
    object="$dir/$(basename "${source%.c}").o"
    "$clang" -g -O2 -target bpf -Wall -Werror \
        -idirafter /usr/include/x86_64-linux-gnu -idirafter /usr/include/aarch64-linux-gnu \
        ${BPF_CFLAGS:-} -c "$source" -o "$object.tmp"
    mv "$object.tmp" "$object"
    echo "$object"
done
