import BPFTreeCore
import CBPFTreeShim
import Glibc
import Synchronization

/// The cgroups of each template's source, as they are now.
public struct CgroupScan: Sendable {
    public var cgroups: [CgroupSource: [Cgroup]] = [:]
    /// Directories whose new or removed children change the scan (the ones to watch with inotify).
    public var watched: [String] = []
    /// What was found, one line per source: part of the inputs digest, so a stamp is only trusted for
    /// the cgroups it was made for.
    public var digestLines: [String] = []

    public init() {}
}

/// Finds the cgroups of `forEachCgroup` sources: `getdents` of each directory on the cgroup v2 mount (a
/// cgroup's id is its inode number there), twice: a cgroup is kept when the second listing, after every
/// source was listed once, still has it with the same id, so one removed while the sources were being
/// listed gets no subtree. Plain directory reads, on every kernel (no kfunc, no program to load).
public enum CgroupScanner {
    static let cgroup2Magic: Int64 = 0x6367_7270

    /// Where cgroup v2 is mounted, from /proc/self/mountinfo (e.g. `/sys/fs/cgroup` or, on a hybrid
    /// system, `/sys/fs/cgroup/unified`).
    public static func cgroup2Mount() throws(KernelError) -> String? {
        // Parsing mountinfo costs more than a pass's other work for a link: the last answer is kept while
        // its directory still is the root of a cgroup v2 file system.
        if let known = knownMount.withLock({ $0 }), isCgroup2Root(known) { return known }
        let found = try MountInfo.mounts().first { $0.fileSystemType == "cgroup2" }?.mountPoint
        knownMount.withLock { $0 = found }
        return found
    }

    private static let knownMount = Mutex<String?>(nil)

    /// The cgroup v2 mount `cgroup2Mount` found last, not checked again: only for opening a directory that
    /// is then checked to be cgroup v2 itself (`PinResolver.openCgroup(path:)`).
    static var lastMount: String? { knownMount.withLock { $0 } }

    private static func isCgroup2Root(_ path: String) -> Bool {
        let fd = withCgroupPath(path) { open($0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var type: Int64 = 0
        var st = Glibc.stat(), parent = Glibc.stat()
        // The mount's root: a different device from its parent directory's (or the root of everything).
        guard bt_fstatfs_type(fd, &type) == 0, type == cgroup2Magic, fstat(fd, &st) == 0 else { return false }
        return fstatat(fd, "..", &parent, 0) == 0 && (parent.st_dev != st.st_dev || parent.st_ino == st.st_ino)
    }

    /// The directory a source names: absolute as given, or relative to the cgroup v2 mount.
    public static func directory(of source: CgroupSource) throws(KernelError) -> String {
        if source.path.hasPrefix("/") { return source.path }
        guard let mount = try cgroup2Mount() else {
            throw KernelError(.step(.findCgroupMount), path: source.path, detail: "no cgroup2 file system in /proc/self/mountinfo")
        }
        return mount + "/" + source.path
    }

    public static func scan(_ sources: [CgroupSource]) throws(KernelError) -> CgroupScan {
        var scan = CgroupScan()
        let sources = Set(sources).sorted()
        for source in sources {
            let directory = try directory(of: source)
            var found: [Cgroup] = []
            let present = try list(directory, below: "", depth: source.depth, into: &found, watched: &scan.watched)
            scan.cgroups[source] = found
            if !present { scan.digestLines.append("cgroups \(source.path) \(source.depth): absent") }
        }
        for source in sources where !(scan.cgroups[source] ?? []).isEmpty {
            var again: [Cgroup] = [], unwatched: [String] = []
            _ = try list(try directory(of: source), below: "", depth: source.depth, into: &again, watched: &unwatched)
            let still = Set(again.map { StillThere(id: $0.id, path: $0.path) })
            scan.cgroups[source]?.removeAll { !still.contains(StillThere(id: $0.id, path: $0.path)) }
        }
        for source in sources {
            let listed = (scan.cgroups[source] ?? []).map { "\($0.id) \($0.path)" }.joined(separator: ",")
            scan.digestLines.append("cgroups \(source.path) \(source.depth): \(listed)")
        }
        return scan
    }

    /// The cgroups of `source` (whose directory is `base`) at or beneath `child` (a path below it, at
    /// most `depth` names deep) as they are now, and the directories to watch among them: for an inotify
    /// event that names `child`. A cgroup removed meanwhile is simply not there.
    public static func cgroups(of source: CgroupSource, in base: String, at child: String) throws(KernelError)
        -> (cgroups: [Cgroup], watched: [String]) {
        let level = child.split(separator: "/").count
        guard level >= 1, level <= source.depth else { return ([], []) }
        let directory = base.hasSuffix("/") ? base + child : base + "/" + child
        var found: [Cgroup] = [], watched: [String] = []
        if level == source.depth {
            var st = Glibc.stat()
            guard lstat(directory, &st) == 0 else {
                if errno == ENOENT || errno == ENOTDIR { return ([], []) }
                throw KernelError(.step(.statCgroup), path: directory, negativeErrno: -errno)
            }
            guard st.st_mode & S_IFMT == S_IFDIR else { return ([], []) }
            let name = child.split(separator: "/").last.map(String.init) ?? child
            return ([Cgroup(id: UInt64(st.st_ino), name: name, path: child)], [])
        }
        _ = try list(directory, below: child, depth: source.depth - level, into: &found, watched: &watched)
        return (found, watched)
    }

    /// Lists the cgroups `depth` levels below `directory`; false when `directory` does not exist.
    private static func list(_ directory: String, below relative: String, depth: Int, into found: inout [Cgroup],
                             watched: inout [String]) throws(KernelError) -> Bool {
        let fd = withCgroupPath(directory) { open($0, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else {
            let error = errno
            if error == ENOENT && relative.isEmpty { return false }
            // A cgroup below the source that went away while it was listed has no cgroups either.
            if error == ENOENT { return true }
            throw KernelError(.step(.openCgroupDirectory), path: directory, negativeErrno: -error)
        }
        var type: Int64 = 0
        let result = bt_fstatfs_type(fd, &type)
        guard result == 0 else {
            close(fd)
            throw KernelError(.call(.fstatfs), path: directory, negativeErrno: result)
        }
        guard type == cgroup2Magic else {
            close(fd)
            throw KernelError(.step(.scanCgroups), path: directory,
                              detail: "not a cgroup v2 directory (file system magic 0x\(String(type, radix: 16)))")
        }
        guard let stream = fdopendir(fd) else {
            close(fd)
            throw KernelError(.call(.opendir), path: directory, negativeErrno: -errno)
        }
        defer { closedir(stream) }
        watched.append(directory)
        var children: [(name: String, id: UInt64)] = []
        while let entry = readdir(stream) {
            guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
            // Byte-exact: a name that is not UTF-8 keeps its bytes as TreePath escapes them (`.xHH`).
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                TreePath.name(raw: UnsafeRawBufferPointer(rebasing: raw[..<(raw.firstIndex(of: 0) ?? raw.count)]))
            }
            if name == "." || name == ".." { continue }
            children.append((name, UInt64(entry.pointee.d_ino)))
        }
        children.sort { $0.name < $1.name }
        for child in children {
            let path = relative.isEmpty ? child.name : relative + "/" + child.name
            if depth == 1 {
                found.append(Cgroup(id: child.id, name: child.name, path: path))
            } else {
                _ = try list(directory + "/" + child.name, below: path, depth: depth - 1, into: &found, watched: &watched)
            }
        }
        return true
    }

    private struct StillThere: Hashable {
        let id: UInt64
        let path: String
    }
}
