import BPFTreeCore
import CBPFTreeShim
import Glibc

/// The convergence stamp (`TreeStamp`) as it lives in the kernel: a one-element array map pinned at the
/// anchor under `Reserved.stampName`, next to the ledger. Voiding it writes a value that decodes to
/// nothing; the map itself stays.
public final class StampStore {
    private let descriptor: Descriptor

    /// Room for the stamp: header, roots and the notices of a converged plan; a stamp that does not fit
    /// is not kept (every pass then plans in full).
    public static let capacity = 64 * 1024

    private init(descriptor: Descriptor) { self.descriptor = descriptor }

    /// The stamp map beneath `anchor`, or nil when there is none and `create` is false.
    public static func open(_ anchor: Anchor, create: Bool) throws(KernelError) -> StampStore? {
        let shape = ReservedMap.Shape(type: .array, keySize: 4, valueSize: UInt32(capacity), maxEntries: 1)
        return try ReservedMap.open(anchor, name: Reserved.stampName, shape: shape, create: create, what: "stamp")
            .map(StampStore.init(descriptor:))
    }

    /// The stamp, or nil when it was voided or never written.
    public func read() throws(KernelError) -> TreeStamp? {
        var bytes = [UInt8](repeating: 0, count: Self.capacity)
        var key: UInt32 = 0
        let result = bytes.withUnsafeMutableBytes { bt_map_lookup(descriptor.rawValue, &key, $0.baseAddress) }
        guard result == 0 else { throw KernelError("BPF_MAP_LOOKUP_ELEM", path: Reserved.stampName, negativeErrno: result) }
        return TreeStamp(decoding: bytes)
    }

    /// Writes `stamp`; returns false (and voids the old one) when it does not fit.
    @discardableResult
    public func write(_ stamp: TreeStamp) throws(KernelError) -> Bool {
        guard let bytes = stamp.encoded(capacity: Self.capacity) else {
            try void()
            return false
        }
        try store(bytes)
        return true
    }

    /// Makes the stamp decode to nothing, so the next pass plans in full.
    public func void() throws(KernelError) {
        try store([UInt8](repeating: 0, count: Self.capacity))
    }

    private func store(_ bytes: [UInt8]) throws(KernelError) {
        var key: UInt32 = 0
        let result = bytes.withUnsafeBytes { bt_map_update(descriptor.rawValue, &key, $0.baseAddress, 0) }
        guard result == 0 else { throw KernelError("BPF_MAP_UPDATE_ELEM", path: Reserved.stampName, negativeErrno: result) }
    }
}
