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
out=/run/matrix
results="$out/results"
: > "$results"
echo "kernel $(uname -r)" > "$out/uname"

# --- helpers (scenarios run in a subshell with set -e) ----------------------------------------------
scratch_bpffs() { # prints a new, private bpffs mount point
    local dir
    dir=$(mktemp -d /tmp/matrix-bpffs-XXXXXX)
    mount -t bpf bpf "$dir"
    echo "$dir"
}
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
    grep -m1 '^error' /tmp/matrix-stderr > /tmp/matrix-refusal || echo "exit $status" > /tmp/matrix-refusal
    exit 3
}
expect_exit() { # CODE COMMAND...: runs the command, which must exit CODE
    local want="$1" status=0
    shift
    "$@" || status=$?
    [ "$status" -eq "$want" ] || { echo "expected exit $want from: $*; got $status"; exit 1; }
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

# --- runner -----------------------------------------------------------------------------------------
all=(examples)
selected=("${all[@]}")
[ -z "${MATRIX_SCENARIOS:-}" ] || IFS=, read -r -a selected <<<"$MATRIX_SCENARIOS"
for name in "${selected[@]}"; do
    started=$SECONDS
    status=0
    (set -e; "scenario_$name") > "$out/$name.log" 2>&1 || status=$?
    case "$status" in
    0) outcome=pass; detail=$(tail -1 "$out/$name.log") ;;
    3) outcome=refused; detail=$(cat /tmp/matrix-refusal) ;;
    *) outcome=fail; detail=$(tail -3 "$out/$name.log" | tr '\n' ' ') ;;
    esac
    printf '%s\t%s\t%s\t%s\n' "$name" "$outcome" "$((SECONDS - started))" "$detail" >> "$results"
    echo "$name: $outcome ($((SECONDS - started)) s)"
done
