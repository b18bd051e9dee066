import BPFTreeCore
import CBPFTreeShim
import Glibc

/// A link detached from its hook to make room for its successor (XDP, tcx, netkit, sockmap: the hook
/// takes it once), and what attaches its program again where it was should the run fail before the
/// successor is in place.
public struct DetachedLink {
    public var path: TreePath
    /// The detached link's id (a tcx neighbour of a link restored after it may name it).
    public var id: UInt32
    /// The ledger's record of it, for its restored link to be recorded the same way.
    public var record: LedgerRecord?
    /// Why it cannot be attached again (its program or place could not be read before the detach); nil
    /// when it can.
    public var unrestorable: String?
    /// Its program, held: the run may replace the pin that held it.
    var program: Descriptor?
    /// A sockmap link's map.
    var map: Descriptor?
    var attachType: UInt32 = 0
    var interfaceIndex: UInt32 = 0
    /// An XDP link's mode (`XDP_FLAGS_*_MODE`).
    var flags: UInt32 = 0
    /// A tcx or netkit link's followers on the hook, nearest first: link ids, or program ids where a
    /// program is attached without a link.
    var following: [(id: UInt32, isLink: Bool)] = []

    public init(path: TreePath, id: UInt32, record: LedgerRecord?, unrestorable: String? = nil) {
        (self.path, self.id, self.record, self.unrestorable) = (path, id, record, unrestorable)
    }

    /// Reads what restores `link` (pinned at `path`), before it is detached.
    init(link: Descriptor, at path: TreePath, record: LedgerRecord?) {
        self.init(path: path, id: 0, record: record)
        var info = bt_link_info()
        let result = bt_link_info_by_fd(link.rawValue, &info)
        guard result == 0 else {
            unrestorable = "its link info could not be read (\(KernelError(.bpf(.objGetInfoByFD), path: path.description, negativeErrno: result)))"
            return
        }
        (id, attachType, interfaceIndex) = (info.id, info.attach_type, info.ifindex)
        let program = bt_prog_fd_by_id(info.prog_id)
        guard program >= 0 else {
            unrestorable = "its program could not be held (\(KernelError(.bpf(.progGetFDByID), path: "\(info.prog_id)", negativeErrno: program)))"
            return
        }
        self.program = Descriptor(owning: program)
        switch info.type {
        case 6:
            // XDP: the mode it runs in.
            attachType = AttachType.xdp.kernelValue
            let found = bt_xdp_mode(info.ifindex, info.prog_id, &flags)
            if found != 0 || flags == 0 { unrestorable = "its XDP mode on interface \(info.ifindex) could not be read" }
        case 11, 13:
            // tcx, netkit: who follows it on the hook.
            guard let (programs, links) = try? NetDeviceLink.hook(info.ifindex, info.attach_type, for: path.description),
                  let position = links.firstIndex(of: info.id) else {
                unrestorable = "its place on the hook could not be read"
                return
            }
            following = (position + 1..<links.count).map { links[$0] != 0 ? (links[$0], true) : (programs[$0], false) }
        case 14:
            let map = bt_map_fd_by_id(info.map_id)
            guard map >= 0 else {
                unrestorable = "its map could not be held (\(KernelError(.bpf(.mapGetFDByID), path: "\(info.map_id)", negativeErrno: map)))"
                return
            }
            self.map = Descriptor(owning: map)
        default:
            unrestorable = "links of type \(info.type) are not attached again"
        }
    }

    /// The `BPF_LINK_CREATE` that attaches the program again where it was: a tcx link before the nearest
    /// of its followers still on the hook (`renamed`: ids of links restored before it, old → new), else
    /// last.
    func reattachment(renamed: [UInt32: UInt32]) throws(KernelError) -> LinkOp {
        guard let program, unrestorable == nil else {
            throw KernelError(.step(.attachAgain), path: path.description, detail: unrestorable ?? "its program is not held")
        }
        if let map { return LinkOp(program: program, target: map, attachType: attachType, info: []) }
        guard !following.isEmpty else {
            return LinkOp(program: program, target: nil, interfaceIndex: interfaceIndex, attachType: attachType, flags: flags, info: [])
        }
        let (programs, links) = try NetDeviceLink.hook(interfaceIndex, attachType, for: path.description)
        let (presentLinks, presentPrograms) = (Set(links), Set(programs))
        for follower in following {
            let id = follower.isLink ? renamed[follower.id] ?? follower.id : follower.id
            guard follower.isLink ? presentLinks.contains(id) : presentPrograms.contains(id) else { continue }
            return LinkOp(program: program, target: nil, interfaceIndex: interfaceIndex, attachType: attachType,
                          flags: TCXFlags.before | TCXFlags.byID | (follower.isLink ? TCXFlags.link : 0), relativeID: id, info: [])
        }
        return LinkOp(program: program, target: nil, interfaceIndex: interfaceIndex, attachType: attachType, info: [])
    }
}
