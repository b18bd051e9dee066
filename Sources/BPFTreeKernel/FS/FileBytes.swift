import Glibc

/// Whole files read with plain read(2), for manifests, policies and BPF objects (outside the bpffs, so
/// symlinks there are followed). Only regular files, and at most `limit` bytes: a FIFO, a device such as
/// `/dev/zero` or a file that grows without end is refused instead of blocking or filling memory.
public enum FileBytes {
    /// The largest file read: 64 MiB (a manifest of 100,000 maps is about 11 MB).
    public static let limit = 64 << 20

    public enum ReadError: Error, CustomStringConvertible {
        case system(errno: Int32)
        case notRegular(what: String)
        case tooLarge(limit: Int)

        public var errno: Int32 {
            switch self {
            case .system(let errno): errno
            case .notRegular: EINVAL
            case .tooLarge: EFBIG
            }
        }

        public var description: String {
            switch self {
            case .system(let errno): String(cString: strerror(errno))
            case .notRegular(let what): "a \(what), not a regular file"
            case .tooLarge(let limit): "larger than \(limit >> 20) MiB, the most bpftree reads"
            }
        }
    }

    /// What tells a file's bytes changed without reading them: device, inode, size and modification
    /// time; "absent" when it cannot be stat'ed.
    public static func identity(_ path: String) -> String {
        var st = Glibc.stat()
        guard stat(path, &st) == 0 else { return "absent" }
        return "\(st.st_dev):\(st.st_ino):\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
    }

    public static func read(_ path: String, limit: Int = limit) -> Result<[UInt8], ReadError> {
        // O_NONBLOCK: opening a FIFO must not wait for a writer.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { return .failure(.system(errno: errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(.system(errno: errno)) }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: return .failure(.notRegular(what: "directory"))
        case S_IFIFO: return .failure(.notRegular(what: "FIFO"))
        case S_IFCHR: return .failure(.notRegular(what: "character device"))
        case S_IFBLK: return .failure(.notRegular(what: "block device"))
        case S_IFSOCK: return .failure(.notRegular(what: "socket"))
        default: return .failure(.notRegular(what: "special file"))
        }
        guard Int(info.st_size) <= limit else { return .failure(.tooLarge(limit: limit)) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(info.st_size) + 1)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count == 0 { return .success(bytes) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(.system(errno: errno))
            }
            // A file that grows while it is read (e.g. /proc files report size 0) is still bounded.
            guard bytes.count + count <= limit else { return .failure(.tooLarge(limit: limit)) }
            bytes.append(contentsOf: chunk[..<count])
        }
    }
}
