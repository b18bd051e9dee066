import BPFTreeCore
import CBPFTreeShim
import Glibc

/// Facts about this machine that shape what the kernel allocates.
public enum Machine {
    /// Possible CPUs: per-CPU map values are stored once per possible CPU.
    public static let possibleCPUs = max(1, Int(bt_num_possible_cpus()))

    /// Physical memory in bytes: no map the kernel could allocate is larger.
    public static let physicalMemory: UInt64 = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && size > 0 ? UInt64(pages) * UInt64(size) : UInt64.max
    }()

    /// Whether this process is in the initial user namespace (its uid_map maps every uid to itself), where
    /// capabilities are checked directly and BPF tokens have no use.
    public static let inInitialUserNamespace: Bool = {
        guard case .success(let bytes) = FileBytes.read("/proc/self/uid_map") else { return true }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        return lines.count == 1 && lines[0].split(separator: " ") == ["0", "0", "4294967295"]
    }()

    /// The effective capabilities of this process (`CapEff` of /proc/self/status), bit n = capability n.
    public static var effectiveCapabilities: UInt64 { status("CapEff").flatMap { UInt64($0, radix: 16) } ?? 0 }

    /// Field `name` of /proc/self/status, its value without the leading blanks.
    private static func status(_ name: String) -> Substring? {
        guard case .success(let bytes) = FileBytes.read("/proc/self/status") else { return nil }
        let prefix = name + ":"
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix(prefix) {
            return line.dropFirst(prefix.count).trimmingPrefix(while: \.isWhitespace)
        }
        return nil
    }

    /// Whether a seccomp filter confines this process (`Seccomp: 2` in /proc/self/status).
    public static var underSeccompFilter: Bool { status("Seccomp") == "2" }

    /// The user this process creates and owns files as (effective ids; bpffs takes no fsuid of its own).
    public static var user: ProcessUser {
        var groups = [gid_t](repeating: 0, count: 256)
        let count = getgroups(Int32(groups.count), &groups)
        return ProcessUser(uid: geteuid(), gid: getegid(), groups: Set(groups.prefix(max(0, Int(count)))))
    }

    /// The capabilities among `needs` this process lacks, when the kernel checks them against its
    /// effective set: in the initial user namespace and holding no BPF token (which stands in for them).
    /// `needs` is not worked out when every capability is held (root, the usual case).
    public static func missing(_ needs: () -> [CapabilityNeed]) -> [CapabilityNeed] {
        guard inInitialUserNamespace, bt_token_active() < 0 else { return [] }
        let effective = effectiveCapabilities
        if Capability.allCases.allSatisfy({ $0.isHeld(in: effective) }) { return [] }
        return needs().filter { !$0.capability.isHeld(in: effective) }
    }

    /// CAP_SYS_ADMIN, CAP_PERFMON and CAP_BPF, all effective: the kernel's privilege checks for BPF pass.
    public static var hasBPFPrivileges: Bool {
        let needed: UInt64 = 1 << 21 | 1 << 38 | 1 << 39
        return effectiveCapabilities & needed == needed && inInitialUserNamespace
    }

    /// This build of bpftree: device, inode, size and mtime of the running executable ("unknown" when
    /// it cannot be read). Whatever bpftree keeps between runs is tied to it.
    public static let executableIdentity: String = {
        var executable = Glibc.stat()
        guard stat("/proc/self/exe", &executable) == 0 else { return "unknown" }
        return "\(executable.st_dev):\(executable.st_ino):\(executable.st_size):\(executable.st_mtim.tv_sec).\(executable.st_mtim.tv_nsec)"
    }()

    /// Returns memory the process has freed to the kernel (`malloc_trim`), e.g. before a second large
    /// phase of a run, so that peak RSS is not the sum of both.
    public static func releaseFreeMemory() { bt_release_free_memory() }
}
