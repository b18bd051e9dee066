#!/usr/bin/python3
"""Runs a command under the system-call confinement a systemd unit's [Service] section asks for, as
systemd 252 would set it up, for tests on machines where systemd is not PID 1:
CapabilityBoundingSet= (root keeps only these), NoNewPrivileges=, SystemCallFilter= (groups expanded by
`systemd-analyze syscall-filter` itself) with SystemCallErrorNumber=, RestrictAddressFamilies=,
MemoryDenyWriteExecute= and RestrictNamespaces= (seccomp rules, as systemd writes them), through
libseccomp. File-system settings (ProtectSystem=, ReadWritePaths=, PrivateTmp=, ...) are not applied.
Usage: systemd-sandbox.py UNIT COMMAND [ARG...]   (needs python3-seccomp)"""
import ctypes, errno, os, re, socket, subprocess, sys
import seccomp

CAPS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4,
        "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9,
        "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
        "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18,
        "CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
        "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27, "CAP_LEASE": 28,
        "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32,
        "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37,
        "CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40}
PROT_WRITE, PROT_EXEC = 2, 4
NAMESPACE_FLAGS = 0x7E020080  # CLONE_NEW{NS,CGROUP,UTS,IPC,USER,PID,NET,TIME}


def service_section(path):
    settings, section = {}, None
    with open(path) as unit:
        text = re.sub(r"\\\n", " ", unit.read())
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return {key: " ".join(values) for key, values in settings.items()}


def expand(names, seen=None):
    seen = set() if seen is None else seen
    calls = set()
    for name in names:
        if not name.startswith("@"):
            calls.add(name)
            continue
        if name in seen:
            continue
        seen.add(name)
        listing = subprocess.run(["systemd-analyze", "syscall-filter", name], check=True, capture_output=True, text=True)
        members = [line.strip() for line in listing.stdout.splitlines()[1:] if line.startswith("    ") and not line.strip().startswith("#")]
        calls |= expand(members, seen)
    return calls


def main():
    unit, command = sys.argv[1], sys.argv[2:]
    settings = service_section(unit)
    libc = ctypes.CDLL(None, use_errno=True)
    if "CapabilityBoundingSet" in settings:
        keep = {CAPS[name] for name in settings["CapabilityBoundingSet"].split()}
        last = int(open("/proc/sys/kernel/cap_last_cap").read())
        for cap in range(last + 1):
            if cap not in keep and libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                sys.exit(f"PR_CAPBSET_DROP {cap}: {os.strerror(ctypes.get_errno())}")
    if settings.get("NoNewPrivileges") == "yes" and libc.prctl(38, 1, 0, 0, 0) != 0:
        sys.exit("PR_SET_NO_NEW_PRIVS failed")
    error = getattr(errno, settings.get("SystemCallErrorNumber", ""), None)
    filtered = settings.get("SystemCallFilter", "").split()
    if not filtered:
        sys.exit(f"{unit}: no SystemCallFilter= (this sandbox applies an allow list only)")
    calls = expand(filtered)
    restricted_mdwe = settings.get("MemoryDenyWriteExecute") == "yes"
    families = settings.get("RestrictAddressFamilies", "").split()
    restrict_namespaces = settings.get("RestrictNamespaces") == "yes"
    # An allow list: anything else gets the unit's errno (or kills, as systemd's default does).
    f = seccomp.SyscallFilter(seccomp.ERRNO(error) if error else seccomp.KILL_PROCESS)
    conditional = {"mmap", "mprotect", "pkey_mprotect", "socket", "unshare", "setns", "clone"}
    for call in sorted(calls - conditional):
        try:
            f.add_rule(seccomp.ALLOW, call)
        except (RuntimeError, ValueError, OSError):
            pass  # unknown to this libseccomp
    for call in sorted(calls & conditional):
        if call == "mmap" and restricted_mdwe:
            for prot in (0, PROT_WRITE, PROT_EXEC):  # never both
                f.add_rule(seccomp.ALLOW, call, seccomp.Arg(2, seccomp.MASKED_EQ, PROT_WRITE | PROT_EXEC, prot))
        elif call in ("mprotect", "pkey_mprotect") and restricted_mdwe:
            f.add_rule(seccomp.ALLOW, call, seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, 0))
        elif call == "socket" and families:
            for name in families:
                f.add_rule(seccomp.ALLOW, call, seccomp.Arg(0, seccomp.EQ, getattr(socket, name)))
        elif call in ("unshare", "setns", "clone") and restrict_namespaces:
            f.add_rule(seccomp.ALLOW, call, seccomp.Arg(0, seccomp.MASKED_EQ, NAMESPACE_FLAGS, 0))
        else:
            f.add_rule(seccomp.ALLOW, call)
    f.load()
    os.execvp(command[0], command)


main()
