import BPFTreeCore
import CBPFTreeShim
import Glibc

/// The ownership ledger as it lives in the kernel: a hash map pinned at the anchor under
/// `Reserved.ledgerName`. bpffs holds no regular files and no xattrs (ARCHITECTURE.md), so a map is the only
/// place inside the bpffs that can hold it; it survives restarts of bpftree and vanishes with the mount.
/// Key: the anchor-relative path, NUL-padded to 256 bytes. Value: `struct bt_ledger_value`.
public final class LedgerStore {
    private let descriptor: Descriptor

    static let keySize = Int(BT_LEDGER_PATH_SIZE)
    static let valueSize = MemoryLayout<bt_ledger_value>.size
    /// The cap on records. No preallocation: memory is used per record only (the bucket array is 2 MiB).
    public static let capacity: UInt32 = 1 << 18

    private init(descriptor: Descriptor) { self.descriptor = descriptor }

    /// The ledger beneath `anchor`, or nil when there is none yet and `create` is false.
    public static func open(_ anchor: Anchor, create: Bool) throws(KernelError) -> LedgerStore? {
        let shape = ReservedMap.Shape(type: .hash, keySize: UInt32(keySize), valueSize: UInt32(valueSize),
                                      maxEntries: capacity, flags: MapFlag.noPrealloc.bit, minimumEntries: capacity)
        return try ReservedMap.open(anchor, .ledger, shape: shape, create: create)
            .map(LedgerStore.init(descriptor:))
    }

    /// Every record, read in batches.
    public func read() throws(KernelError) -> Ledger {
        var records: [TreePath: LedgerRecord] = [:]
        var rejected: [Ledger.Rejected] = []
        let chunk = 4096
        var keys = [UInt8](repeating: 0, count: chunk * Self.keySize)
        var values = [bt_ledger_value](repeating: bt_ledger_value(), count: chunk)
        var tokenIn = [UInt8](repeating: 0, count: 8), tokenOut = [UInt8](repeating: 0, count: 8)
        var first = true
        while true {
            var count = UInt32(chunk)
            let result = keys.withUnsafeMutableBytes { k in
                values.withUnsafeMutableBytes { v in
                    tokenIn.withUnsafeMutableBytes { i in
                        tokenOut.withUnsafeMutableBytes { o in
                            bt_map_lookup_batch(descriptor.rawValue, first ? nil : i.baseAddress, o.baseAddress,
                                                k.baseAddress, v.baseAddress, &count)
                        }
                    }
                }
            }
            guard result == 0 || result == -ENOENT else {
                throw KernelError("BPF_MAP_LOOKUP_BATCH", path: Reserved.ledgerName, negativeErrno: result)
            }
            for index in 0..<Int(count) {
                let keyBytes = keys[(index * Self.keySize)..<((index + 1) * Self.keySize)]
                switch Self.record(key: keyBytes, values[index]) {
                case .success(let record): records[record.path] = record
                case .failure(let why): rejected.append(why)
                }
            }
            if result == -ENOENT { break }
            tokenIn = tokenOut
            first = false
        }
        return Ledger(records: records, rejected: rejected)
    }

    /// The record of `path`, if there is one.
    public func record(at path: TreePath) throws(KernelError) -> LedgerRecord? {
        var value = bt_ledger_value()
        let result = Self.key(path).withUnsafeBytes { bt_map_lookup(descriptor.rawValue, $0.baseAddress, &value) }
        if result == -ENOENT { return nil }
        guard result == 0 else { throw KernelError("BPF_MAP_LOOKUP_ELEM", path: Reserved.ledgerName, negativeErrno: result) }
        // The key is a valid path's (it was made from one): only the value needs checking.
        return try? Self.record(path: path, value).get()
    }

    /// Writes (inserts or overwrites) records in one syscall.
    public func write(_ records: [LedgerRecord]) throws(KernelError) {
        guard !records.isEmpty else { return }
        var keys = [UInt8](repeating: 0, count: records.count * Self.keySize)
        var values: [bt_ledger_value] = []
        values.reserveCapacity(records.count)
        for (index, record) in records.enumerated() {
            keys.replaceSubrange((index * Self.keySize)..<((index + 1) * Self.keySize), with: Self.key(record.path))
            values.append(Self.value(record))
        }
        let result = keys.withUnsafeBytes { k in
            values.withUnsafeBytes { v in
                bt_map_update_batch(descriptor.rawValue, k.baseAddress, v.baseAddress, UInt32(records.count), 0)
            }
        }
        guard result == 0 else {
            throw KernelError("BPF_MAP_UPDATE_BATCH", path: Reserved.ledgerName, negativeErrno: result,
                              detail: result == -E2BIG ? "the ledger holds at most \(Self.capacity) records" : nil)
        }
    }

    /// Deletes the records of `paths` in one syscall; missing records are fine.
    public func remove(_ paths: [TreePath]) throws(KernelError) {
        guard !paths.isEmpty else { return }
        var keys = [UInt8](repeating: 0, count: paths.count * Self.keySize)
        for (index, path) in paths.enumerated() {
            keys.replaceSubrange((index * Self.keySize)..<((index + 1) * Self.keySize), with: Self.key(path))
        }
        let result = keys.withUnsafeBytes {
            bt_map_delete_batch(descriptor.rawValue, $0.baseAddress, UInt32(Self.keySize), UInt32(paths.count))
        }
        guard result == 0 else { throw KernelError("BPF_MAP_DELETE_BATCH", path: Reserved.ledgerName, negativeErrno: result) }
    }

    /// The anchor-relative path, NUL-padded to the key size (validation keeps paths within it).
    private static func key(_ path: TreePath) -> [UInt8] {
        let bytes = Array(path.text.utf8.prefix(keySize - 1))
        return bytes + [UInt8](repeating: 0, count: keySize - bytes.count)
    }

    /// The record a key and value stand for, or why it cannot be one bpftree wrote.
    private static func record(key: some Collection<UInt8>, _ value: bt_ledger_value) -> Result<LedgerRecord, Ledger.Rejected> {
        let bytes = key.prefix { $0 != 0 }
        // bpftree pads its keys with NULs: a key with more after them is not the key of the path before them,
        // so no write or delete of that path could ever reach it.
        guard key.dropFirst(bytes.count).allSatisfy({ $0 == 0 }) else {
            return .failure(Ledger.Rejected(key: TreePath.escaped(Array(key).reversed().drop { $0 == 0 }.reversed()),
                                            reason: "bytes after the NUL that ends its path"))
        }
        switch Ledger.path(ofKey: bytes) {
        case .success(let path): return record(path: path, value)
        case .failure(let why): return .failure(why)
        }
    }

    /// The record `value` stands for at `path`, or why it cannot be one bpftree wrote.
    private static func record(path: TreePath, _ value: bt_ledger_value) -> Result<LedgerRecord, Ledger.Rejected> {
        guard let kind = LedgerRecord.Kind(rawValue: value.kind) else {
            return .failure(Ledger.Rejected(key: path.description, reason: "unknown kind \(value.kind)"))
        }
        guard let state = LedgerRecord.State(rawValue: value.state) else {
            return .failure(Ledger.Rejected(key: path.description, reason: "unknown state \(value.state)"))
        }
        return .success(LedgerRecord(path: path, kind: kind, state: state, inode: value.inode, pendingInode: value.pending_inode,
                                     fingerprint: value.fingerprint, manifest: cString(value.manifest)))
    }

    private static func value(_ record: LedgerRecord) -> bt_ledger_value {
        var value = bt_ledger_value()
        value.inode = record.inode
        value.pending_inode = record.pendingInode
        value.fingerprint = record.fingerprint
        value.kind = record.kind.rawValue
        value.state = record.state.rawValue
        withUnsafeMutableBytes(of: &value.manifest) { raw in
            let bytes = Array(record.manifest.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
        }
        return value
    }
}
