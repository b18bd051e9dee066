import BPFTreeCore
import CBPFTreeShim
import Glibc
import SystemPackage

/// The directory every operation is relative to. Must be on bpffs; nothing outside it is ever reached.
public final class Anchor: Sendable {
    /// `BPF_FS_MAGIC`.
    public static let bpffsMagic: Int64 = 0xcafe_4a11

    public let descriptor: Descriptor
    /// How the anchor was given, for messages: a path or `fd N`.
    public let displayName: String

    public var fd: FileDescriptor { descriptor.fd }

    /// Opens `path` (symlinks in the path itself are followed: it names the anchor, it is not in the tree).
    /// A path through a process's root (`/proc/PID/root/...`) is resolved as `open(inRootOf:path:)` does.
    public static func open(path: String) throws(KernelError) -> Anchor {
        if let (pid, rest) = processRoot(path) { return try open(inRootOf: pid, path: rest, displayName: path) }
        let fd = retryingEINTR { Glibc.open(path, Int32(BT_O_PATH) | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else {
            let detail = -fd == ENOENT ? "the anchor must be an existing directory on a mounted bpffs" : nil
            throw KernelError(.step(.openAnchor), path: path, negativeErrno: fd, detail: detail)
        }
        return try Anchor(owning: Descriptor(owning: fd), displayName: path)
    }

    /// Opens `path` as process `pid` sees it (e.g. a container's `/sys/fs/bpf`, from the host), without
    /// entering its namespaces: through `/proc/PID/root`, then with `openat2(RESOLVE_IN_ROOT |
    /// RESOLVE_NO_MAGICLINKS)`, so `..` and absolute symlinks stay inside that root (a plain path lookup
    /// would resolve them against the caller's root and could leave the container).
    public static func open(inRootOf pid: Int32, path: String, displayName: String? = nil) throws(KernelError) -> Anchor {
        let name = displayName ?? "\(path) in the root of pid \(pid)"
        let rootPath = "/proc/\(pid)/root"
        let root = retryingEINTR { Glibc.open(rootPath, Int32(BT_O_PATH) | O_DIRECTORY | O_CLOEXEC) }
        guard root >= 0 else {
            throw KernelError(.step(.openAnchor), path: rootPath, negativeErrno: root,
                              detail: -root == ENOENT ? "no process \(pid)" : nil)
                .adding(KernelError.capabilityHint(root, needs: [.sysPtrace], for: "opening another process's root"))
        }
        let rootDescriptor = Descriptor(owning: root)
        let relative = path.drop { $0 == "/" }
        let fd = bt_openat2(rootDescriptor.rawValue, relative.isEmpty ? "." : String(relative),
                            UInt64(Int32(BT_O_PATH) | O_DIRECTORY | O_CLOEXEC), 0, Resolve.inRoot | Resolve.noMagicLinks)
        guard fd >= 0 else {
            let detail = -fd == ENOENT ? "the anchor must be an existing directory on a mounted bpffs, as the process sees it" : nil
            throw KernelError(.step(.openAnchor), path: name, negativeErrno: fd, detail: detail)
        }
        return try Anchor(owning: Descriptor(owning: fd), displayName: name)
    }

    /// `/proc/PID/root/REST` (or `/proc/self/root/...`) split into the pid and REST; nil for other paths.
    static func processRoot(_ path: String) -> (Int32, String)? {
        let parts = path.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
        guard path.hasPrefix("/proc/"), parts.count >= 4, parts[1] == "proc", parts[3] == "root" || parts[3].hasPrefix("root/") else {
            return nil
        }
        let pid = parts[2] == "self" ? getpid() : Int32(parts[2])
        guard let pid, pid > 0 else { return nil }
        let rest = parts[3].dropFirst("root".count)
        return (pid, String(rest))
    }

    /// Uses an inherited descriptor (e.g. from a container runtime); it is duplicated, not taken over.
    public static func inherited(fd: FileDescriptor) throws(KernelError) -> Anchor {
        let copy = fcntl(fd.rawValue, F_DUPFD_CLOEXEC, 3)
        guard copy >= 0 else { throw KernelError(.step(.useAnchor), path: "fd \(fd.rawValue)", negativeErrno: -errno) }
        let descriptor = Descriptor(owning: copy)
        var st = stat()
        guard fstat(copy, &st) == 0 else { throw KernelError(.step(.fstatAnchor), path: "fd \(fd.rawValue)", negativeErrno: -errno) }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            throw KernelError(.step(.useAnchor), path: "fd \(fd.rawValue)", detail: "the descriptor is not a directory")
        }
        return try Anchor(owning: descriptor, displayName: "fd \(fd.rawValue)")
    }

    private init(owning descriptor: Descriptor, displayName: String) throws(KernelError) {
        var type: Int64 = 0
        let result = bt_fstatfs_type(descriptor.rawValue, &type)
        guard result == 0 else { throw KernelError(.step(.fstatfsAnchor), path: displayName, negativeErrno: result) }
        guard type == Self.bpffsMagic else {
            throw KernelError(.step(.useAnchor), path: displayName,
                              detail: "not on a bpffs (file system magic 0x\(String(type, radix: 16))); mount one with 'mount -t bpf bpf DIR'")
        }
        self.descriptor = descriptor
        self.displayName = displayName
    }

    /// Opens a directory beneath the anchor with `openat2`, refusing symlinks, magic links, `..` escapes
    /// and mount crossings. `from` is an already-open directory that `path` is relative to.
    public func openDirectory(_ relative: String, from base: FileDescriptor? = nil, readable: Bool = false,
                              displayPath: TreePath) throws(KernelError) -> Descriptor {
        let flags = UInt64(O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW | (readable ? O_RDONLY : Int32(BT_O_PATH)))
        let directory = (base ?? self.fd).rawValue
        let fd = withKernelName(relative) { bt_openat2(directory, $0, flags, 0, Resolve.strict) }
        guard fd >= 0 else {
            let detail: String? = switch -fd {
            case ELOOP: "a symlink is in the way; bpftree never follows symlinks in the tree"
            case ENOTDIR: "not a directory"
            case EXDEV: "path leaves the anchor or crosses a mount"
            default: nil
            }
            throw KernelError(.call(.openat2), path: displayPath.description, negativeErrno: fd, detail: detail)
                .adding(KernelError.capabilityHint(fd, needs: [.dacReadSearch], for: "reading a directory bpftree's user may not search"))
        }
        return Descriptor(owning: fd)
    }
}
