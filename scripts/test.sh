#!/usr/bin/env bash
# Installs what is needed and runs every test: pure tests everywhere, kernel tests on private bpffs
# mounts (root needed; they skip with a reason elsewhere, and fail instead of skipping under CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
swift build --build-tests
swift test --skip-build "$@"
