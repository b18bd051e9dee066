import BPFTreeCore
import CBPFTreeShim
import Glibc

/// One of bpftree's own maps pinned at the anchor (the ledger, the stamp): opened, or created and pinned
/// (mode 0600) when asked; refused when what is pinned under its name has another shape.
enum ReservedMap {
    struct Shape {
        var type: MapType
        var keySize: UInt32
        var valueSize: UInt32
        var maxEntries: UInt32
        var flags: UInt32 = 0
        /// The fewest entries a map found pinned under the name may have to be usable.
        var minimumEntries: UInt32 = 1
    }

    /// The map's fd, or nil when there is none and `create` is false. `what` names it in errors
    /// ("ledger", "stamp").
    static func open(_ anchor: Anchor, name: String, shape: Shape, create: Bool,
                     what: String) throws(KernelError) -> Descriptor? {
        var fd = bt_obj_get_at(anchor.fd, name)
        if fd == -ENOENT {
            guard create else { return nil }
            if let made = try pinNew(anchor, name: name, shape: shape, what: what) { return made }
            // Another bpftree pinned it first: use theirs.
            fd = bt_obj_get_at(anchor.fd, name)
        }
        guard fd >= 0 else {
            throw KernelError("BPF_OBJ_GET", path: name, negativeErrno: fd)
                .adding(KernelError.capabilityHint(fd, needs: [], for: "opening bpftree's own \(what) map"))
        }
        let map = Descriptor(owning: fd)
        var info = bt_map_info()
        let result = bt_map_info_by_fd(map.rawValue, &info)
        guard result == 0 else { throw KernelError("BPF_OBJ_GET_INFO_BY_FD", path: name, negativeErrno: result) }
        guard info.type == shape.type.kernelValue, info.key_size == shape.keySize, info.value_size == shape.valueSize else {
            throw KernelError("open \(what)", path: name, detail: "the map pinned there is not a bpftree \(what) (type \(info.type), key \(info.key_size), value \(info.value_size)); remove it or use another anchor")
        }
        guard info.max_entries >= shape.minimumEntries else {
            throw KernelError("open \(what)", path: name, detail: "the map pinned there holds \(info.max_entries) entries; a bpftree \(what) holds \(shape.minimumEntries): remove it (bpftree then treats what it made as unmanaged) or use another anchor")
        }
        return map
    }

    /// Creates the map and pins it under `name` (mode 0600); nil when something is pinned there already.
    static func pinNew(_ anchor: Anchor, name: String, shape: Shape, what: String) throws(KernelError) -> Descriptor? {
        let made = bt_map_create(shape.type.kernelValue, name.prefix(15).description, shape.keySize,
                                 shape.valueSize, shape.maxEntries, shape.flags)
        guard made >= 0 else {
            throw KernelError("create \(what) map", path: name, negativeErrno: made, detail: KernelError.privilegeHint(made)
                                ?? KernelError.capabilityHint(made, needs: [.bpf], for: "creating a map"))
        }
        let map = Descriptor(owning: made)
        let pinned = bt_obj_pin_at(anchor.fd, name, made)
        if pinned == -EEXIST { return nil }
        guard pinned == 0 else { throw KernelError("BPF_OBJ_PIN", path: name, negativeErrno: pinned) }
        _ = bt_fchmodat2(anchor.fd, name, 0o600, Int32(BT_AT_SYMLINK_NOFOLLOW))
        return map
    }
}
