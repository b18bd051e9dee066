import BPFTreeYAML
import Crypto

/// What a pass that found the tree converged leaves behind, so that the next pass with the same inputs
/// can tell from a walk alone (`getdents` + `fstatat`, no parsing, no `BPF_OBJ_GET`) that nothing changed.
///
/// It binds the SHA-256 of the inputs (bpftree's version, the settings that change a plan, and the
/// name and bytes of every manifest and policy file) to the tree as it was observed: path, file type,
/// mode, owner and inode of every entry under the roots. The plan is a function of the inputs, the live
/// tree and the ledger; a pin's inode changes whenever anything is pinned there again, and every `apply`
/// that changes anything, the ledger included, voids the stamp before it starts. So when the inputs and
/// every entry match, planning would find what it found when the stamp was written: nothing to do, and
/// `notices`.
///
/// Programs: a pin with the same inode holds the same program, and a program's maps are fixed when it is
/// loaded (a bound map pinned again is a changed inode). Links: another tool may detach a link, or move it
/// to another program, through its pin, so each link's `bpf_link_info` is kept as a digest
/// (`Record.state`) and the stamp's walk inspects the links (and only them). What the tree depends on
/// outside the bpffs (objects, link targets by name) is in `targets`, read again before the stamp is
/// trusted.
public struct TreeStamp: Equatable, Sendable {
    /// SHA-256 of the inputs (`inputsDigest`).
    public var inputs: [UInt8]
    /// Every observed entry, in path order.
    public var records: [Record]
    /// The subtrees that were observed (manifest roots and the ledger's extra roots).
    public var roots: [TreePath]
    /// What the converged plan had to say, repeated by the passes the stamp spares.
    public var notices: [PlanNotice]
    /// What the manifests declared, shared by the records that point to it (`Record.declaration`).
    public var declarations: [Declaration] = []
    /// The cgroup sources of the manifests' templates: a pass rescans them, and their cgroups are part
    /// of `inputs`, so the stamp holds only while the same cgroups exist.
    public var cgroupSources: [CgroupSource] = []
    /// `inputsDigest` of the settings and files alone, without the cgroups: when only cgroups came or went,
    /// a pass plans just their subtrees (`delta`).
    public var filesDigest: [UInt8] = []
    /// The cgroups of each source the templates were rendered for.
    public var cgroups: [CgroupSource: [Cgroup]] = [:]
    /// The owner of the run that stamped (`OwnerScope.owner`; empty: none), which a repair's records name.
    public var owner = ""
    /// What the tree's programs and links depend on outside the bpffs, as it was.
    public var targets: [TargetIdentity] = []
    /// Whether drift may be repaired from the stamp's declarations (`repairPlan`): not in a tree with
    /// programs or links, where a map made again under a program, or a program under a link, would leave
    /// its user on the old object. Such drift is planned in full.
    public var repairs = true

    /// The stamp of a converged tree: `live` as observed, `desired` what was declared, `owned` whether
    /// the ledger owns a path.
    public init(inputs: [UInt8], live: LiveTree, desired: DesiredTree? = nil, owned: (TreePath) -> Bool = { _ in false },
                roots: [TreePath], notices: [PlanNotice]) {
        self.inputs = inputs
        self.records = Self.records(of: live)
        self.roots = roots
        self.notices = notices
        guard let desired else { return }
        repairs = !desired.hasProgramsOrLinks
        var index: [Declaration: Int] = [:]
        var declared: [Declaration] = []
        for position in records.indices {
            Self.declare(&records[position], desired, owned: owned, declarations: &declared, index: &index)
        }
        declarations = declared
    }

    /// Gives `record` its declaration in `desired` (numbered in `declarations`, `index` finding the ones
    /// already there), its ownership and where it was declared.
    static func declare(_ record: inout Record, _ desired: DesiredTree, owned: (TreePath) -> Bool,
                        declarations: inout [Declaration], index: inout [Declaration: Int]) {
        guard let entry = desired[record.path] else { return }
        record.owned = owned(record.path)
        // A program's or link's declaration is not kept: the stamp never repairs one (`repairs`).
        switch entry.kind {
        case .directory, .map: break
        case .program, .link: return
        }
        let declaration = Declaration(entry)
        let number = index[declaration] ?? {
            declarations.append(declaration)
            index[declaration] = declarations.count - 1
            return declarations.count - 1
        }()
        record.declaration = number
        if let location = entry.origin?.location {
            (record.line, record.column) = (UInt32(location.line), UInt32(location.column))
        }
    }

    /// A declaration as the stamp keeps it: enough to plan a repair of its path without the manifests.
    /// Not kept: the field path of the declaration (actions do not show it), `adopt` and `onIncompatible`
    /// (a repair from the stamp never adopts or replaces).
    public struct Declaration: Hashable, Sendable {
        public var kind: DesiredEntry.Kind
        public var mode: UInt32?
        public var owner: Owner
        public var manifest: String
        /// The manifest file; nil for an implicit parent directory.
        public var file: String?

        init(_ entry: DesiredEntry) {
            (kind, mode, owner, manifest) = (entry.kind, entry.mode, entry.owner, entry.manifest)
            file = entry.origin?.location.file
        }

        init(kind: DesiredEntry.Kind, mode: UInt32?, owner: Owner, manifest: String, file: String?) {
            (self.kind, self.mode, self.owner, self.manifest, self.file) = (kind, mode, owner, manifest, file)
        }

        /// The desired entry of `record`.
        func entry(_ record: Record) -> DesiredEntry {
            let origin = file.map {
                Origin(manifest: manifest, location: SourceLocation(file: $0, line: Int(record.line), column: Int(record.column)),
                       field: "")
            }
            var entry = DesiredEntry(path: record.path, kind: kind, mode: mode, owner: owner, origin: origin)
            if origin == nil { entry.implicitFor = manifest }
            return entry
        }
    }

    /// One observed entry as stat shows it. What a pin holds is not recorded: its inode stands for it.
    public struct Record: Equatable, Sendable {
        public var path: TreePath
        /// 1 directory, 2 pin, 3 symlink, 4 and up: other file types.
        public var type: UInt8
        public var mode: UInt32
        public var uid: UInt32
        public var gid: UInt32
        public var inode: UInt64
        /// Index in `declarations` when the path was declared.
        public var declaration: Int?
        /// Whether the ledger owned the entry.
        public var owned = false
        /// Where it was declared.
        public var line: UInt32 = 0
        public var column: UInt32 = 0
        /// What a walk cannot see of the entry, as a digest (`LiveLinkInfo.state` for a link, never 0); 0 for
        /// the rest. An entry with a state is inspected by the stamp's walk.
        public var state: UInt64 = 0
        /// A link's id (0 for the rest): while its pin keeps its inode, the pin holds this link, so the
        /// stamp's walk reads the link by id instead of looking its pin up again.
        public var object: UInt32 = 0

        public init(_ path: TreePath, _ entry: LiveEntry) {
            self.path = path
            type = Self.type(of: entry)
            (mode, uid, gid, inode) = (entry.mode, entry.uid, entry.gid, entry.inode)
            state = Self.state(of: entry)
            if case .link(let info) = entry.kind { object = info.id }
        }

        static func state(of entry: LiveEntry) -> UInt64 {
            if case .link(let info) = entry.kind { max(info.state, 1) } else { 0 }
        }

        static func type(of entry: LiveEntry) -> UInt8 {
            switch entry.kind {
            case .directory: 1
            case .map, .recordedMap, .program, .link, .recordedPin, .pin: 2
            case .symlink: 3
            case .other(let name):
                switch name {
                case "character device": 5
                case "block device": 6
                case "fifo": 7
                case "socket": 8
                default: 4
                }
            }
        }

        /// Same stat as `entry`, found at this record's path.
        func sameStat(as entry: LiveEntry) -> Bool {
            inode == entry.inode && mode == entry.mode && uid == entry.uid && gid == entry.gid && type == Self.type(of: entry)
                && state == Self.state(of: entry)
        }

        fileprivate init(path: TreePath, type: UInt8, mode: UInt32, uid: UInt32, gid: UInt32, inode: UInt64) {
            (self.path, self.type, self.mode, self.uid, self.gid, self.inode) = (path, type, mode, uid, gid, inode)
        }
    }

    /// The records of `live`, in path order.
    public static func records(of live: LiveTree) -> [Record] {
        var records: [Record] = []
        records.reserveCapacity(live.entries.count)
        for path in live.sortedPaths {
            if let entry = live[path] { records.append(Record(path, entry)) }
        }
        return records
    }

    /// Paths where `live` differs from the stamp: changed, gone or new (in path order).
    public func drift(_ live: LiveTree) -> [TreePath] {
        var drift: [TreePath] = []
        var found = 0
        for record in records {
            guard let entry = live[record.path] else {
                drift.append(record.path)
                continue
            }
            found += 1
            if !record.sameStat(as: entry) { drift.append(record.path) }
        }
        if found < live.entries.count {
            for path in live.entries.keys where position(of: path) == nil { drift.append(path) }
            drift.sort()
        }
        return drift
    }

    /// SHA-256 of `settings` (e.g. version, `--force`, page size, CPUs) and of each file's role, name and bytes.
    public static func inputsDigest(settings: [String], files: [SourceFile]) -> [UInt8] {
        var hash = SHA256()
        func add(_ text: String.UTF8View) {
            let bytes = Array(text)
            withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { hash.update(bufferPointer: $0) }
            bytes.withUnsafeBytes { hash.update(bufferPointer: $0) }
        }
        for setting in settings { add(setting.utf8) }
        for file in files {
            add(file.role.utf8)
            add(file.file.utf8)
            file.bytes.withUnsafeBytes { raw in
                withUnsafeBytes(of: UInt64(raw.count).littleEndian) { hash.update(bufferPointer: $0) }
                hash.update(bufferPointer: raw)
            }
        }
        return Array(hash.finalize())
    }

    /// The inputs digest: `files` (`inputsDigest(settings:files:)`) with what the cgroup scan found.
    public static func inputsDigest(files: [UInt8], cgroups lines: [String]) -> [UInt8] {
        var hash = SHA256()
        hash.update(data: files)
        for line in lines {
            let bytes = Array(line.utf8)
            withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { hash.update(bufferPointer: $0) }
            hash.update(data: bytes)
        }
        return Array(hash.finalize())
    }

    // MARK: Encoding

    private static let magic: [UInt8] = Array("BTS8".utf8)

    /// The stamp as bytes: magic, payload length, then the payload.
    public var encoded: [UInt8] {
        var out = ByteWriter()
        out.data.reserveCapacity(64 + records.count * 48)
        out.bytes(Self.magic)
        out.u32(0)  // the payload's length, set below
        out.bytes(inputs)
        out.u32(roots.count)
        for root in roots { out.text(root.text) }
        out.u32(notices.count)
        for notice in notices {
            out.text(notice.category.rawValue)
            out.text(notice.path.text)
            out.text(notice.message)
        }
        out.u32(cgroupSources.count)
        for source in cgroupSources {
            out.text(source.path)
            out.u32(source.depth)
        }
        out.blob(filesDigest)
        out.text(owner)
        out.u8(repairs ? 1 : 0)
        out.u32(targets.count)
        for target in targets {
            out.u8(target.kind.rawValue)
            out.text(target.name)
            out.text(target.identity)
        }
        for source in cgroupSources {
            let found = cgroups[source] ?? []
            out.u32(found.count)
            for cgroup in found {
                out.u64(cgroup.id)
                out.text(cgroup.name)
                out.text(cgroup.path)
            }
        }
        out.u32(declarations.count)
        for declaration in declarations { out.declaration(declaration) }
        out.u32(records.count)
        for record in records {
            out.text(record.path.text)
            out.u8(record.type)
            out.u32(Int(record.mode))
            out.u32(Int(record.uid))
            out.u32(Int(record.gid))
            out.u64(record.inode)
            out.u32(record.declaration ?? -1)
            out.u8(record.owned ? 1 : 0)
            out.u32(Int(record.line))
            out.u32(Int(record.column))
            out.u64(record.state)
            out.u32(Int(record.object))
        }
        withUnsafeBytes(of: UInt32(truncatingIfNeeded: out.data.count - 8).littleEndian) {
            out.data.replaceSubrange(4..<8, with: $0)
        }
        return out.data
    }

    /// How many bytes the stamp at the start of `prefix` takes, or nil when `prefix` holds no stamp.
    public static func encodedLength(_ prefix: [UInt8]) -> Int? {
        guard prefix.count >= 8, prefix[0..<4].elementsEqual(magic) else { return nil }
        return 8 + (0..<4).reduce(0) { $0 | Int(prefix[4 + $1]) << (8 * $1) }
    }

    /// Decodes `encoded`; nil for anything else (no stamp, a voided one, garbage).
    public init?(decoding bytes: [UInt8]) {
        guard let length = Self.encodedLength(bytes), length <= bytes.count else { return nil }
        guard let decoded = bytes.withUnsafeBytes({ raw -> TreeStamp? in
            var reader = ByteReader(UnsafeRawBufferPointer(rebasing: raw[..<length]), at: 8)
            return reader.stamp()
        }) else { return nil }
        self = decoded
    }

    fileprivate init(inputs: [UInt8], records: [Record], roots: [TreePath], notices: [PlanNotice],
                     declarations: [Declaration]) {
        (self.inputs, self.records, self.roots, self.notices) = (inputs, records, roots, notices)
        self.declarations = declarations
    }
}

fileprivate extension ByteWriter {
    mutating func declaration(_ declaration: TreeStamp.Declaration) {
        switch declaration.kind {
        case .directory:
            u8(0)
        case .program, .link:
            // Never kept (`TreeStamp.declare`); a stamp holding one reads as none.
            u8(0xff)
        case .map(let spec):
            u8(1)
            for field in [spec.type.kernelValue, spec.keySize, spec.valueSize, spec.maxEntries, spec.flags] { u32(Int(field)) }
            text(spec.name)
            optional(spec.numaNode)
            u64(spec.mapExtra)
            u8(spec.freeze ? 1 : 0)
            u32(spec.contents.count)
            for entry in spec.contents {
                blob(entry.key)
                blob(entry.value)
            }
        }
        optional(declaration.mode)
        optional(declaration.owner.uid)
        optional(declaration.owner.gid)
        text(declaration.manifest)
        u8(declaration.file == nil ? 0 : 1)
        text(declaration.file ?? "")
    }
}

fileprivate extension ByteReader {
    mutating func stamp() -> TreeStamp? {
        guard let inputs = bytes(32), let rootCount = u32() else { return nil }
        var roots: [TreePath] = []
        for _ in 0..<rootCount {
            guard let root = text() else { return nil }
            roots.append(TreePath(joined: root))
        }
        guard let noticeCount = u32() else { return nil }
        var notices: [PlanNotice] = []
        for _ in 0..<noticeCount {
            guard let raw = text(), let category = PlanNotice.Category(rawValue: raw), let path = text(),
                  let message = text() else { return nil }
            notices.append(PlanNotice(path: TreePath(joined: path), message: message, category: category))
        }
        guard let sourceCount = u32() else { return nil }
        var sources: [CgroupSource] = []
        for _ in 0..<sourceCount {
            guard let path = text(), let depth = u32() else { return nil }
            sources.append(CgroupSource(path: path, depth: depth))
        }
        guard let filesDigest = blob(), let owner = text(), let repairs = u8(), let targetCount = u32(),
              targetCount <= data.count else { return nil }
        var targets: [TargetIdentity] = []
        for _ in 0..<targetCount {
            guard let raw = u8(), let kind = TargetIdentity.Kind(rawValue: raw), let name = text(), let identity = text()
            else { return nil }
            targets.append(TargetIdentity(kind, name, identity))
        }
        var cgroups: [CgroupSource: [Cgroup]] = [:]
        for source in sources {
            guard let count = u32(), count <= data.count else { return nil }
            var found: [Cgroup] = []
            found.reserveCapacity(count)
            for _ in 0..<count {
                guard let id = u64(), let name = text(), let path = text() else { return nil }
                found.append(Cgroup(id: id, name: name, path: path))
            }
            if !found.isEmpty { cgroups[source] = found }
        }
        guard let declarationCount = u32(), declarationCount <= data.count else { return nil }
        var declarations: [TreeStamp.Declaration] = []
        for _ in 0..<declarationCount {
            guard let declaration = declaration() else { return nil }
            declarations.append(declaration)
        }
        guard let recordCount = u32(), recordCount <= data.count else { return nil }
        var records: [TreeStamp.Record] = []
        records.reserveCapacity(recordCount)
        for _ in 0..<recordCount {
            guard let path = text(), let type = u8(), let mode = u32(), let uid = u32(), let gid = u32(),
                  let inode = u64(), let declaration = u32(), let owned = u8(), let line = u32(), let column = u32(),
                  let state = u64(), let object = u32()
            else { return nil }
            var record = TreeStamp.Record(path: TreePath(joined: path), type: type, mode: UInt32(mode),
                                          uid: UInt32(uid), gid: UInt32(gid), inode: inode)
            if declaration != Int(UInt32.max) {
                guard declaration < declarations.count else { return nil }
                record.declaration = declaration
            }
            (record.owned, record.line, record.column, record.state) = (owned == 1, UInt32(line), UInt32(column), state)
            record.object = UInt32(object)
            records.append(record)
        }
        var stamp = TreeStamp(inputs: inputs, records: records, roots: roots, notices: notices, declarations: declarations)
        (stamp.cgroupSources, stamp.filesDigest, stamp.cgroups, stamp.owner) = (sources, filesDigest, cgroups, owner)
        (stamp.repairs, stamp.targets) = (repairs == 1, targets)
        return stamp
    }

    mutating func declaration() -> TreeStamp.Declaration? {
        guard let kindCode = u8() else { return nil }
        var kind = DesiredEntry.Kind.directory
        if kindCode == 1 {
            guard let type = u32(), let mapType = MapType(kernelValue: UInt32(type)), let keySize = u32(),
                  let valueSize = u32(), let maxEntries = u32(), let flags = u32(), let name = text(),
                  let numaNode = optional(), let mapExtra = u64(), let freeze = u8(), let count = u32(),
                  count <= data.count else { return nil }
            var contents: [MapEntry] = []
            for _ in 0..<count {
                guard let key = blob(), let value = blob() else { return nil }
                contents.append(MapEntry(key: key, value: value))
            }
            kind = .map(MapSpec(type: mapType, keySize: UInt32(keySize), valueSize: UInt32(valueSize),
                                maxEntries: UInt32(maxEntries), flags: UInt32(flags), name: name, numaNode: numaNode,
                                mapExtra: mapExtra, contents: contents, freeze: freeze == 1))
        } else if kindCode != 0 {
            return nil
        }
        guard let mode = optional(), let uid = optional(), let gid = optional(), let manifest = text(),
              let hasFile = u8(), let file = text() else { return nil }
        return TreeStamp.Declaration(kind: kind, mode: mode, owner: Owner(uid: uid, gid: gid), manifest: manifest,
                                     file: hasFile == 1 ? file : nil)
    }
}
