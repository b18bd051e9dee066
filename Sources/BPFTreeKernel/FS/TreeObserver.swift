import BPFTreeCore
import CBPFTreeShim
import Glibc
import SystemPackage

/// Reads the live tree beneath an anchor: the ancestors of each manifest root and each root's subtree.
/// Never follows a symlink and never `open()`s a pin (opening a pinned iterator link runs it): pins are
/// inspected with `BPF_OBJ_GET` relative to their directory plus `BPF_OBJ_GET_INFO_BY_FD`, except those
/// the ledger vouches for (`VouchedPins`), which cost one `fstatat` like any other entry.
public struct TreeObserver {
    public let anchor: Anchor
    /// Map records by path; a pin found with the recorded inode is not inspected.
    public var vouched: VouchedPins?

    /// Whether pins not vouched for are inspected; without, they are `.pin` (stat alone, for `TreeStamp`)
    /// but for those in `alsoInspects` (a stamp's links).
    public var inspectsPins = true
    public var alsoInspects: Set<TreePath> = []

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
        // ancestors the previous root opened are reused (a thousand roots below jobs/A open jobs/A once).
        var chain: [(path: TreePath, descriptor: Descriptor)] = []
        for root in TreePath.topmost(roots) {
            try observe(root: root, into: &tree, chain: &chain)
        }
        return tree
    }

    private func observe(root: TreePath, into tree: inout LiveTree,
                         chain: inout [(path: TreePath, descriptor: Descriptor)]) throws(KernelError) {
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
            guard let entry = try entry(parentFD, name, path: path, into: &tree) else { return }
            tree.record(path, entry)
            guard entry.kind == .directory else { return }
            let isRoot = index == components.count - 1
            parent = try anchor.openDirectory(name, from: parentFD, readable: isRoot, displayPath: path)
            if !isRoot, let parent { chain.append((path, parent)) }
        }
        if root.isAnchor {
            parent = try anchor.openDirectory(".", readable: true, displayPath: .anchor)
        }
        if let parent { try walk(parent, path: root, into: &tree) }
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

    /// Records every entry beneath the readable directory `directory`, depth first.
    private func walk(_ directory: Descriptor, path: TreePath, into tree: inout LiveTree) throws(KernelError) {
        for name in try names(in: directory, path: path) {
            let child = path.appending(name)
            guard let entry = try entry(directory.fd, name, path: child, into: &tree) else { continue }
            tree.record(child, entry)
            if entry.kind == .directory {
                let sub = try anchor.openDirectory(name, from: directory.fd, readable: true, displayPath: child)
                try walk(sub, path: child, into: &tree)
            }
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
            } else if !inspectsPins && !alsoInspects.contains(path) {
                kind = .pin
            } else {
                kind = try pinKind(directory, name, path: path, expectingLink: !inspectsPins)
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
