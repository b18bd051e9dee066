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
        let name = Reserved.stampName
        var fd = bt_obj_get_at(anchor.fd, name)
        if fd == -ENOENT {
            guard create else { return nil }
            let made = bt_map_create(MapType.array.kernelValue, name.prefix(15).description, 4, UInt32(capacity), 1, 0)
            guard made >= 0 else { throw KernelError("create stamp map", path: name, negativeErrno: made) }
            let map = Descriptor(owning: made)
            let pinned = bt_obj_pin_at(anchor.fd, name, made)
            if pinned == 0 {
                _ = bt_fchmodat2(anchor.fd, name, 0o600, Int32(BT_AT_SYMLINK_NOFOLLOW))
                return StampStore(descriptor: map)
            }
            guard pinned == -EEXIST else { throw KernelError("BPF_OBJ_PIN", path: name, negativeErrno: pinned) }
            fd = bt_obj_get_at(anchor.fd, name)
        }
        guard fd >= 0 else { throw KernelError("BPF_OBJ_GET", path: name, negativeErrno: fd) }
        let map = Descriptor(owning: fd)
        var info = bt_map_info()
        let result = bt_map_info_by_fd(map.rawValue, &info)
        guard result == 0 else { throw KernelError("BPF_OBJ_GET_INFO_BY_FD", path: name, negativeErrno: result) }
        guard info.type == MapType.array.kernelValue, info.key_size == 4, Int(info.value_size) == capacity,
              info.max_entries == 1 else {
            throw KernelError("open stamp", path: name, detail: "the map pinned there is not a bpftree stamp (type \(info.type), key \(info.key_size), value \(info.value_size)); remove it or use another anchor")
        }
        return StampStore(descriptor: map)
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
