import BPFTreeCore
import BPFTreeKernel
import Glibc
import SystemPackage

/// A bpffs tree, its objects and the ledger, in memory: stands in for `LiveKernel` so that every failure
/// path of the executor can be driven. Each call is recorded (`calls`) and may be refused (`refuse`).
final class RecordingKernel: KernelOperations {
    struct Entry: Equatable {
        var inode: UInt64
        var mode: UInt32
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        /// The pinned object; nil for a directory.
        var object: Int?
    }

    /// A map the fake made: its entries and whether it is frozen.
    struct MapState: Equatable {
        var name: String
        var entries: [[UInt8]: [UInt8]] = [:]
        var frozen = false
    }

    var tree: [TreePath: Entry] = [:]
    var ledger: [TreePath: LedgerRecord] = [:]
    var maps: [Int: MapState] = [:]
    /// Every call, as `"<operation> <path or detail>"`, in order.
    private(set) var calls: [String] = []
    /// The errno to refuse a call with (given as recorded in `calls`), or nil to make it.
    var refuse: (String) -> Errno? = { _ in nil }
    /// The links on their hooks: made by a batch or `reattach`, or `pinnedLink`, and not detached since.
    private(set) var attached: Set<Int> = []
    /// Why a link pinned at a path cannot be attached again, as `detachLink` reports it.
    var unrestorable: [TreePath: String] = [:]
    /// The tag `load` gives a program (by its `program` name); the planned tag when missing.
    var tags: [String: UInt64] = [:]
    let batchLimits: BatchLimits
    let possibleCPUs = 2

    private var nextInode: UInt64 = 1000
    private var nextObject = 1
    /// The object each of the fake's live descriptors stands for (of /dev/null, closed by `Descriptor`).
    private var objects: [Int32: Int] = [:]

    init(limits: BatchLimits = BatchLimits(maxOps: 64, dataSize: 4096, maxMaps: 16)) {
        batchLimits = limits
    }

    /// The tree and the ledger, to compare before and after a run.
    var state: [String] {
        tree.map { "\($0.key) \($0.value.object == nil ? "dir" : "obj") \(String($0.value.mode, radix: 8)) \($0.value.inode)" }.sorted()
            + ledger.values.map { "ledger \($0.path) \($0.kind.name) \($0.state) \($0.inode)" }.sorted()
    }

    /// Adds a directory (and its missing parents) as if it were there before the run.
    func directory(_ path: String, mode: UInt32 = 0o755) {
        let path = TreePath(joined: path)
        for ancestor in path.ancestors + [path] where !ancestor.isAnchor && tree[ancestor] == nil {
            tree[ancestor] = Entry(inode: inode(), mode: mode)
        }
    }

    /// Adds a pinned map as if it were there before the run; returns its object.
    @discardableResult
    func pinnedMap(_ path: String, name: String = "old") -> Int {
        let object = newObject()
        maps[object] = MapState(name: name)
        tree[TreePath(joined: path)] = Entry(inode: inode(), mode: 0o600, object: object)
        return object
    }

    /// Adds a pinned program or link as if it were there before the run; returns its object.
    @discardableResult
    func pinnedObject(_ path: String) -> Int {
        let object = newObject()
        tree[TreePath(joined: path)] = Entry(inode: inode(), mode: 0o600, object: object)
        return object
    }

    /// Adds a pinned link on its hook as if it were there before the run; returns its object.
    @discardableResult
    func pinnedLink(_ path: String) -> Int {
        let object = pinnedObject(path)
        attached.insert(object)
        return object
    }

    func calls(starting prefix: String) -> [String] { calls.filter { $0.hasPrefix(prefix) } }

    // MARK: KernelOperations

    func makeDirectory(_ path: TreePath) throws(KernelError) {
        try call("mkdir", path)
        try parentExists(path, .call(.mkdirat))
        guard tree[path] == nil else { throw KernelError(.call(.mkdirat), path: path.description, errno: .fileExists) }
        tree[path] = Entry(inode: inode(), mode: 0o700)
    }

    func status(_ path: TreePath) throws(KernelError) -> EntryStatus {
        try call("stat", path)
        guard let entry = tree[path] else { throw KernelError(.call(.fstatat), path: path.description, errno: .noSuchFileOrDirectory) }
        return EntryStatus(inode: entry.inode, mode: entry.mode, uid: entry.uid, gid: entry.gid, isDirectory: entry.object == nil)
    }

    func setAttributes(_ path: TreePath, mode: UInt32?, owner: Owner) throws(KernelError) {
        try call("attributes", path)
        guard tree[path] != nil else { throw KernelError(.call(.fchmodat2), path: path.description, errno: .noSuchFileOrDirectory) }
        if let mode { tree[path]?.mode = mode }
        if let uid = owner.uid { tree[path]?.uid = uid }
        if let gid = owner.gid { tree[path]?.gid = gid }
    }

    func pin(_ object: Descriptor, at path: TreePath) throws(KernelError) {
        try call("pin", path)
        try parentExists(path, .bpf(.objPin))
        guard tree[path] == nil else { throw KernelError(.bpf(.objPin), path: path.description, errno: .fileExists) }
        guard let id = objects[object.rawValue] else { throw KernelError(.bpf(.objPin), path: path.description, errno: .badFileDescriptor) }
        tree[path] = Entry(inode: inode(), mode: 0o600, object: id)
    }

    func rename(_ path: TreePath, to name: String, exchange: Bool) throws(KernelError) {
        let target = path.parent.appending(name)
        try call(exchange ? "exchange" : "rename", path, "-> \(name)")
        guard tree[path] != nil else { throw KernelError(.call(.renameat2), path: path.description, errno: .noSuchFileOrDirectory) }
        if exchange {
            guard tree[target] != nil else { throw KernelError(.call(.renameat2), path: target.description, errno: .noSuchFileOrDirectory) }
            let (a, b) = (subtree(path), subtree(target))
            for key in a.keys { tree[key] = nil }
            for key in b.keys { tree[key] = nil }
            for (key, entry) in a { tree[moved(key, from: path, to: target)] = entry }
            for (key, entry) in b { tree[moved(key, from: target, to: path)] = entry }
        } else {
            guard tree[target] == nil else { throw KernelError(.call(.renameat2), path: target.description, errno: .fileExists) }
            let a = subtree(path)
            for key in a.keys { tree[key] = nil }
            for (key, entry) in a { tree[moved(key, from: path, to: target)] = entry }
        }
    }

    func unlink(_ path: TreePath, directory: Bool) throws(KernelError) {
        try call(directory ? "rmdir" : "unlink", path)
        guard let entry = tree[path] else { return }
        if directory {
            guard entry.object == nil else { throw KernelError(.call(.rmdir), path: path.description, errno: .notDirectory) }
            guard subtree(path).count == 1 else { throw KernelError(.call(.rmdir), path: path.description, errno: .directoryNotEmpty) }
        } else if entry.object == nil {
            throw KernelError(.call(.unlinkat), path: path.description, errno: .isDirectory)
        }
        tree[path] = nil
    }

    func removeTemporary(_ path: TreePath) throws(KernelError) {
        try call("removeTemporary", path)
        for key in subtree(path).keys { tree[key] = nil }
    }

    func openPin(_ path: TreePath) throws(KernelError) -> Descriptor {
        try call("open", path)
        guard let object = tree[path]?.object else { throw KernelError(.bpf(.objGet), path: path.description, errno: .noSuchFileOrDirectory) }
        return descriptor(for: object)
    }

    func openNamespace(_ path: String, inode: UInt64, for link: TreePath) throws(KernelError) -> Descriptor {
        try call("netns", link, path)
        return descriptor(for: 0)
    }

    func checkInterface(_ name: String, index: UInt32, for link: TreePath) throws(KernelError) {
        try call("interface", link, name)
    }

    func openPerfEvent(_ resolved: ResolvedLink, for link: TreePath) throws(KernelError) -> Descriptor {
        try call("perf_event_open", link, resolved.summary)
        return descriptor(for: 0)
    }

    func detachLink(_ path: TreePath) throws(KernelError) {
        _ = try detachLinkForSuccessor(path)
    }

    func detachLinkForSuccessor(_ path: TreePath) throws(KernelError) -> DetachedLink {
        try call("detach", path)
        guard let object = tree[path]?.object else { throw KernelError(.bpf(.linkDetach), path: path.description, errno: .noSuchFileOrDirectory) }
        attached.remove(object)
        return DetachedLink(path: path, id: UInt32(object), record: ledger[path], unrestorable: unrestorable[path])
    }

    func reattach(_ detached: DetachedLink, renamed: [UInt32: UInt32]) throws(KernelError) -> (Descriptor, id: UInt32) {
        try call("reattach", detached.path, renamed.isEmpty ? "" : renamed.sorted { $0.key < $1.key }.map { "\($0.key)->\($0.value)" }.joined(separator: ","))
        let object = newObject()
        attached.insert(object)
        return (descriptor(for: object), UInt32(object))
    }

    func updateLink(_ path: TreePath, to program: TreePath, expecting: UInt32) throws(KernelError) {
        try call("update", path, "\(program) from \(expecting)")
    }

    func objectID(_ object: Descriptor, path: TreePath) throws(KernelError) -> (id: UInt32, isLink: Bool) {
        try call("id", path)
        return (UInt32(bitPattern: object.rawValue), false)
    }

    func openCgroup(_ cgroup: String, id: UInt64, for link: TreePath) throws(KernelError) -> Descriptor {
        try call("cgroup", link, cgroup)
        return descriptor(for: 0)
    }

    func run(_ batch: MapBatch) throws(KernelError) -> [BatchResult] {
        let names = batch.ops.compactMap { op -> String? in if case .create(let spec) = op { spec.name } else { nil } }
        try call("batch", .anchor, "maps \(names.joined(separator: ","))")
        var made: [Int: Int] = [:]
        return batch.ops.enumerated().map { index, op in
            switch op {
            case .create(let spec):
                if let errno = refuse("create \(spec.name)") { return .refused(-errno.rawValue) }
                let object = newObject()
                maps[object] = MapState(name: spec.name)
                made[index] = object
                return .made(descriptor(for: object))
            case .update(let create, let key, let value):
                guard let object = made[create] else { return .refused(-EBADF) }
                if let errno = refuse("update \(maps[object]?.name ?? "")") { return .refused(-errno.rawValue) }
                maps[object]?.entries[key] = value
                return .done
            case .freeze(let create):
                guard let object = made[create] else { return .refused(-EBADF) }
                maps[object]?.frozen = true
                return .done
            }
        }
    }

    func run(_ links: [LinkOp]) throws(KernelError) -> [BatchResult] {
        try call("batch", .anchor, "links \(links.count)")
        for link in links {
            if let name = link.rawTracepoint {
                calls.append("raw tracepoint \(name)")
                continue
            }
            calls.append("link attach \(link.attachType) cgroup \(link.target != nil) interface \(link.interfaceIndex) flags \(link.flags) info \(link.info.count)"
                         + (link.relativeID == 0 ? "" : " relative \(link.relativeID)") + (link.args.isEmpty ? "" : " args \(link.args.count)")
                         + (link.uprobeMulti.map { " uprobe_multi \($0.file) \($0.offsets.count) flags \($0.flags) pid \($0.pid)" } ?? ""))
        }
        return links.map { link in
            guard objects[link.program.rawValue] != nil else { return .refused(-EBADF) }
            let object = newObject()
            attached.insert(object)
            return .made(descriptor(for: object))
        }
    }

    func write(_ contents: [(key: [UInt8], value: [UInt8])], into map: Descriptor, path: TreePath) throws(KernelError) {
        try call("write", path, "\(contents.count)")
        guard let object = objects[map.rawValue] else { throw KernelError(.bpf(.mapUpdateElem), path: path.description, errno: .badFileDescriptor) }
        for entry in contents { maps[object]?.entries[entry.key] = entry.value }
    }

    func freeze(_ map: Descriptor, path: TreePath) throws(KernelError) {
        try call("freeze", path)
        guard let object = objects[map.rawValue] else { throw KernelError(.bpf(.mapFreeze), path: path.description, errno: .badFileDescriptor) }
        maps[object]?.frozen = true
    }

    func copyEntries(from path: TreePath, id: UInt32, into new: Descriptor, keySize: UInt32,
                     valueLength: Int) throws(KernelError) -> UInt64 {
        try call("copy", path)
        guard let old = tree[path]?.object, let entries = maps[old]?.entries, let object = objects[new.rawValue] else {
            throw KernelError(.step(.copyEntries), path: path.description, errno: .noSuchFileOrDirectory)
        }
        if maps[object]?.frozen == true { throw KernelError(.step(.copyEntries), path: path.description, errno: .permissionDenied) }
        maps[object]?.entries.merge(entries) { $1 }
        return UInt64(entries.count)
    }

    func load(_ specs: [ProgramSpec], maps: [(name: String, map: Descriptor)], path: TreePath) throws(KernelError) -> [(Descriptor, tag: UInt64)] {
        try call("load", path, specs.map(\.program).joined(separator: ","))
        return specs.map { spec in (descriptor(for: newObject()), tags[spec.program] ?? 0) }
    }

    func record(_ records: [LedgerRecord]) throws(KernelError) {
        try call("record", .anchor, records.map { "\($0.path) \($0.state)" }.joined(separator: ","))
        for record in records { ledger[record.path] = record }
    }

    func forget(_ paths: [TreePath]) throws(KernelError) {
        try call("forget", .anchor, paths.map(\.description).joined(separator: ","))
        for path in paths { ledger[path] = nil }
    }

    // MARK: Helpers

    private func call(_ operation: String, _ path: TreePath, _ detail: String = "") throws(KernelError) {
        let text = path.isAnchor ? "\(operation) \(detail)" : detail.isEmpty ? "\(operation) \(path)" : "\(operation) \(path) \(detail)"
        calls.append(text)
        if let errno = refuse(text) { throw KernelError(Self.operations[operation]!, path: path.description, errno: errno) }
    }

    /// The operation the live kernel names for each of the fake's calls.
    private static let operations: [String: KernelOperation] = [
        "attributes": .call(.fchmodat2), "batch": .step(.batchProgram), "cgroup": .step(.openCgroup), "copy": .step(.copyEntries),
        "detach": .bpf(.linkDetach), "forget": .bpf(.mapDeleteBatch), "record": .bpf(.mapUpdateBatch), "freeze": .bpf(.mapFreeze),
        "id": .bpf(.objGetInfoByFD), "interface": .call(.ifNameToIndex), "load": .step(.loadProgram), "mkdir": .call(.mkdirat),
        "netns": .step(.openNetworkNamespace), "open": .bpf(.objGet), "perf_event_open": .call(.perfEventOpen), "pin": .bpf(.objPin),
        "reattach": .step(.attachAgain), "removeTemporary": .call(.unlinkat), "stat": .call(.fstatat), "update": .bpf(.linkUpdate),
        "write": .bpf(.mapUpdateElem), "rmdir": .call(.rmdir), "unlink": .call(.unlinkat), "exchange": .call(.renameExchange),
        "rename": .call(.renameNoReplace),
    ]

    private func parentExists(_ path: TreePath, _ operation: KernelOperation) throws(KernelError) {
        guard path.parent.isAnchor || tree[path.parent]?.object == nil && tree[path.parent] != nil else {
            throw KernelError(operation, path: path.description, errno: .noSuchFileOrDirectory)
        }
    }

    private func subtree(_ path: TreePath) -> [TreePath: Entry] {
        tree.filter { $0.key == path || $0.key.isDescendant(of: path) }
    }

    private func moved(_ key: TreePath, from: TreePath, to: TreePath) -> TreePath {
        key == from ? to : TreePath(to.components + key.components.dropFirst(from.depth))
    }

    private func inode() -> UInt64 {
        nextInode += 1
        return nextInode
    }

    private func newObject() -> Int {
        nextObject += 1
        return nextObject
    }

    private func descriptor(for object: Int) -> Descriptor {
        let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
        precondition(fd >= 0, "open /dev/null")
        objects[fd] = object
        return Descriptor(owning: fd)
    }
}
