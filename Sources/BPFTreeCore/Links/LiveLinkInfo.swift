/// What the kernel reports for a pinned link (`BPF_OBJ_GET_INFO_BY_FD`): its id, type and program, and
/// what its family's part of `bpf_link_info` says.
public struct LiveLinkInfo: Hashable, Sendable {
    public var id: UInt32
    /// `BPF_LINK_TYPE_*`.
    public var type: UInt32
    public var programID: UInt32
    public var details: LiveLinkDetails
    /// A digest of all the kernel reported of the link, set by the kernel layer (0: not read from the
    /// kernel), which a stamp keeps: a link detached, or moved to another program, through its pin keeps
    /// the pin's inode.
    public var state: UInt64 = 0

    public init(id: UInt32, type: UInt32, programID: UInt32, details: LiveLinkDetails = .none) {
        (self.id, self.type, self.programID, self.details) = (id, type, programID, details)
    }

    /// A map iterator's or sockmap link's map id; 0 for other links.
    public var mapID: UInt32 {
        switch details {
        case .iterator(let live): live.mapID
        case .sockmap(let live): live.mapID
        default: 0
        }
    }

    public static func typeName(_ type: UInt32) -> String {
        let names = ["unspec", "raw_tracepoint", "tracing", "cgroup", "iter", "netns", "xdp", "perf_event",
                     "kprobe_multi", "struct_ops", "netfilter", "tcx", "uprobe_multi", "netkit", "sockmap"]
        return names.indices.contains(Int(type)) ? names[Int(type)] : "type \(type)"
    }
}

/// A link's family part of `bpf_link_info`, by family (each family's file has its `Live`).
public enum LiveLinkDetails: Hashable, Sendable {
    /// Not read (a type bpftree declares no links of), or not reported by this kernel.
    case none
    case cgroup(CgroupLink.Live)
    indirect case netDevice(NetDeviceLink.Live)
    case netns(NetnsLink.Live)
    indirect case probe(ProbeLink.Live)
    indirect case multiProbe(MultiProbeLink.Live)
    indirect case tracing(TracingLink.Live)
    indirect case iterator(IteratorLink.Live)
    case netfilter(NetfilterHook)
    case sockmap(SockmapLink.Live)
}
