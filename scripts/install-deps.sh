#!/usr/bin/env bash
# Installs the system packages bpftree builds and tests with (Debian 12): libbpf-dev and libyaml-dev
# (found through pkg-config), bpftool (tests check results with it), xdp-tools (BPF objects nobody here wrote),
# strace (tests count the verifier runs a pass makes), iproute2 (tests make veth pairs and network
# namespaces), podman with runc and buildah (the image is built and run by the tests), python3-seccomp and systemd
# (the systemd units are checked with systemd-analyze and their system-call filter applied), man-db (the
# man pages are rendered). Swift 6.3 must already be on PATH.
set -euo pipefail
packages=(libbpf-dev libyaml-dev pkg-config bpftool findutils xdp-tools strace iproute2 podman buildah runc python3-seccomp systemd man-db)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "swift is not on PATH: install Swift 6.3 first" >&2; exit 1; }
# kubernetes-validate (PyPI) checks the shipped Kubernetes files offline, against the schemas it carries.
python3 -c "import kubernetes_validate" 2>/dev/null || python3 -m pip install -q kubernetes-validate==1.37.0
