import BPFTreeCore
import CBPFTreeShim
import Glibc

/// The convergence stamp (`TreeStamp`) as it lives in the kernel: an array map of 64 KiB chunks pinned at
/// the anchor under `Reserved.stampName`, next to the ledger. The first chunk starts with the stamp's
/// length; a larger stamp replaces the map with a larger one. Voiding zeroes the first chunk.
public final class StampStore {
    private let anchor: Anchor
    private var descriptor: Descriptor
    private var chunks: Int

    static let chunkSize = 64 * 1024
    /// The largest stamp kept (64 MiB, some 1.5 million entries); a larger tree plans in full every pass.
    public static let maxChunks = 1024

    private init(anchor: Anchor, descriptor: Descriptor) throws(KernelError) {
        self.anchor = anchor
        self.descriptor = descriptor
        var info = bt_map_info()
        let result = bt_map_info_by_fd(descriptor.rawValue, &info)
        guard result == 0 else { throw KernelError(.bpf(.objGetInfoByFD), path: Reserved.stampName, negativeErrno: result) }
        chunks = Int(info.max_entries)
    }

    private static func shape(chunks: Int) -> ReservedMap.Shape {
        ReservedMap.Shape(type: .array, keySize: 4, valueSize: UInt32(chunkSize), maxEntries: UInt32(chunks))
    }

    /// The stamp map beneath `anchor`, or nil when there is none and `create` is false.
    public static func open(_ anchor: Anchor, create: Bool) throws(KernelError) -> StampStore? {
        guard let map = try ReservedMap.open(anchor, .stamp, shape: shape(chunks: 16), create: create) else { return nil }
        return try StampStore(anchor: anchor, descriptor: map)
    }

    /// The stamp, or nil when it was voided or never written.
    public func read() throws(KernelError) -> TreeStamp? {
        let first = try chunk(0)
        guard let length = TreeStamp.encodedLength(first), length <= chunks * Self.chunkSize else { return nil }
        guard length > Self.chunkSize else { return TreeStamp(decoding: first) }
        // The other chunks are looked up straight into one buffer of the whole length.
        let count = (length + Self.chunkSize - 1) / Self.chunkSize
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: count * Self.chunkSize) { buffer, initialized in
            guard let base = buffer.baseAddress else { return }
            _ = first.withUnsafeBufferPointer { buffer.initialize(fromContentsOf: $0) }
            initialized = Self.chunkSize
            for index in 1..<count {
                var key = UInt32(index)
                failure = bt_map_lookup(descriptor.rawValue, &key, base + index * Self.chunkSize)
                guard failure == 0 else { return }
                initialized += Self.chunkSize
            }
        }
        guard failure == 0 else { throw KernelError(.bpf(.mapLookupElem), path: Reserved.stampName, negativeErrno: failure) }
        return TreeStamp(decoding: bytes)
    }

    /// Writes `stamp`; returns false (and voids the old one) when it is larger than `maxChunks`.
    @discardableResult
    public func write(_ stamp: TreeStamp) throws(KernelError) -> Bool {
        let bytes = stamp.encoded
        let needed = (bytes.count + Self.chunkSize - 1) / Self.chunkSize
        guard needed <= Self.maxChunks else {
            try void()
            return false
        }
        if needed > chunks { try grow(to: needed) }
        // The first chunk, which says how long the stamp is, goes last: until then a reader sees none.
        try void()
        for index in Array(1..<needed) + [0] {
            let chunk = bytes[(index * Self.chunkSize)..<min(bytes.count, (index + 1) * Self.chunkSize)]
            try store(chunk.count == Self.chunkSize ? chunk : (Array(chunk) + [UInt8](repeating: 0, count: Self.chunkSize - chunk.count))[...],
                      at: index)
        }
        return true
    }

    /// Makes the stamp decode to nothing, so the next pass plans in full.
    public func void() throws(KernelError) {
        try store([UInt8](repeating: 0, count: Self.chunkSize)[...], at: 0)
    }

    /// Replaces the map with one of at least `needed` chunks.
    private func grow(to needed: Int) throws(KernelError) {
        var size = 16
        while size < needed { size *= 2 }
        let removed = unlinkat(anchor.fd.rawValue, Reserved.stampName, 0)
        guard removed == 0 || errno == ENOENT else {
            throw KernelError(.call(.unlinkat), path: Reserved.stampName, negativeErrno: -errno)
        }
        guard let map = try ReservedMap.pinNew(anchor, .stamp, shape: Self.shape(chunks: size)) else {
            throw KernelError(.bpf(.objPin), path: Reserved.stampName, negativeErrno: -EEXIST)
        }
        descriptor = map
        chunks = size
    }

    private func chunk(_ index: Int) throws(KernelError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.chunkSize)
        var key = UInt32(index)
        let result = bytes.withUnsafeMutableBytes { bt_map_lookup(descriptor.rawValue, &key, $0.baseAddress) }
        guard result == 0 else { throw KernelError(.bpf(.mapLookupElem), path: Reserved.stampName, negativeErrno: result) }
        return bytes
    }

    private func store(_ bytes: ArraySlice<UInt8>, at index: Int) throws(KernelError) {
        var key = UInt32(index)
        let result = bytes.withUnsafeBytes { bt_map_update(descriptor.rawValue, &key, $0.baseAddress, 0) }
        guard result == 0 else { throw KernelError(.bpf(.mapUpdateElem), path: Reserved.stampName, negativeErrno: result) }
    }
}
