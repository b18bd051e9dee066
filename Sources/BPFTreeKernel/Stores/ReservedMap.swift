import BPFTreeCore
import CBPFTreeShim
import Glibc

/// One of bpftree's own maps pinned at the anchor (the ledger, the stamp, the program image cache): opened,
/// or created and pinned (mode 0600) when asked; refused when what is under its name is not one bpftree
/// could have pinned itself.
enum ReservedMap {
    /// Which of bpftree's maps: its name at the anchor, how errors call it, and what removing it costs.
    enum Role {
        case ledger, stamp, images

        var name: String {
            switch self {
            case .ledger: Reserved.ledgerName
            case .stamp: Reserved.stampName
            case .images: Reserved.imagesName
            }
        }

        var what: String {
            switch self {
            case .ledger: "ledger"
            case .stamp: "stamp"
            case .images: "program image cache"
            }
        }

        var whenRemoved: String {
            switch self {
            case .ledger: "what bpftree made becomes unmanaged"
            case .stamp: "the next pass plans in full"
            case .images: "programs are loaded again"
            }
        }
    }

    struct Shape {
        var type: MapType
        var keySize: UInt32
        var valueSize: UInt32
        var maxEntries: UInt32
        var flags: UInt32 = 0
        /// The fewest entries a map found pinned under the name may have to be usable.
        var minimumEntries: UInt32 = 1
        /// Value sizes of earlier layouts that are still read.
        var legacyValueSizes: [UInt32] = []
    }

    /// The map's fd, or nil when there is none and `create` is false. Only a map bpftree could have pinned itself is used: a pin (never a symlink's
    /// target) of bpftree's own user that nobody else may write, of the shape it makes; anything else under
    /// the name is refused with what to do, since what it holds may have been written by someone else.
    static func open(_ anchor: Anchor, _ role: Role, shape: Shape, create: Bool) throws(KernelError) -> Descriptor? {
        let (name, what) = (role.name, role.what)
        var found = bt_pin_stat()
        var fd = bt_pin_open(anchor.fd.rawValue, name, &found)
        if fd == -ENOENT {
            guard create else { return nil }
            if let made = try pinNew(anchor, role, shape: shape) { return made }
            // Another bpftree pinned it first: use theirs.
            fd = bt_pin_open(anchor.fd.rawValue, name, &found)
        }
        let reserved = "the name is reserved for bpftree's \(what) map"
        switch fd {
        case -ELOOP:
            throw KernelError(.step(.openReserved(what)), path: name, detail: "it is a symlink, and bpftree never follows one (it could lead to another anchor's \(what)): remove it; \(reserved)")
        case -EISDIR:
            throw KernelError(.step(.openReserved(what)), path: name, detail: "it is a directory; \(reserved): rename the directory")
        case -EINVAL:
            throw KernelError(.step(.openReserved(what)), path: name, detail: "it is a file of type \(String(found.mode & S_IFMT, radix: 8)), not a pin; \(reserved): remove it")
        case ..<0:
            throw KernelError(.bpf(.objGet), path: name, negativeErrno: fd)
                .adding(KernelError.capabilityHint(fd, needs: [], for: "opening bpftree's own \(what) map"))
        default:
            break
        }
        let map = Descriptor(owning: fd)
        let kind = bt_fd_object_kind(map.rawValue)
        guard kind == Int32(BT_OBJECT_MAP.rawValue) else {
            let held = kind == Int32(BT_OBJECT_PROG.rawValue) ? "a program" : kind == Int32(BT_OBJECT_LINK.rawValue) ? "a link" : "an object"
            throw KernelError(.step(.openReserved(what)), path: name, detail: "the pin holds \(held), not a bpftree \(what); \(reserved): move the pin elsewhere")
        }
        let user = geteuid()
        guard found.uid == user, found.mode & 0o022 == 0 else {
            throw KernelError(.step(.openReserved(what)), path: name, detail: "the pin is owned by uid \(found.uid) with mode \(formatMode(found.mode & 0o7777)); bpftree pins its \(what) as its own user (uid \(user)) with mode 0600, so someone else may have written this one and bpftree does not use it: check it (bpftool map dump pinned ANCHOR/\(name)), then remove it (\(role.whenRemoved)) or give it back owner uid \(user) and mode 0600")
        }
        var info = bt_map_info()
        let result = bt_map_info_by_fd(map.rawValue, &info)
        guard result == 0 else { throw KernelError(.bpf(.objGetInfoByFD), path: name, negativeErrno: result) }
        guard info.type == shape.type.kernelValue, info.key_size == shape.keySize, info.value_size == shape.valueSize || shape.legacyValueSizes.contains(info.value_size) else {
            throw KernelError(.step(.openReserved(what)), path: name, detail: "the map pinned there is not a bpftree \(what) (type \(info.type), key \(info.key_size), value \(info.value_size)); \(reserved): remove it (\(role.whenRemoved)) or use another anchor")
        }
        guard info.max_entries >= shape.minimumEntries else {
            throw KernelError(.step(.openReserved(what)), path: name, detail: "the map pinned there holds \(info.max_entries) entries; a bpftree \(what) holds \(shape.minimumEntries): remove it (\(role.whenRemoved)) or use another anchor")
        }
        return map
    }

    /// Creates the map and pins it under `name` (mode 0600); nil when something is pinned there already.
    static func pinNew(_ anchor: Anchor, _ role: Role, shape: Shape) throws(KernelError) -> Descriptor? {
        let (name, what) = (role.name, role.what)
        let made = bt_map_create(shape.type.kernelValue, name.prefix(15).description, shape.keySize,
                                 shape.valueSize, shape.maxEntries, shape.flags)
        guard made >= 0 else {
            throw KernelError(.step(.createReserved(what)), path: name, negativeErrno: made, detail: KernelError.privilegeHint(made)
                                ?? KernelError.capabilityHint(made, needs: [.bpf], for: "creating a map"))
        }
        let map = Descriptor(owning: made)
        let pinned = bt_obj_pin_at(anchor.fd.rawValue, name, made)
        if pinned == -EEXIST { return nil }
        guard pinned == 0 else { throw KernelError(.bpf(.objPin), path: name, negativeErrno: pinned) }
        _ = bt_fchmodat2(anchor.fd.rawValue, name, 0o600, Int32(BT_AT_SYMLINK_NOFOLLOW))
        return map
    }
}
