import BPFTreeCore
import CBPFTreeShim
import Glibc

/// The directory every operation is relative to. Must be on bpffs; nothing outside it is ever reached.
public final class Anchor: Sendable {
    /// `BPF_FS_MAGIC`.
    public static let bpffsMagic: Int64 = 0xcafe_4a11

    public let descriptor: Descriptor
    /// How the anchor was given, for messages: a path or `fd N`.
    public let displayName: String

    public var fd: Int32 { descriptor.rawValue }

    /// Opens `path` (symlinks in the path itself are followed: it names the anchor, it is not in the tree).
    public static func open(path: String) throws(KernelError) -> Anchor {
        let fd = retryingEINTR { Glibc.open(path, Int32(BT_O_PATH) | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else {
            let detail = -fd == ENOENT ? "the anchor must be an existing directory on a mounted bpffs" : nil
            throw KernelError("open anchor", path: path, negativeErrno: fd, detail: detail)
        }
        return try Anchor(owning: Descriptor(owning: fd), displayName: path)
    }

    /// Uses an inherited descriptor (e.g. from a container runtime); it is duplicated, not taken over.
    public static func inherited(fd: Int32) throws(KernelError) -> Anchor {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 3)
        guard copy >= 0 else { throw KernelError("use anchor", path: "fd \(fd)", negativeErrno: -errno) }
        let descriptor = Descriptor(owning: copy)
        var st = stat()
        guard fstat(copy, &st) == 0 else { throw KernelError("fstat anchor", path: "fd \(fd)", negativeErrno: -errno) }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            throw KernelError("use anchor", path: "fd \(fd)", detail: "the descriptor is not a directory")
        }
        return try Anchor(owning: descriptor, displayName: "fd \(fd)")
    }

    private init(owning descriptor: Descriptor, displayName: String) throws(KernelError) {
        var type: Int64 = 0
        let result = bt_fstatfs_type(descriptor.rawValue, &type)
        guard result == 0 else { throw KernelError("fstatfs anchor", path: displayName, negativeErrno: result) }
        guard type == Self.bpffsMagic else {
            throw KernelError("use anchor", path: displayName,
                              detail: "not on a bpffs (file system magic 0x\(String(type, radix: 16))); mount one with 'mount -t bpf bpf DIR'")
        }
        self.descriptor = descriptor
        self.displayName = displayName
    }

    /// Opens a directory beneath the anchor with `openat2`, refusing symlinks, magic links, `..` escapes
    /// and mount crossings. `from` is an already-open directory that `path` is relative to.
    public func openDirectory(_ relative: String, from base: Int32? = nil, readable: Bool = false,
                              displayPath: TreePath) throws(KernelError) -> Descriptor {
        let flags = UInt64(O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW | (readable ? O_RDONLY : Int32(BT_O_PATH)))
        let fd = bt_openat2(base ?? self.fd, relative, flags, 0, Resolve.strict)
        guard fd >= 0 else {
            let detail: String? = switch -fd {
            case ELOOP: "a symlink is in the way; bpftree never follows symlinks in the tree"
            case ENOTDIR: "not a directory"
            case EXDEV: "path leaves the anchor or crosses a mount"
            default: nil
            }
            throw KernelError("openat2", path: displayPath.description, negativeErrno: fd, detail: detail)
        }
        return Descriptor(owning: fd)
    }
}
