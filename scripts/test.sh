#!/usr/bin/env bash
# Installs what is needed and runs every test: pure tests everywhere, kernel tests on private bpffs
# mounts (root needed; they skip with a reason elsewhere, and fail instead of skipping under CI=true),
# then a smoke run of the benchmark harness so that it does not rot (no timing is asserted), then the
# kernel matrix (scripts/kernel-matrix.sh: every scenario on Debian's 6.1, 6.12 and newest kernels).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
swift build --build-tests
# What scripts/install.sh installs, staged for the deployment tests (a release build, before the tests
# run rather than while they do). A filtered run leaves it to the tests that need it.
if [[ $# -eq 0 ]]; then
    export BPFTREE_INSTALLED="${TMPDIR:-/tmp}/bpftree-installed-$$"
    trap 'rm -rf "$BPFTREE_INSTALLED"' EXIT
    DESTDIR="$BPFTREE_INSTALLED" ./scripts/install.sh /usr/local
fi
swift test --skip-build "$@"
if [[ $# -gt 0 ]]; then exit 0; fi  # a filtered run: tests only
if [[ $(id -u) -eq 0 || "${CI:-}" == "true" ]]; then
    bench/run --smoke
    # Debian's 6.1, 6.12 and newest kernels under qemu (docs/kernels.md); it fetches them itself.
    ./scripts/kernel-matrix.sh
else
    echo "bench/run --smoke and the kernel matrix skipped: they need root"
fi
