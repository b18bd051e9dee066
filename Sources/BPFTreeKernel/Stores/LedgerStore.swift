import BPFTreeCore
import CBPFTreeShim
import Glibc

/// The ownership ledger as it lives in the kernel: a hash map pinned at the anchor under
/// `Reserved.ledgerName`. bpffs holds no regular files and no xattrs (ARCHITECTURE.md), so a map is the only
/// place inside the bpffs that can hold it; it survives restarts of bpftree and vanishes with the mount.
/// Key: the anchor-relative path, NUL-padded to 256 bytes. Value: `struct bt_ledger_value`.
public final class LedgerStore {
    private let descriptor: Descriptor
    /// The size of the map's values: `valueSize`, or `legacyValueSize` in a ledger from before owners,
    /// which is only read (a writer moves it to the current layout first).
    private let storedValueSize: Int
    /// The owner every record this store writes names (`OwnerScope.owner`; empty: none).
    public var owner = ""

    static let keySize = Int(BT_LEDGER_PATH_SIZE)
    static let valueSize = MemoryLayout<bt_ledger_value>.size
    /// The value of a ledger from before owners: the same fields without `owner`.
    static let legacyValueSize = MemoryLayout<bt_ledger_value>.offset(of: \bt_ledger_value.owner) ?? 96
    /// The cap on records. No preallocation: memory is used per record only (the bucket array is 2 MiB).
    public static let capacity: UInt32 = 1 << 18

    private static let shape = ReservedMap.Shape(type: .hash, keySize: UInt32(keySize), valueSize: UInt32(valueSize),
                                                 maxEntries: capacity, flags: MapFlag.noPrealloc.bit, minimumEntries: capacity,
                                                 legacyValueSizes: [UInt32(legacyValueSize)])

    private init(descriptor: Descriptor, valueSize: Int) {
        self.descriptor = descriptor
        self.storedValueSize = valueSize
    }

    /// The ledger beneath `anchor`, or nil when there is none yet and `create` is false. With `create` (a
    /// writer, holding the writers' lock), a ledger from before owners is first moved to the current layout.
    public static func open(_ anchor: Anchor, create: Bool) throws(KernelError) -> LedgerStore? {
        guard let map = try ReservedMap.open(anchor, .ledger, shape: shape, create: create) else { return nil }
        var info = bt_map_info()
        let result = bt_map_info_by_fd(map.rawValue, &info)
        guard result == 0 else { throw KernelError(.bpf(.objGetInfoByFD), path: Reserved.ledgerName, negativeErrno: result) }
        let store = LedgerStore(descriptor: map, valueSize: Int(info.value_size))
        guard store.storedValueSize != valueSize, create else { return store }
        return try migrate(anchor, from: store)
    }

    /// Moves a ledger from before owners to the current layout: every record copied into a new map (no
    /// owner: each stays its manifest's, `OwnerScope`), pinned under a temporary name and exchanged with the
    /// old one, which is then unlinked. The temporary name is recorded in both first, so that a run killed
    /// anywhere leaves a pin the next run's plan removes.
    private static func migrate(_ anchor: Anchor, from legacy: LedgerStore) throws(KernelError) -> LedgerStore {
        let name = "\(Reserved.temporaryPrefix)\(getpid())_0"
        let temporary = LedgerRecord(path: TreePath([name]), kind: .map, state: .temporary, manifest: "")
        try legacy.write([temporary])
        let records = try legacy.read().records
        let made = bt_map_create(shape.type.kernelValue, String(Reserved.ledgerName.prefix(15)), shape.keySize,
                                 shape.valueSize, shape.maxEntries, shape.flags)
        guard made >= 0 else {
            throw KernelError(.step(.createLedger), path: Reserved.ledgerName, negativeErrno: made,
                              detail: KernelError.capabilityHint(made, needs: [.bpf], for: "creating a map"))
        }
        let store = LedgerStore(descriptor: Descriptor(owning: made), valueSize: valueSize)
        try store.write(Array(records.values))
        var pinned = bt_obj_pin_at(anchor.fd.rawValue, name, made)
        if pinned == -EEXIST, unlinkat(anchor.fd.rawValue, name, 0) == 0 { pinned = bt_obj_pin_at(anchor.fd.rawValue, name, made) }
        guard pinned == 0 else { throw KernelError(.bpf(.objPin), path: name, negativeErrno: pinned) }
        let exchanged = bt_renameat2(anchor.fd.rawValue, name, anchor.fd.rawValue, Reserved.ledgerName, UInt32(BT_RENAME_EXCHANGE))
        guard exchanged == 0 else { throw KernelError(.call(.renameat2), path: Reserved.ledgerName, negativeErrno: exchanged) }
        // The temporary name now holds the old ledger; were this unlink refused, the next plan removes it.
        if unlinkat(anchor.fd.rawValue, name, 0) == 0 { try store.remove([temporary.path]) }
        return store
    }

    /// Every record, read in batches.
    public func read() throws(KernelError) -> Ledger {
        var records: [TreePath: LedgerRecord] = [:]
        var rejected: [Ledger.Rejected] = []
        let chunk = 4096
        var keys = [UInt8](repeating: 0, count: chunk * Self.keySize)
        var values = [UInt8](repeating: 0, count: chunk * storedValueSize)
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
                throw KernelError(.bpf(.mapLookupBatch), path: Reserved.ledgerName, negativeErrno: result)
            }
            for index in 0..<Int(count) {
                let keyBytes = keys[(index * Self.keySize)..<((index + 1) * Self.keySize)]
                let valueBytes = values[(index * storedValueSize)..<((index + 1) * storedValueSize)]
                switch Self.record(key: keyBytes, valueBytes) {
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
        var value = [UInt8](repeating: 0, count: storedValueSize)
        let result = Self.key(path).withUnsafeBytes { k in
            value.withUnsafeMutableBytes { bt_map_lookup(descriptor.rawValue, k.baseAddress, $0.baseAddress) }
        }
        if result == -ENOENT { return nil }
        guard result == 0 else { throw KernelError(.bpf(.mapLookupElem), path: Reserved.ledgerName, negativeErrno: result) }
        // The key is a valid path's (it was made from one): only the value needs checking.
        return try? Self.record(path: path, value[...]).get()
    }

    /// Writes (inserts or overwrites) records in one syscall, each naming `owner`.
    public func write(_ records: [LedgerRecord]) throws(KernelError) {
        guard !records.isEmpty else { return }
        var keys = [UInt8](repeating: 0, count: records.count * Self.keySize)
        var values = [UInt8](repeating: 0, count: records.count * storedValueSize)
        for (index, record) in records.enumerated() {
            keys.replaceSubrange((index * Self.keySize)..<((index + 1) * Self.keySize), with: Self.key(record.path))
            var owned = record
            if !owner.isEmpty { owned.owner = owner }
            values.replaceSubrange((index * storedValueSize)..<((index + 1) * storedValueSize),
                                   with: Self.value(owned).prefix(storedValueSize))
        }
        let result = keys.withUnsafeBytes { k in
            values.withUnsafeBytes { v in
                bt_map_update_batch(descriptor.rawValue, k.baseAddress, v.baseAddress, UInt32(records.count), 0)
            }
        }
        guard result == 0 else {
            throw KernelError(.bpf(.mapUpdateBatch), path: Reserved.ledgerName, negativeErrno: result,
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
        guard result == 0 else { throw KernelError(.bpf(.mapDeleteBatch), path: Reserved.ledgerName, negativeErrno: result) }
    }

    /// The anchor-relative path, NUL-padded to the key size (validation keeps paths within it).
    private static func key(_ path: TreePath) -> [UInt8] {
        let bytes = Array(path.text.utf8.prefix(keySize - 1))
        return bytes + [UInt8](repeating: 0, count: keySize - bytes.count)
    }

    /// The record a key and value stand for, or why it cannot be one bpftree wrote.
    private static func record(key: some Collection<UInt8>, _ value: ArraySlice<UInt8>) -> Result<LedgerRecord, Ledger.Rejected> {
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

    /// The record `value` (a `bt_ledger_value`, or its legacy prefix) stands for at `path`, or why it cannot
    /// be one bpftree wrote.
    private static func record(path: TreePath, _ value: ArraySlice<UInt8>) -> Result<LedgerRecord, Ledger.Rejected> {
        var full = bt_ledger_value()
        withUnsafeMutableBytes(of: &full) { $0.copyBytes(from: value.prefix($0.count)) }
        guard let kind = LedgerRecord.Kind(rawValue: full.kind) else {
            return .failure(Ledger.Rejected(key: path.description, reason: "unknown kind \(full.kind)"))
        }
        guard let state = LedgerRecord.State(rawValue: full.state) else {
            return .failure(Ledger.Rejected(key: path.description, reason: "unknown state \(full.state)"))
        }
        return .success(LedgerRecord(path: path, kind: kind, state: state, inode: full.inode, pendingInode: full.pending_inode,
                                     fingerprint: full.fingerprint, manifest: cString(full.manifest), owner: cString(full.owner)))
    }

    /// The bytes of `record` as a `bt_ledger_value`.
    private static func value(_ record: LedgerRecord) -> [UInt8] {
        var value = bt_ledger_value()
        value.inode = record.inode
        value.pending_inode = record.pendingInode
        value.fingerprint = record.fingerprint
        value.kind = record.kind.rawValue
        value.state = record.state.rawValue
        withUnsafeMutableBytes(of: &value.manifest) { raw in raw.copyBytes(from: record.manifest.utf8.prefix(raw.count - 1)) }
        withUnsafeMutableBytes(of: &value.owner) { raw in raw.copyBytes(from: record.owner.utf8.prefix(raw.count - 1)) }
        return withUnsafeBytes(of: value) { Array($0) }
    }
}
