import BPFTreeCore
import CBPFTreeShim
import Dispatch
import Glibc
import Synchronization
import SystemPackage

/// Reads the live tree beneath an anchor: the ancestors of each manifest root and each root's subtree.
/// Never follows a symlink and never `open()`s a pin (opening a pinned iterator link runs it): pins are
/// inspected with `BPF_OBJ_GET` relative to their directory plus `BPF_OBJ_GET_INFO_BY_FD`, except those
/// the ledger vouches for (`VouchedPins`), which cost one `fstatat` like any other entry.
public struct TreeObserver: Sendable {
    public let anchor: Anchor
    /// Map records by path; a pin found with the recorded inode is not inspected.
    public var vouched: VouchedPins?

    /// Whether pins not vouched for are inspected; without, they are `.pin` (stat alone, for `TreeStamp`)
    /// but for those in `alsoInspects` (a stamp's links).
    public var inspectsPins = true
    public var alsoInspects: [TreePath: StampedLink] = [:]
    private let byID = LinksByID()
    /// Threads one walk may use, for many roots or a directory of many entries (a thousand cgroups'
    /// subtrees): a walk waits on syscalls, so a no-op pass's wall time falls with the CPUs it has.
    public var workers = 1

    /// A stamp's link: while its pin keeps `inode`, it holds link `id`, read by id (no path looked up:
    /// `BPF_LINK_GET_FD_BY_ID`, for CAP_SYS_ADMIN) instead of through its pin.
    public struct StampedLink: Sendable {
        public let inode: UInt64
        public let id: UInt32

        public init(inode: UInt64, id: UInt32) { (self.inode, self.id) = (inode, id) }
    }

    /// Whether reading links by id still works in this walk (refused without CAP_SYS_ADMIN, as under a token).
    private final class LinksByID: Sendable {
        let refused = Atomic(false)
    }

    /// One per online CPU, at most 4 (beyond, the walks contend in the kernel).
    public static var availableWorkers: Int { max(1, min(4, sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Names the kernel puts at the root of every bpffs mount, and bpftree's ledger and stamp (never part
    /// of a tree).
    public static let skippedNames: Set<String> = Reserved.mapNames.union(["maps.debug", "progs.debug"])

    public init(anchor: Anchor) { self.anchor = anchor }

    /// `expectedEntries` only sizes the tables.
    public func observe(roots: [TreePath], expectedEntries: Int = 0) throws(KernelError) -> LiveTree {
        var tree = LiveTree(capacity: expectedEntries)
        var st = Glibc.stat()
        guard fstat(anchor.fd.rawValue, &st) == 0 else { throw KernelError(.call(.fstat), path: ".", negativeErrno: -errno) }
        tree.record(.anchor, LiveEntry(kind: .directory, mode: st.st_mode, uid: st.st_uid, gid: st.st_gid,
                                       inode: UInt64(st.st_ino)))
        // A root beneath another root is already covered by that root's walk. Roots come sorted, so the
        // ancestors the previous root opened are reused (a thousand roots below jobs/A open jobs/A once),
        // and an ancestor found missing (or not a directory) answers for every later root below it.
        let topmost = TreePath.topmost(roots)
        try spread(topmost.count, into: &tree, expected: expectedEntries) { (runs, walked, spreading) throws(KernelError) in
            var chain: [(path: TreePath, descriptor: Descriptor)] = []
            var dead: TreePath?
            for index in runs {
                if let dead, topmost[index].isDescendant(of: dead) { continue }
                dead = try observe(root: topmost[index], into: &walked, chain: &chain, spreading: spreading)
            }
        }
        return tree
    }

    /// Runs `body` over items `0..<count`: at once in consecutive runs, one per thread, each into a tree
    /// of its own merged into `tree` in item order (the same tree, in the same order, as one run), when
    /// there are workers and items enough; else in one run, told it may spread the walks below it.
    private func spread(_ count: Int, into tree: inout LiveTree, expected: Int,
                        _ body: @Sendable (Range<Int>, inout LiveTree, _ spreading: Bool) throws(KernelError) -> Void)
        throws(KernelError) {
        let parts = workers > 1 && count >= 64 ? workers : 1
        guard parts > 1 else { return try body(0..<count, &tree, workers > 1) }
        let results = Mutex<[Int: Result<LiveTree, KernelError>]>([:])
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            var walked = LiveTree(capacity: expected / parts + 16)
            let result: Result<LiveTree, KernelError>
            do throws(KernelError) {
                try body((count * part / parts)..<(count * (part + 1) / parts), &walked, false)
                result = .success(walked)
            } catch {
                result = .failure(error)
            }
            results.withLock { $0[part] = result }
        }
        let walked = results.withLock { $0 }
        // The first failure in item order, as one run would have met it.
        for part in 0..<parts {
            guard let result = walked[part] else { continue }
            try tree.merge(result.get())
        }
    }

    /// Returns the root's ancestor that is missing or not a directory, if one is.
    private func observe(root: TreePath, into tree: inout LiveTree,
                         chain: inout [(path: TreePath, descriptor: Descriptor)], spreading: Bool) throws(KernelError) -> TreePath? {
        let components = root.components
        var shared = 0
        var path = TreePath.anchor
        // The longest prefix of the root's ancestors the chain holds, already recorded and opened.
        while shared < min(chain.count, components.count - 1), chain[shared].path == path.appending(components[shared]) {
            path = chain[shared].path
            shared += 1
        }
        chain.removeLast(chain.count - shared)
        var parent: Descriptor? = chain.last?.descriptor
        for (index, name) in components.enumerated().dropFirst(shared) {
            let parentFD = parent?.fd ?? anchor.fd
            path = path.appending(name)
            let isRoot = index == components.count - 1
            guard let entry = try entry(parentFD, name, path: path, into: &tree) else { return isRoot ? nil : path }
            tree.record(path, entry)
            guard entry.kind == .directory else { return isRoot ? nil : path }
            parent = try anchor.openDirectory(name, from: parentFD, readable: isRoot, displayPath: path)
            if !isRoot, let parent { chain.append((path, parent)) }
        }
        if root.isAnchor {
            parent = try anchor.openDirectory(".", readable: true, displayPath: .anchor)
        }
        if let parent { try walk(parent, path: root, into: &tree, spreading: spreading) }
        return nil
    }

    /// The entry at `path` alone (its directories are opened without following symlinks), or nil when
    /// there is none.
    public func entry(at path: TreePath) throws(KernelError) -> LiveEntry? {
        var tree = LiveTree()
        guard !path.isAnchor else {
            var st = Glibc.stat()
            guard fstat(anchor.fd.rawValue, &st) == 0 else { throw KernelError(.call(.fstat), path: ".", negativeErrno: -errno) }
            return LiveEntry(kind: .directory, mode: st.st_mode, uid: st.st_uid, gid: st.st_gid, inode: UInt64(st.st_ino))
        }
        var parent: Descriptor?
        var walked = TreePath.anchor
        for name in path.parent.components {
            walked = walked.appending(name)
            guard let directory = try entry(parent?.fd ?? anchor.fd, name, path: walked, into: &tree),
                  directory.kind == .directory else { return nil }
            parent = try anchor.openDirectory(name, from: parent?.fd ?? anchor.fd, readable: false, displayPath: walked)
        }
        return try entry(parent?.fd ?? anchor.fd, path.name, path: path, into: &tree)
    }

    /// Records every entry beneath the readable directory `directory`, depth first; the entries of a large
    /// directory (a thousand cgroups' subtrees below jobs/A) on several threads when `spreading`.
    private func walk(_ directory: Descriptor, path: TreePath, into tree: inout LiveTree, spreading: Bool) throws(KernelError) {
        let names = try names(in: directory, path: path)
        guard spreading else {
            for name in names { try visit(name, in: directory, path: path, into: &tree, spreading: false) }
            return
        }
        try spread(names.count, into: &tree, expected: names.count) { (runs, walked, spreading) throws(KernelError) in
            for index in runs { try visit(names[index], in: directory, path: path, into: &walked, spreading: spreading) }
        }
    }

    /// Records the entry `name` of `directory` and, for a directory, everything beneath it.
    private func visit(_ name: String, in directory: Descriptor, path: TreePath, into tree: inout LiveTree,
                       spreading: Bool) throws(KernelError) {
        let child = path.appending(name)
        guard let entry = try entry(directory.fd, name, path: child, into: &tree) else { return }
        tree.record(child, entry)
        if entry.kind == .directory {
            let sub = try anchor.openDirectory(name, from: directory.fd, readable: true, displayPath: child)
            try walk(sub, path: child, into: &tree, spreading: spreading)
        }
    }

    /// Directory entries by getdents64, without `.`, `..` and the kernel's debug files; sorted, so that
    /// the walk visits paths in (nearly always) `TreePath` order.
    private func names(in directory: Descriptor, path: TreePath) throws(KernelError) -> [String] {
        try Self.names(in: directory, path: path)
    }

    /// Directory entries by getdents64, without `.`, `..` and the kernel's debug files, sorted.
    static func names(in directory: Descriptor, path: TreePath) throws(KernelError) -> [String] {
        var names: [String] = []
        // Never read before getdents64 writes it, so not zeroed.
        var buffer = [UInt8](unsafeUninitializedCapacity: 32 * 1024) { _, count in count = 32 * 1024 }
        while true {
            let count = buffer.withUnsafeMutableBytes { bt_getdents(directory.rawValue, $0.baseAddress, $0.count) }
            guard count >= 0 else { throw KernelError(.call(.getdents64), path: path.description, negativeErrno: count) }
            // String order is byte order for ASCII names; any other order only makes sorting slower.
            if count == 0 { return names.sorted() }
            buffer.withUnsafeBytes { raw in
                var offset = 0
                while offset < Int(count) {
                    // struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name[].
                    let length = Int(raw.loadUnaligned(fromByteOffset: offset + 16, as: UInt16.self))
                    let nameStart = offset + 19
                    let nameBytes = raw[nameStart..<(offset + length)]
                    let nameEnd = nameBytes.firstIndex(of: 0) ?? nameBytes.endIndex
                    // Names are bytes: one that is not UTF-8 is kept, escaped (`TreePath.name(raw:)`).
                    let name = TreePath.name(raw: UnsafeRawBufferPointer(rebasing: raw[nameStart..<nameEnd]))
                    if name != "." && name != ".." && !Self.skippedNames.contains(name) { names.append(name) }
                    offset += length
                }
            }
        }
    }

    /// The entry `name` in `directory`, or nil if it does not exist.
    private func entry(_ directory: FileDescriptor, _ name: String, path: TreePath,
                       into tree: inout LiveTree) throws(KernelError) -> LiveEntry? {
        var st = Glibc.stat()
        let result = withKernelName(name) { raw in retryingEINTR { fstatat(directory.rawValue, raw, &st, Int32(BT_AT_SYMLINK_NOFOLLOW)) } }
        if result == -ENOENT { return nil }
        guard result == 0 else { throw KernelError(.call(.fstatat), path: path.description, negativeErrno: result) }
        let kind: LiveEntry.Kind
        switch st.st_mode & S_IFMT {
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        case S_IFREG:
            if let record = vouched?.record(for: path), record.inode == UInt64(st.st_ino) {
                kind = record.kind == .map ? .recordedMap(fingerprint: record.fingerprint) : .recordedPin(record.kind)
            } else if !inspectsPins, let stamped = alsoInspects[path] {
                if let byID = stampedLink(stamped, inode: UInt64(st.st_ino)) {
                    kind = byID
                } else {
                    kind = try pinKind(directory, name, path: path, expectingLink: true)
                }
                tree.inspectedPins += 1
            } else if !inspectsPins {
                kind = .pin
            } else {
                kind = try pinKind(directory, name, path: path)
                tree.inspectedPins += 1
            }
        case S_IFCHR: kind = .other("character device")
        case S_IFBLK: kind = .other("block device")
        case S_IFIFO: kind = .other("fifo")
        case S_IFSOCK: kind = .other("socket")
        default: kind = .other("file of type \(String(st.st_mode & S_IFMT, radix: 8))")
        }
        return LiveEntry(kind: kind, mode: st.st_mode & 0o7777, uid: st.st_uid, gid: st.st_gid, inode: UInt64(st.st_ino))
    }

    /// A stamp's link read by id when its pin still has the stamped inode; nil when it must be read through
    /// its pin (another inode, or ids refused).
    private func stampedLink(_ stamped: StampedLink, inode: UInt64) -> LiveEntry.Kind? {
        guard stamped.inode == inode, stamped.id != 0, !byID.refused.load(ordering: .relaxed) else { return nil }
        var info = bt_link_info()
        let result = bt_link_info_by_id(stamped.id, &info)
        if result == -EPERM { byID.refused.store(true, ordering: .relaxed) }
        guard result == 0, info.id == stamped.id else { return nil }
        return .link(LiveLinks.info(info))
    }

    /// What a pin holds, by `BPF_OBJ_GET` relative to its directory (never by opening the pin).
    /// `expectingLink`: a stamp's link, read as a link first (no look at what kind of object it is).
    private func pinKind(_ directory: FileDescriptor, _ name: String, path: TreePath,
                         expectingLink: Bool = false) throws(KernelError) -> LiveEntry.Kind {
        let fd = withKernelName(name) { bt_obj_get_at(directory.rawValue, $0) }
        if fd == -ENOENT { return .pin }
        guard fd >= 0 else {
            throw KernelError(.bpf(.objGet), path: path.description, negativeErrno: fd)
                .adding(KernelError.capabilityHint(fd, needs: [.dacOverride], for: KernelError.pinAccess))
        }
        let object = Descriptor(owning: fd)
        if expectingLink {
            var info = bt_link_info()
            if bt_link_info_by_fd(object.rawValue, &info) == 0 { return .link(LiveLinks.info(info)) }
        }
        switch bt_fd_object_kind(object.rawValue) {
        case Int32(BT_OBJECT_MAP.rawValue):
            var info = bt_map_info()
            let result = bt_map_info_by_fd(object.rawValue, &info)
            guard result == 0 else { throw KernelError(.bpf(.objGetInfoByFD), path: path.description, negativeErrno: result) }
            return .map(LiveMapInfo(id: info.id, type: info.type, keySize: info.key_size, valueSize: info.value_size,
                                    maxEntries: info.max_entries, flags: info.map_flags, mapExtra: info.map_extra,
                                    name: cString(info.name), frozen: info.frozen < 0 ? nil : info.frozen != 0))
        case Int32(BT_OBJECT_PROG.rawValue):
            var info = bt_prog_info()
            let result = bt_prog_info_by_fd(object.rawValue, &info)
            guard result == 0 else { throw KernelError(.bpf(.objGetInfoByFD), path: path.description, negativeErrno: result) }
            let mapIDs = withUnsafeBytes(of: info.map_ids) { Array($0.bindMemory(to: UInt32.self).prefix(Int(info.nr_map_ids))) }
            return .program(LiveProgramInfo(id: info.id, type: info.type, tag: info.tag, name: cString(info.name),
                                            mapIDs: mapIDs))
        case Int32(BT_OBJECT_LINK.rawValue):
            var info = bt_link_info()
            let result = bt_link_info_by_fd(object.rawValue, &info)
            guard result == 0 else { throw KernelError(.bpf(.objGetInfoByFD), path: path.description, negativeErrno: result) }
            return .link(LiveLinks.info(info))
        default: return .pin
        }
    }
}
