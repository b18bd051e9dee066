import BPFTreeYAML

/// A `link:` entry: a declared program attached through a BPF link, and the link pinned.
public struct LinkSpec: Hashable, Sendable {
    public enum Target: Hashable, Sendable {
        /// The program attached to a cgroup (`BPF_LINK_TYPE_CGROUP`), e.g. `cgroup_inet_egress`.
        case cgroup(AttachType)
        /// A cgroup iterator (`BPF_LINK_TYPE_ITER`, target `cgroup`) anchored at the cgroup: reading the
        /// pin runs the program.
        case cgroupIterator(CgroupIteratorOrder)
        /// An iterator (`BPF_LINK_TYPE_ITER`) of a target that takes no parameters, e.g. `task`: reading
        /// the pin runs the program over every object of the target; a task iterator over one thread or
        /// process only when it has a scope.
        indirect case iterator(String, TaskScope?)
        /// An XDP program on a network interface (`BPF_LINK_TYPE_XDP`), in `mode` (nil: the kernel's
        /// choice, native where the driver has it).
        case xdp(XDPMode?)
        /// A program on a network namespace (`BPF_LINK_TYPE_NETNS`): `sk_lookup` or `flow_dissector`.
        case netns(AttachType)
        /// A tc program on an interface's ingress or egress (`BPF_LINK_TYPE_TCX`, Linux 6.6), placed
        /// among the programs already there (nil: appended, the kernel's default).
        case tcx(AttachType, TCXPosition?)
        /// A `tracepoint` program on a kernel tracepoint through a perf event (`BPF_LINK_TYPE_PERF_EVENT`),
        /// named as tracefs names it: `sched/sched_process_exec`.
        indirect case tracepoint(category: String, name: String)
        /// A `raw_tracepoint` program on a kernel tracepoint by name (`BPF_LINK_TYPE_RAW_TRACEPOINT`).
        indirect case rawTracepoint(String)
        /// A `kprobe` program on a user-space function through a perf event (`BPF_LINK_TYPE_PERF_EVENT`).
        indirect case uprobe(UprobeTarget)
        /// A `kprobe` program loaded for `trace_uprobe_multi` on every function of a binary that matches
        /// (`BPF_LINK_TYPE_UPROBE_MULTI`).
        indirect case uprobeMulti(UprobeMultiTarget)
        /// A `kprobe` program loaded for `trace_kprobe_multi` on every kernel function that matches
        /// (`BPF_LINK_TYPE_KPROBE_MULTI`).
        indirect case kprobeMulti(KprobeMultiTarget)
        /// A `kprobe` program on a kernel function through a perf event (`BPF_LINK_TYPE_PERF_EVENT`).
        indirect case kprobe(KprobeTarget)
        /// An iterator over the elements of a declared map (`bpf_map_elem`; `sockmap` over a sockmap's):
        /// reading the pin runs the program over each.
        indirect case mapIterator(String)
        /// An `sk_msg` or `sk_skb` program on a declared sockmap or sockhash (`BPF_LINK_TYPE_SOCKMAP`, 6.10).
        case sockmap(AttachType)
        /// A `netfilter` program on a netfilter hook of bpftree's network namespace
        /// (`BPF_LINK_TYPE_NETFILTER`).
        case netfilter(NetfilterHook)
        /// A tracing or LSM program (fentry, fexit, fmod_ret, tp_btf, lsm) at the function, tracepoint or hook
        /// its section named when it was loaded (`BPF_LINK_TYPE_TRACING`).
        case tracing(AttachType)
    }

    /// The declared program (anchor-relative).
    public var program: TreePath
    /// The cgroup v2 directory of a cgroup link or iterator: absolute, or relative to the cgroup v2 mount.
    public var cgroup: String?
    /// The network interface of an XDP link, by name, in bpftree's network namespace.
    public var interface: String?
    /// The declared map of a map iterator or a sockmap link (anchor-relative).
    public var map: TreePath?
    /// The network namespace of a netns link: a namespace file such as `/proc/PID/ns/net` or
    /// `/run/netns/NAME`.
    public var netns: String?
    /// The namespace's inode (its id), filled by the kernel layer before planning.
    public var netnsInode: UInt64?
    public var target: Target
    /// The cgroup's id, filled by the kernel layer before planning.
    public var cgroupID: UInt64?
    /// The interface's index, filled by the kernel layer before planning.
    public var interfaceIndex: UInt32?
    /// A tracepoint link's perf event id (tracefs `events/CATEGORY/NAME/id`), filled before planning.
    public var tracepointID: UInt64? {
        get { resolvedProbe.first?.tracepointID }
        set { probe { $0.tracepointID = newValue } }
    }
    /// A uprobe's binary as the kernel reports it (symbolic links resolved) and its file offset (the
    /// symbol's, plus `offset`), filled before planning.
    public var uprobeFile: String? {
        get { resolvedProbe.first?.uprobeFile }
        set { probe { $0.uprobeFile = newValue } }
    }
    public var uprobeOffset: UInt64? {
        get { resolvedProbe.first?.uprobeOffset }
        set { probe { $0.uprobeOffset = newValue } }
    }
    /// The uprobe's file as it is now (`DEVICE:INODE`): a binary replaced by another file (a package
    /// upgrade) leaves the link on the old one, which `bpf_link_info` of a perf event does not show.
    public var uprobeFileIdentity: String? {
        get { resolvedProbe.first?.uprobeFileIdentity }
        set { probe { $0.uprobeFileIdentity = newValue } }
    }
    /// A kprobe_multi link's functions (sorted), filled before planning.
    public var kprobeFunctions: [String]? {
        get { resolvedProbe.first?.kprobeFunctions }
        set { probe { $0.kprobeFunctions = newValue } }
    }
    /// A uprobe_multi link's file offsets (sorted), filled before planning.
    public var uprobeOffsets: [UInt64]? {
        get { resolvedProbe.first?.uprobeOffsets }
        set { probe { $0.uprobeOffsets = newValue } }
    }
    /// What the kernel layer resolved of a probe link, out of line: most links are cgroup links, by the
    /// thousand, and carry none (an empty array is one word).
    private var resolvedProbe: [ProbeResolution] = []

    private mutating func probe(_ change: (inout ProbeResolution) -> Void) {
        var resolution = resolvedProbe.first ?? ProbeResolution()
        change(&resolution)
        resolvedProbe = [resolution]
    }

    /// Where its fields were written (`cgroup`, `interface`, `netns`, `program`).
    public var locations: [String: SourceLocation] = [:]

    public init(program: TreePath, cgroup: String? = nil, interface: String? = nil, netns: String? = nil, target: Target,
                cgroupID: UInt64? = nil, interfaceIndex: UInt32? = nil) {
        self.program = program
        self.cgroup = cgroup
        self.interface = interface
        self.netns = netns
        self.target = target
        self.cgroupID = cgroupID
        self.interfaceIndex = interfaceIndex
    }

    /// `BPF_LINK_TYPE_*`.
    public var kernelType: UInt32 {
        switch target {
        case .cgroup: 3
        case .cgroupIterator, .iterator: 4
        case .xdp: 6
        case .netns: 5
        case .tcx(let attach, _): attach.isNetkit ? 13 : 11
        case .tracepoint, .uprobe, .kprobe: 7
        case .uprobeMulti: 12
        case .kprobeMulti: 8
        case .netfilter: 10
        case .mapIterator: 4
        case .sockmap: 14
        case .rawTracepoint: 1
        // A tp_btf program's link is a raw tracepoint link too (the kernel names its tracepoint).
        case .tracing(let attach): attach == .traceRawTP ? 1 : 2
        }
    }

    /// `BPF_LINK_CREATE`'s attach type.
    public var attachType: AttachType {
        switch target {
        case .cgroup(let attach): attach
        case .cgroupIterator, .iterator: .traceIter
        case .xdp: .xdp
        case .netns(let attach), .tcx(let attach, _), .tracing(let attach): attach
        case .tracepoint, .uprobe, .kprobe: .perfEvent
        case .rawTracepoint: .traceRawTP
        case .uprobeMulti: .traceUprobeMulti
        case .kprobeMulti: .traceKprobeMulti
        case .netfilter: .netfilter
        case .mapIterator: .traceIter
        case .sockmap(let attach): attach
        }
    }

    public var summary: String {
        let id = cgroupID.map { " (id \($0))" } ?? ""
        let cgroup = cgroup ?? ""
        switch target {
        case .cgroup(let attach): return "\(program) on cgroup \(cgroup)\(id) at \(attach.name)"
        case .cgroupIterator(let order): return "iterator \(program) on cgroup \(cgroup)\(id), \(order.rawValue)"
        case .iterator(let target, let scope): return "iterator \(program) over \(target)\(scope.map { " of \($0)" } ?? "")"
        case .netns(let attach):
            return "\(program) on network namespace \(netns ?? "")\(netnsInode.map { " (inode \($0))" } ?? "") at \(attach.name)"
        case .xdp(let mode):
            let index = interfaceIndex.map { " (index \($0))" } ?? ""
            return "XDP \(program) on interface \(interface ?? "")\(index)\(mode.map { ", \($0.rawValue) mode" } ?? "")"
        case .tcx(let attach, let position):
            let index = interfaceIndex.map { " (index \($0))" } ?? ""
            return "\(attach.isNetkit ? "netkit" : "tcx") \(program) on interface \(interface ?? "")\(index) at \(attach.name)\(position.map { ", \($0)" } ?? "")"
        case .tracepoint(let category, let name): return "\(program) on tracepoint \(category)/\(name)"
        case .rawTracepoint(let name): return "\(program) on raw tracepoint \(name)"
        case .uprobe(let probe):
            return "\(program) as \(probe)\(uprobeOffset.map { " (file offset 0x\(String($0, radix: 16)))" } ?? "")"
        case .kprobe(let probe): return "\(program) as \(probe)"
        case .uprobeMulti(let probe):
            return "\(program) as \(probe)\(uprobeOffsets.map { " (\($0.count) functions)" } ?? "")"
        case .kprobeMulti(let probe):
            return "\(program) as \(probe)\(kprobeFunctions.map { " (\($0.count) functions)" } ?? "")"
        case .tracing(let attach): return "\(program) at its \(attach.name) target"
        case .netfilter(let hook): return "\(program) on \(hook)"
        case .mapIterator(let target): return "iterator \(program) over \(target) of \(map?.description ?? "")"
        case .sockmap(let attach): return "\(program) on \(map?.description ?? "") at \(attach.name)"
        }
    }

    /// The hook takes one such link per program (tcx) or one in all (XDP, a sockmap's attach type): a
    /// replaced link is detached before its successor is made.
    public var exclusive: Bool {
        switch target {
        case .xdp, .tcx, .sockmap: true
        case .cgroup, .cgroupIterator, .iterator, .netns, .tracepoint, .rawTracepoint, .uprobe, .uprobeMulti, .kprobeMulti, .kprobe, .tracing, .netfilter, .mapIterator: false
        }
    }

    /// The kernel moves such a link to another program in place (`BPF_LINK_UPDATE`).
    public var updatable: Bool {
        switch target {
        case .cgroup, .xdp, .netns, .tcx, .sockmap: true
        case .cgroupIterator, .iterator, .tracepoint, .rawTracepoint, .uprobe, .uprobeMulti, .kprobeMulti, .kprobe, .tracing, .netfilter, .mapIterator: false
        }
    }

    /// The declared field the kernel does not report back (`bpf_link_info` has no XDP mode and no tcx
    /// position): a change of it is found through `fingerprint`.
    public var unobserved: (field: String, value: String)? {
        switch target {
        case .xdp(let mode): ("xdpMode", mode?.rawValue ?? "none (the kernel's choice)")
        case .tcx(_, let position):
            switch position {
            case .before?: ("before", position?.description ?? "")
            case .after?: ("after", position?.description ?? "")
            case .first?, .last?, nil: ("position", position?.description ?? "none (appended)")
            }
        case .uprobe(let probe):
            ("uprobe", "\(probe.binary) as it is now (device:inode \(uprobeFileIdentity ?? "?")), in \(probe.pid.map { "process \($0)" } ?? "every process")")
        case .cgroup, .cgroupIterator, .iterator, .netns, .tracepoint, .rawTracepoint, .uprobeMulti, .kprobeMulti, .kprobe, .tracing, .netfilter,
             .mapIterator, .sockmap: nil
        }
    }

    /// A stable digest of what the link is (FNV-1a), kept in the ledger.
    public var fingerprint: UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) {
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
        }
        mix(program.text.utf8)
        mix([0])
        switch target {
        case .cgroup(let attach): mix("cgroup \(attach.kernelValue)".utf8)
        case .cgroupIterator(let order): mix("iter \(order.kernelValue)".utf8)
        case .iterator(let target, let scope): mix("iterator \(target)\(scope.map { " \($0)" } ?? "")".utf8)
        case .netns(let attach): mix("netns \(attach.kernelValue) \(netnsInode ?? 0)".utf8)
        case .xdp(let mode): mix("xdp \(mode?.flags ?? 0) \(interfaceIndex ?? 0)".utf8)
        case .tcx(let attach, let position): mix("tcx \(attach.kernelValue) \(interfaceIndex ?? 0) \(position.map(String.init(describing:)) ?? "")".utf8)
        case .tracepoint(let category, let name): mix("tracepoint \(category)/\(name)".utf8)
        case .rawTracepoint(let name): mix("raw_tp \(name)".utf8)
        case .uprobe(let probe): mix("\(probe) \(uprobeFileIdentity ?? "")".utf8)
        case .kprobe(let probe): mix("\(probe)".utf8)
        case .uprobeMulti(let probe): mix("\(probe)".utf8)
        case .kprobeMulti(let probe): mix("\(probe)".utf8)
        case .netfilter(let hook): mix("\(hook)".utf8)
        case .mapIterator(let target): mix("map iterator \(target) \(map?.text ?? "")".utf8)
        case .sockmap(let attach): mix("sockmap \(attach.kernelValue) \(map?.text ?? "")".utf8)
        case .tracing(let attach): mix("tracing \(attach.kernelValue)".utf8)
        }
        mix(withUnsafeBytes(of: (cgroupID ?? 0).littleEndian, Array.init))
        return hash == 0 ? 1 : hash
    }

    /// How a live link differs from this one; `programID`: the id of the program pinned at `program`, when
    /// it is the one the link should hold.
    public func differences(from live: LiveLinkInfo, programID: UInt32?) -> [FieldDifference] {
        var differences: [FieldDifference] = []
        if live.type != kernelType {
            differences.append(FieldDifference(field: "type", declared: LiveLinkInfo.typeName(kernelType),
                                               live: LiveLinkInfo.typeName(live.type)))
            return differences
        }
        switch target {
        case .cgroup(let attach):
            if live.attachType != attach.kernelValue {
                differences.append(FieldDifference(field: "attachType", declared: attach.name,
                                                   live: AttachType(kernelValue: live.attachType)?.name ?? "\(live.attachType)"))
            }
        case .cgroupIterator(let order):
            if live.iteratorTarget != "cgroup" {
                differences.append(FieldDifference(field: "iter", declared: "cgroup", live: live.iteratorTarget))
            }
            if live.iteratorOrder != order.kernelValue {
                differences.append(FieldDifference(field: "order", declared: order.rawValue,
                                                   live: CgroupIteratorOrder(kernelValue: live.iteratorOrder)?.rawValue ?? "\(live.iteratorOrder)"))
            }
        case .netns(let attach):
            if live.attachType != attach.kernelValue {
                differences.append(FieldDifference(field: "attachType", declared: attach.name,
                                                   live: AttachType(kernelValue: live.attachType)?.name ?? "\(live.attachType)"))
            }
            if let netnsInode, UInt64(live.netnsInode) != netnsInode {
                differences.append(FieldDifference(field: "netns", declared: "\(netns ?? "") (inode \(netnsInode))",
                                                   live: live.netnsInode == 0 ? "detached, or its namespace gone" : "namespace inode \(live.netnsInode)"))
            }
        case .iterator(let target, let scope):
            if live.iteratorTarget != target {
                differences.append(FieldDifference(field: "iter", declared: target, live: live.iteratorTarget))
            } else if (scope?.tid ?? 0, scope?.pid ?? 0) != (live.taskTID, live.taskPID) {
                let liveScope = live.taskTID != 0 ? "thread \(live.taskTID)" : live.taskPID != 0 ? "process \(live.taskPID)" : "every task"
                differences.append(FieldDifference(field: scope?.field ?? "pid", declared: scope?.description ?? "every task", live: liveScope))
            }
        case .xdp:
            // The mode is not in bpf_link_info; the interface is.
            if let interfaceIndex, live.interfaceIndex != interfaceIndex {
                differences.append(FieldDifference(field: "interface", declared: "\(interface ?? "") (index \(interfaceIndex))",
                                                   live: live.interfaceIndex == 0 ? "detached, or its interface removed" : "interface index \(live.interfaceIndex)"))
            }
        case .tcx(let attach, _):
            // The position is where the link went when it was made; other programs may come and go around it.
            if let interfaceIndex, live.interfaceIndex != interfaceIndex {
                differences.append(FieldDifference(field: "interface", declared: "\(interface ?? "") (index \(interfaceIndex))",
                                                   live: live.interfaceIndex == 0 ? "detached, or its interface removed" : "interface index \(live.interfaceIndex)"))
            } else if live.attachType != attach.kernelValue {
                differences.append(FieldDifference(field: "attachType", declared: attach.name,
                                                   live: AttachType(kernelValue: live.attachType)?.name ?? "\(live.attachType)"))
            }
        case .tracepoint(let category, let name):
            probeDifferences(live, kind: .tracepoint, field: "tracepoint", declared: name, shown: "\(category)/\(name)", into: &differences)
        case .rawTracepoint(let name):
            if live.probeName != name {
                differences.append(FieldDifference(field: "rawTracepoint", declared: name, live: live.probeName))
            }
        case .uprobe(let probe):
            probeDifferences(live, kind: probe.isReturn ? .uretprobe : .uprobe, field: "uprobe.binary",
                             declared: uprobeFile ?? probe.binary, shown: probe.binary, into: &differences)
            if let uprobeOffset, live.probeOffset != uprobeOffset, differences.isEmpty {
                differences.append(FieldDifference(field: "uprobe.symbol", declared: "\(probe.location) (file offset 0x\(String(uprobeOffset, radix: 16)))",
                                                   live: "file offset 0x\(String(live.probeOffset, radix: 16))"))
            }
        case .uprobeMulti(let probe):
            if let uprobeFile, live.probeName != uprobeFile {
                differences.append(FieldDifference(field: "uprobe.binary", declared: probe.binary, live: live.probeName))
            } else if live.probeFlags != probe.flags {
                differences.append(FieldDifference(field: "uprobe.return", declared: "\(probe.isReturn)", live: "\(live.probeFlags & 1 == 1)"))
            } else if live.probePID != UInt32(probe.pid ?? 0) {
                differences.append(FieldDifference(field: "uprobe.pid", declared: probe.pid.map(String.init) ?? "every process",
                                                   live: live.probePID == 0 ? "every process" : "\(live.probePID)"))
            } else if let offsets = uprobeOffsets, live.probeCount != offsets.count
                        || (live.probeOffsetsDigest != 0 && live.probeOffsetsDigest != offsetsDigest(offsets)) {
                differences.append(FieldDifference(field: "uprobe.symbols", declared: "\(offsets.count) functions at their file offsets now",
                                                   live: "\(live.probeCount) functions at other offsets"))
            }
        case .mapIterator(let target):
            if live.iteratorTarget != target {
                differences.append(FieldDifference(field: "iter", declared: target, live: live.iteratorTarget))
            }
        case .sockmap(let attach):
            if live.attachType != attach.kernelValue {
                differences.append(FieldDifference(field: "attachType", declared: attach.name,
                                                   live: AttachType(kernelValue: live.attachType)?.name ?? "\(live.attachType)"))
            }
        case .netfilter(let hook):
            let live = NetfilterHook(family: live.netfilterFamily == 10 ? .ipv6 : .ipv4,
                                     hook: NetfilterHook.Hook.allCases.first { $0.kernelValue == live.netfilterHook } ?? .prerouting,
                                     priority: live.netfilterPriority, defrag: live.netfilterFlags & 1 == 1)
            if live != hook {
                differences.append(FieldDifference(field: "netfilter", declared: hook.description, live: live.description))
            }
        case .kprobeMulti(let probe):
            if live.probeFlags != probe.flags {
                differences.append(FieldDifference(field: "kprobe.return", declared: "\(probe.isReturn)", live: "\(live.probeFlags & 1 == 1)"))
            } else if let functions = kprobeFunctions, live.probeCount != functions.count {
                differences.append(FieldDifference(field: "kprobe.functions", declared: "\(functions.count) functions", live: "\(live.probeCount) functions"))
            }
        case .kprobe(let probe):
            probeDifferences(live, kind: probe.isReturn ? .kretprobe : .kprobe, field: "kprobe.function",
                             declared: probe.function, shown: probe.function, into: &differences)
            if live.probeOffset != probe.offset, differences.isEmpty {
                differences.append(FieldDifference(field: "kprobe.offset", declared: "\(probe.offset)", live: "\(live.probeOffset)"))
            }
        case .tracing(let attach):
            if attach != .traceRawTP, live.attachType != attach.kernelValue {
                differences.append(FieldDifference(field: "attachType", declared: attach.name,
                                                   live: AttachType(kernelValue: live.attachType)?.name ?? "\(live.attachType)"))
            }
        }
        if let cgroupID, live.cgroupID != cgroupID {
            differences.append(FieldDifference(field: "cgroup", declared: "\(cgroup ?? "") (id \(cgroupID))",
                                               live: live.cgroupID == 0 ? "a removed cgroup" : "cgroup id \(live.cgroupID)"))
        }
        if let programID, live.programID != programID {
            differences.append(FieldDifference(field: "program", declared: "\(program) (id \(programID))",
                                               live: "program id \(live.programID)"))
        }
        return differences
    }

    /// How a tcx link's place on its hook (`live.tcxLinks`, first to last) differs from its declared
    /// position; `relative`: the live id of the program or link it is declared next to.
    public func positionDifference(from live: LiveLinkInfo, relative: (id: UInt32, isLink: Bool)?) -> FieldDifference? {
        guard case .tcx(_, let position?) = target, let index = live.tcxLinks.firstIndex(of: live.id) else { return nil }
        let count = live.tcxLinks.count
        let place = "\(index + 1) of \(count) on the hook"
        func neighbour(_ at: Int) -> String {
            guard live.tcxLinks.indices.contains(at) else { return "nothing" }
            return live.tcxLinks[at] != 0 ? "link id \(live.tcxLinks[at])" : "program id \(live.tcxPrograms[at])"
        }
        func holds(_ at: Int, _ wanted: (id: UInt32, isLink: Bool)) -> Bool {
            guard live.tcxLinks.indices.contains(at) else { return false }
            return wanted.isLink ? live.tcxLinks[at] == wanted.id : live.tcxPrograms[at] == wanted.id
        }
        switch position {
        case .first where index != 0:
            return FieldDifference(field: "position", declared: "first", live: place)
        case .last where index != count - 1:
            return FieldDifference(field: "position", declared: "last", live: place)
        case .before(let path):
            guard let relative, !holds(index + 1, relative) else { return nil }
            return FieldDifference(field: "before", declared: "\(path)", live: "\(place), before \(neighbour(index + 1))")
        case .after(let path):
            guard let relative, !holds(index - 1, relative) else { return nil }
            return FieldDifference(field: "after", declared: "\(path)", live: "\(place), after \(neighbour(index - 1))")
        default:
            return nil
        }
    }

    /// A perf event link's event kind and name against the declared ones.
    private func probeDifferences(_ live: LiveLinkInfo, kind: PerfEventKind, field: String, declared: String, shown: String,
                                  into differences: inout [FieldDifference]) {
        if live.perfEventType != kind.rawValue {
            differences.append(FieldDifference(field: "event", declared: kind.name,
                                               live: PerfEventKind(rawValue: live.perfEventType)?.name ?? "perf event type \(live.perfEventType)"))
        } else if live.probeName != declared {
            differences.append(FieldDifference(field: field, declared: shown, live: live.probeName))
        }
    }
}

/// The kernel layer's findings about a probe link's target (`LinkSpec.tracepointID` and the rest).
struct ProbeResolution: Hashable, Sendable {
    var tracepointID: UInt64?
    var uprobeFile: String?
    var uprobeOffset: UInt64?
    var uprobeFileIdentity: String?
    var kprobeFunctions: [String]?
    var uprobeOffsets: [UInt64]?
}

/// `order` of a cgroup iterator (`enum bpf_cgroup_iter_order`).
public enum CgroupIteratorOrder: String, Sendable, CaseIterable {
    case selfOnly = "self_only"
    case descendantsPre = "descendants_pre"
    case descendantsPost = "descendants_post"
    case ancestorsUp = "ancestors_up"

    public var kernelValue: UInt32 {
        switch self {
        case .selfOnly: 1
        case .descendantsPre: 2
        case .descendantsPost: 3
        case .ancestorsUp: 4
        }
    }

    public init?(kernelValue: UInt32) {
        guard let match = Self.allCases.first(where: { $0.kernelValue == kernelValue }) else { return nil }
        self = match
    }
}

/// `mode` of an XDP link: which XDP hook of the driver (`XDP_FLAGS_*_MODE`), as iproute2's `xdpgeneric`,
/// `xdpdrv` and `xdpoffload` choose it.
public enum XDPMode: String, Sendable, CaseIterable {
    /// In the driver (`XDP_FLAGS_DRV_MODE`).
    case native
    /// In the kernel's generic receive path, for any interface (`XDP_FLAGS_SKB_MODE`).
    case generic
    /// On the network card (`XDP_FLAGS_HW_MODE`).
    case offload

    public var flags: UInt32 {
        switch self {
        case .native: 1 << 2
        case .generic: 1 << 1
        case .offload: 1 << 3
        }
    }
}

/// Where a tcx link goes among the programs on its hook (`BPF_F_BEFORE`/`BPF_F_AFTER`, by id): before
/// all, after all, or next to a declared program or tcx link (an anchor-relative path).
public enum TCXPosition: Hashable, Sendable, CustomStringConvertible {
    case first, last
    case before(TreePath), after(TreePath)

    /// The declared program or link this link goes next to.
    public var relative: TreePath? {
        switch self {
        case .first, .last: nil
        case .before(let path), .after(let path): path
        }
    }

    /// `link_create.flags` without the relative's kind (`BPF_F_LINK`).
    public var flags: UInt32 {
        switch self {
        case .first: TCXFlags.before
        case .last: TCXFlags.after
        case .before: TCXFlags.before | TCXFlags.byID
        case .after: TCXFlags.after | TCXFlags.byID
        }
    }

    public var description: String {
        switch self {
        case .first: "first"
        case .last: "last"
        case .before(let path): "before \(path)"
        case .after(let path): "after \(path)"
        }
    }
}

/// `link_create.flags` of multi-program attachments (`include/uapi/linux/bpf.h`).
public enum TCXFlags {
    public static let before: UInt32 = 1 << 3
    public static let after: UInt32 = 1 << 4
    /// `relative_id` holds an id, not an fd.
    public static let byID: UInt32 = 1 << 5
    /// The relative is a link, not a program.
    public static let link: UInt32 = 1 << 13
}

/// Iterator targets (`iter:`) a link takes without parameters, as the kernel names them
/// (`bpf_iter_reg.target`); `cgroup` takes a cgroup and is a `LinkSpec.Target.cgroupIterator`.
public enum IteratorTargets {
    /// Targets over the elements of a map, given as `map`.
    public static let overMaps = ["bpf_map_elem", "sockmap"]
    public static let plain = ["bpf_link", "bpf_map", "bpf_prog", "dmabuf", "ipv6_route", "kmem_cache", "ksym", "netlink",
                               "task", "task_file", "task_vma", "tcp", "udp", "unix"]
}

/// The one thread or process a task iterator walks (`bpf_iter_link_info.task`, Linux 6.1).
public enum TaskScope: Hashable, Sendable, CustomStringConvertible {
    case thread(UInt32)
    case process(UInt32)

    public var tid: UInt32 { if case .thread(let id) = self { id } else { 0 } }
    public var pid: UInt32 { if case .process(let id) = self { id } else { 0 } }
    /// The link field that declares it.
    public var field: String { if case .thread = self { "tid" } else { "pid" } }
    public var description: String {
        switch self {
        case .thread(let id): "thread \(id)"
        case .process(let id): "process \(id)"
        }
    }
    /// The targets that take one: what `pid`/`tid` apply to.
    public static let targets = ["task", "task_file", "task_vma"]
}
