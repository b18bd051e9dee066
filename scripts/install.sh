#!/usr/bin/env bash
# Builds bpftree in release mode with the Swift runtime linked in (--static-swift-stdlib: no Swift
# libraries are needed where it runs, only libbpf1, libyaml-0-2 and the C and C++ runtimes), and installs
#   PREFIX/bin/bpftree                                  (stripped)
#   PREFIX/share/man/man1/bpftree*.1                    (swift-argument-parser's generate-manual plugin)
#   PREFIX/share/bash-completion/completions/bpftree   (and zsh's _bpftree, fish's bpftree.fish,
#   PREFIX/share/zsh/site-functions/_bpftree            from the same parser)
#   PREFIX/share/fish/vendor_completions.d/bpftree.fish
# Usage: scripts/install.sh [PREFIX]   (default /usr/local; DESTDIR=DIR stages the files under DIR;
# SCRATCH=DIR builds in DIR instead of .build)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${1:-/usr/local}"
root="${DESTDIR:-}$prefix"
scratch="${SCRATCH:-.build}"
./scripts/install-deps.sh
swift build --scratch-path "$scratch" -c release --static-swift-stdlib --product bpftree
bin="$(swift build --scratch-path "$scratch" -c release --static-swift-stdlib --show-bin-path)/bpftree"
# The plugin builds the tool it documents; a debug build of it leaves the release binary above as linked.
swift package --scratch-path "$scratch" --allow-writing-to-package-directory generate-manual --configuration debug \
    --multi-page >/dev/null
manuals="$scratch/plugins/GenerateManual/outputs/bpftree"

install -d "$root/bin" "$root/share/man/man1" "$root/share/bash-completion/completions" \
    "$root/share/zsh/site-functions" "$root/share/fish/vendor_completions.d"
install -m 0755 -s "$bin" "$root/bin/bpftree"
install -m 0644 "$manuals"/*.1 "$root/share/man/man1/"
"$bin" --generate-completion-script bash > "$root/share/bash-completion/completions/bpftree"
"$bin" --generate-completion-script zsh > "$root/share/zsh/site-functions/_bpftree"
"$bin" --generate-completion-script fish > "$root/share/fish/vendor_completions.d/bpftree.fish"
echo "installed bpftree $("$root/bin/bpftree" --version) in $root (man bpftree; completions for bash, zsh and fish)"
