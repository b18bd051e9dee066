/// A Linux capability some of bpftree's work needs, by its number in linux/capability.h.
public enum Capability: Int, CaseIterable, Comparable, Sendable, CustomStringConvertible {
    case chown = 0, dacOverride = 1, dacReadSearch = 2, fowner = 3, netAdmin = 12, sysPtrace = 19, sysAdmin = 21
    case perfmon = 38, bpf = 39

    public var description: String {
        switch self {
        case .chown: "CAP_CHOWN"
        case .dacOverride: "CAP_DAC_OVERRIDE"
        case .dacReadSearch: "CAP_DAC_READ_SEARCH"
        case .fowner: "CAP_FOWNER"
        case .netAdmin: "CAP_NET_ADMIN"
        case .sysPtrace: "CAP_SYS_PTRACE"
        case .sysAdmin: "CAP_SYS_ADMIN"
        case .perfmon: "CAP_PERFMON"
        case .bpf: "CAP_BPF"
        }
    }

    /// Whether a process whose effective set is `effective` (bit n = capability n) passes the kernel's check
    /// for this capability: CAP_SYS_ADMIN passes CAP_BPF's and CAP_PERFMON's (`bpf_capable`,
    /// `perfmon_capable`), CAP_DAC_OVERRIDE passes CAP_DAC_READ_SEARCH's.
    public func isHeld(in effective: UInt64) -> Bool {
        func has(_ capability: Capability) -> Bool { effective & (1 << UInt64(capability.rawValue)) != 0 }
        switch self {
        case .bpf, .perfmon: return has(self) || has(.sysAdmin)
        case .dacReadSearch: return has(self) || has(.dacOverride)
        default: return has(self)
        }
    }

    public static func < (a: Capability, b: Capability) -> Bool { a.rawValue < b.rawValue }
}

/// The user a process acts as for file ownership: its effective uid and gid and its supplementary groups.
public struct ProcessUser: Hashable, Sendable {
    public var uid: UInt32
    public var gid: UInt32
    public var groups: Set<UInt32>

    public init(uid: UInt32, gid: UInt32, groups: Set<UInt32> = []) {
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }

    /// Whether giving an entry owned by `current` (nil: a new entry, which is this user's) the owner
    /// `owner` takes CAP_CHOWN: anyone but the file's owner, or another uid, or a group the user is not in.
    public func needsChown(to owner: Owner, from current: Owner? = nil) -> Bool {
        if let currentUID = current?.uid, currentUID != uid { return true }
        if let target = owner.uid, target != (current?.uid ?? uid) { return true }
        if let target = owner.gid, target != (current?.gid ?? gid), target != gid, !groups.contains(target) { return true }
        return false
    }
}

/// A capability running a plan needs: the first action that needs it, and why.
public struct CapabilityNeed: Hashable, Sendable, CustomStringConvertible {
    public var capability: Capability
    public var path: TreePath
    public var reason: String
    public var origin: Origin?

    public init(_ capability: Capability, path: TreePath, reason: String, origin: Origin? = nil) {
        self.capability = capability
        self.path = path
        self.reason = reason
        self.origin = origin
    }

    public var description: String {
        "\(capability): \(path)\(origin.map { " (declared at \($0.location), \($0.field))" } ?? ""): \(reason)"
    }
}

extension Plan {
    /// The capabilities running the plan takes when no BPF token stands in for them, each with the first
    /// action that needs it, in capability order. Measured on Linux 6.18 (the README's capability table).
    /// `liveOwner`: the uid of a path's live entry, where the pass observed it (a mode change of another
    /// user's entry takes CAP_FOWNER); what depends on modes (CAP_DAC_*) is not foreseen here.
    public func capabilityNeeds(of user: ProcessUser, liveOwner: (TreePath) -> UInt32? = { _ in nil }) -> [CapabilityNeed] {
        var needs: [Capability: CapabilityNeed] = [:]
        func need(_ capability: Capability, _ action: Action, _ reason: @autoclosure () -> String) {
            if needs[capability] == nil {
                needs[capability] = CapabilityNeed(capability, path: action.path, reason: reason(), origin: action.origin)
            }
        }
        func owned(_ owner: Owner, from current: Owner? = nil, _ action: Action) {
            if user.needsChown(to: owner, from: current) {
                need(.chown, action, "giving it owner \(owner) (bpftree runs as \(user.uid):\(user.gid))")
            }
        }
        func batch(_ action: Action, _ what: String) {
            need(.bpf, action, "\(what) by the batch program")
            need(.perfmon, action, "\(what) by the batch program, whose bpf_sys_bpf helper the kernel offers only with CAP_PERFMON")
        }
        for action in actions {
            switch action.change {
            case .createDirectory(_, let owner):
                owned(owner, action)
            case .createMap(let spec, _, let owner), .replaceMap(let spec, _, let owner, _, _, _):
                batch(action, "creating a map")
                if spec.type.needsNetAdmin { need(.netAdmin, action, "creating a map of type \(spec.type.rawValue)") }
                owned(owner, action)
            case .createProgram(let program, _, let owner), .replaceProgram(let program, _, let owner, _):
                need(.bpf, action, "loading a program")
                if let type = program.type {
                    if type.needsPerfmon { need(.perfmon, action, "loading a program of type \(type)") }
                    if type.needsNetAdmin { need(.netAdmin, action, "loading a program of type \(type)") }
                }
                owned(owner, action)
            case .createLink(let link, _, let owner), .replaceLink(let link, _, let owner, _):
                batch(action, "creating a link")
                if let (capability, reason) = link.spec.target.family.capabilityNeed { need(capability, action, reason) }
                owned(owner, action)
            case .setOwner(let from, let to):
                owned(to, from: from, action)
            case .setMode(_, let mode):
                // The mode is set before the owner (`setAttributes`), so it is the live owner's.
                if let uid = liveOwner(action.path), uid != user.uid {
                    need(.fowner, action, "setting mode \(formatMode(mode)) on an entry of uid \(uid) (bpftree runs as \(user.uid))")
                }
            case .updateLink, .recordOwnership, .remove, .removeTemporary, .forgetRecord:
                break
            }
        }
        return needs.values.sorted { $0.capability < $1.capability }
    }
}

extension MapType {
    /// Map types the kernel creates only with CAP_NET_ADMIN (`map_create`).
    public var needsNetAdmin: Bool {
        switch self {
        case .sockmap, .sockhash, .devmap, .devmapHash, .xskmap: true
        default: false
        }
    }
}

extension ProgramType {
    /// Types the kernel loads only with CAP_NET_ADMIN (`is_net_admin_prog_type`).
    public var needsNetAdmin: Bool {
        ["sched_cls", "sched_act", "xdp", "lwt_in", "lwt_out", "lwt_xmit", "lwt_seg6local", "sk_skb", "sk_msg",
         "lirc_mode2", "flow_dissector", "cgroup_device", "cgroup_sock", "cgroup_sock_addr", "cgroup_sockopt",
         "cgroup_sysctl", "sock_ops", "ext", "netfilter"].contains(name)
    }

    /// Types the kernel loads only with CAP_PERFMON (`is_perfmon_prog_type`).
    public var needsPerfmon: Bool {
        ["kprobe", "tracepoint", "perf_event", "raw_tracepoint", "raw_tracepoint_writable", "tracing", "lsm",
         "struct_ops", "ext"].contains(name)
    }
}
