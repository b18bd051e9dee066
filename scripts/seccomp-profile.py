#!/usr/bin/env python3
"""Writes a seccomp profile for bpftree's container: the container runtime's default profile
(containers-common's /usr/share/containers/seccomp.json unless another is given) with bpf(2) allowed to
a container holding CAP_BPF and perf_event_open(2) to one holding CAP_PERFMON, as containerd's and
newer Docker's defaults do. Older defaults (containers-common up to 0.50, Debian 12's podman) allow both
only with CAP_SYS_ADMIN.
Usage: scripts/seccomp-profile.py OUTPUT [DEFAULT-PROFILE]
then:  podman run --security-opt seccomp=OUTPUT --cap-drop all --cap-add BPF,PERFMON ..."""
import json
import sys

output = sys.argv[1]
source = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/containers/seccomp.json"
with open(source) as f:
    profile = json.load(f)
grants = {"bpf": "CAP_BPF", "perf_event_open": "CAP_PERFMON"}
rules = []
for rule in profile["syscalls"]:
    names = [name for name in rule["names"] if name not in grants]
    # The rules naming these calls only gate them on CAP_SYS_ADMIN (allow with it, refuse without).
    if len(names) != len(rule["names"]) and rule.get("includes", {}).get("caps") != ["CAP_SYS_ADMIN"] \
            and rule.get("excludes", {}).get("caps") != ["CAP_SYS_ADMIN"]:
        sys.exit(f"{source}: a rule for {rule['names']} is not the CAP_SYS_ADMIN gate this script knows")
    if names:
        rules.append(dict(rule, names=names))
for name, capability in grants.items():
    for cap in (capability, "CAP_SYS_ADMIN"):
        rules.append({"names": [name], "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]}})
profile["syscalls"] = rules
with open(output, "w") as f:
    json.dump(profile, f, indent=1)
print(output)
