import Crypto

/// What a pass that found the tree converged leaves behind, so that the next pass with the same inputs
/// can tell from a walk alone (`getdents` + `fstatat`, no parsing, no `BPF_OBJ_GET`) that nothing changed.
///
/// It binds the SHA-256 of the inputs (bpftree's version, the settings that change a plan, and the
/// name and bytes of every manifest and policy file) to the SHA-256 of the observed tree (path, file
/// type, mode, owner and inode of every entry under the roots). The plan is a function of the inputs, the
/// live tree and the ledger; a pin's inode changes whenever anything is pinned there again, and every
/// `apply` that changes anything, the ledger included, voids the stamp before it starts. So when both
/// digests match, planning would find what it found when the stamp was written: nothing to do, and
/// `notices`.
public struct TreeStamp: Equatable, Sendable {
    /// SHA-256 of the inputs (`inputsDigest`).
    public var inputs: [UInt8]
    /// SHA-256 of the tree as observed (`treeDigest`).
    public var tree: [UInt8]
    public var entries: Int
    /// The subtrees that were observed (manifest roots and the ledger's extra roots).
    public var roots: [TreePath]
    /// What the converged plan had to say, repeated by the passes the stamp spares.
    public var notices: [PlanNotice]

    public init(inputs: [UInt8], tree: [UInt8], entries: Int, roots: [TreePath], notices: [PlanNotice]) {
        self.inputs = inputs
        self.tree = tree
        self.entries = entries
        self.roots = roots
        self.notices = notices
    }

    /// One input file: manifest or policy, by the name it was read under.
    public struct Input {
        public var role: String
        public var file: String
        public var bytes: [UInt8]
        public init(role: String, file: String, bytes: [UInt8]) {
            self.role = role
            self.file = file
            self.bytes = bytes
        }
    }

    /// SHA-256 of `settings` (e.g. version, `--force`, page size, CPUs) and of each file's role, name and bytes.
    public static func inputsDigest(settings: [String], files: [Input]) -> [UInt8] {
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

    /// SHA-256 of every entry in path order: path, file type, mode, owner, inode. What a pin holds is
    /// not hashed: its inode stands for it.
    public static func treeDigest(_ live: LiveTree) -> [UInt8] {
        var hash = SHA256()
        var record: [UInt8] = []
        for path in live.sortedPaths {
            guard let entry = live.entries[path] else { continue }
            record.removeAll(keepingCapacity: true)
            record.append(contentsOf: path.text.utf8)
            record.append(0)
            switch entry.kind {
            case .directory: record.append(1)
            case .map, .recordedMap, .program, .link, .pin: record.append(2)
            case .symlink: record.append(3)
            case .other(let type):
                record.append(4)
                record.append(contentsOf: type.utf8)
                record.append(0)
            }
            for field in [UInt64(entry.mode), UInt64(entry.uid), UInt64(entry.gid), entry.inode] {
                withUnsafeBytes(of: field.littleEndian) { record.append(contentsOf: $0) }
            }
            record.withUnsafeBytes { hash.update(bufferPointer: $0) }
        }
        return Array(hash.finalize())
    }

    // MARK: Encoding

    private static let magic: [UInt8] = Array("BTS1".utf8)
    private static let headerSize = 4 + 4 + 32 + 32 + 8

    /// The stamp as bytes, or nil when it needs more than `capacity` (then no stamp is kept).
    public func encoded(capacity: Int) -> [UInt8]? {
        var payload: [UInt8] = []
        for root in roots {
            payload.append(UInt8(ascii: "R"))
            payload.append(contentsOf: root.text.utf8)
            payload.append(0)
        }
        for notice in notices {
            payload.append(UInt8(ascii: "N"))
            for text in [notice.category.rawValue, notice.path.text, notice.message] {
                payload.append(contentsOf: text.utf8)
                payload.append(0)
            }
        }
        guard inputs.count == 32, tree.count == 32, Self.headerSize + payload.count <= capacity else { return nil }
        var bytes = Self.magic
        withUnsafeBytes(of: UInt32(payload.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes += inputs + tree
        withUnsafeBytes(of: UInt64(entries).littleEndian) { bytes.append(contentsOf: $0) }
        bytes += payload
        return bytes + [UInt8](repeating: 0, count: capacity - bytes.count)
    }

    /// Decodes `encoded(capacity:)`; nil for anything else (no stamp, a voided one, garbage).
    public init?(decoding bytes: [UInt8]) {
        guard bytes.count >= Self.headerSize, Array(bytes[0..<4]) == Self.magic else { return nil }
        let length = Int(bytes[4]) | Int(bytes[5]) << 8 | Int(bytes[6]) << 16 | Int(bytes[7]) << 24
        guard Self.headerSize + length <= bytes.count else { return nil }
        inputs = Array(bytes[8..<40])
        tree = Array(bytes[40..<72])
        entries = bytes[72..<80].reversed().reduce(0) { $0 << 8 | Int($1) }
        roots = []
        notices = []
        var fields = bytes[Self.headerSize..<(Self.headerSize + length)].split(separator: 0, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }[...]
        if fields.last == "" { fields.removeLast() }
        while let first = fields.popFirst() {
            if first.hasPrefix("R") {
                roots.append(TreePath(joined: String(first.dropFirst())))
            } else if first.hasPrefix("N"), fields.count >= 2,
                      let category = PlanNotice.Category(rawValue: String(first.dropFirst())) {
                let path = TreePath(joined: fields.removeFirst())
                notices.append(PlanNotice(path: path, message: fields.removeFirst(), category: category))
            } else {
                return nil
            }
        }
    }
}
