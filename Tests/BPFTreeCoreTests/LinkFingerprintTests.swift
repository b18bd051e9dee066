import BPFTreeCore
import Testing

/// The ledger keeps each link's fingerprint: the same link must give the same digest in every version,
/// or every recorded link would look changed (an XDP mode or tcx position "another, when the link was
/// made") after an upgrade. The figures are what bpftree recorded before links were split by family.
struct LinkFingerprintTests {
    private static let program = TreePath(joined: "net/prog")

    private static func link(_ target: LinkTarget, _ resolved: LinkResolution = .none) -> ResolvedLink {
        ResolvedLink(LinkSpec(program: program, target: target), resolved)
    }

    static let recorded: [(String, ResolvedLink, UInt64, kernelType: UInt32, attach: UInt32, summary: String)] = [
        ("cgroup", link(.cgroup(CgroupLink(attach: .cgroupInetEgress, cgroup: "/job/a")), .cgroup(id: 4242)), 9986585335745843638, 3, 1,
         "net/prog on cgroup /job/a (id 4242) at cgroup_inet_egress"),
        ("cgroup iterator", link(.iterator(.cgroup("/job/a", .descendantsPre)), .cgroup(id: 77)), 4841718035875055346, 4, 28,
         "iterator net/prog on cgroup /job/a (id 77), descendants_pre"),
        ("task iterator", link(.iterator(.plain("task", .process(12)))), 991709085556691562, 4, 28, "iterator net/prog over task of process 12"),
        ("iterator", link(.iterator(.plain("bpf_map", nil))), 16625974558513265652, 4, 28, "iterator net/prog over bpf_map"),
        ("netns", link(.netns(NetnsLink(attach: .skLookup, namespace: "/run/netns/a")), .namespace(inode: 4026531840)), 10910651174871554755, 5, 36,
         "net/prog on network namespace /run/netns/a (inode 4026531840) at sk_lookup"),
        ("xdp", link(.netDevice(NetDeviceLink(interface: "veth0", hook: .xdp(.generic))), .interface(index: 7)), 12076424724846516154, 6, 37,
         "XDP net/prog on interface veth0 (index 7), generic mode"),
        ("xdp without mode", link(.netDevice(NetDeviceLink(interface: "veth0", hook: .xdp(nil))), .interface(index: 7)), 2652222381752970980, 6, 37,
         "XDP net/prog on interface veth0 (index 7)"),
        ("tcx", link(.netDevice(NetDeviceLink(interface: "veth0", hook: .tcx(.tcxIngress, .before(TreePath(joined: "net/f"))))), .interface(index: 9)),
         961113472273000148, 11, 46, "tcx net/prog on interface veth0 (index 9) at tcx_ingress, before net/f"),
        ("tcx without position", link(.netDevice(NetDeviceLink(interface: "veth0", hook: .tcx(.tcxEgress, nil))), .interface(index: 9)),
         7302012889425820544, 11, 47, "tcx net/prog on interface veth0 (index 9) at tcx_egress"),
        ("tracepoint", link(.probe(.tracepoint(category: "sched", name: "sched_switch"))), 14415835750848111846, 7, 41,
         "net/prog on tracepoint sched/sched_switch"),
        ("raw tracepoint", link(.tracing(.rawTracepoint("sched_switch"))), 7959407223377135404, 1, 23, "net/prog on raw tracepoint sched_switch"),
        ("uprobe", link(.probe(.uprobe(UprobeTarget(binary: "/bin/app", symbol: "add", offset: 4, pid: 3, isReturn: true))),
                        .uprobe(file: "/usr/bin/app", offset: 0x1139, identity: "8:17")), 13448362849435597822, 7, 41,
         "net/prog as uretprobe /bin/app:add+0x4 of process 3 (file offset 0x1139)"),
        ("kprobe", link(.probe(.kprobe(KprobeTarget(function: "tcp_connect", offset: 8)))), 780117892929484971, 7, 41, "net/prog as kprobe tcp_connect+0x8"),
        ("uprobe_multi", link(.multiProbe(.uprobe(UprobeMultiTarget(binary: "/bin/app", symbols: ["a*", "b"], pid: 5, isReturn: true))),
                              .uprobeMulti(file: "/usr/bin/app", offsets: [1, 2])), 9250471529177565612, 12, 48,
         "net/prog as uretprobe multi /bin/app:a*,b of process 5 (2 functions)"),
        ("kprobe_multi", link(.multiProbe(.kprobe(KprobeMultiTarget(functions: ["tcp_*"], isReturn: true)))), 15312356207531400548, 8, 42,
         "net/prog as kretprobe multi tcp_*"),
        ("netfilter", link(.netfilter(NetfilterHook(family: .ipv6, hook: .forward, priority: -7, defrag: true))), 7737533460572487922, 10, 45,
         "net/prog on netfilter ipv6 forward priority -7, defragmented"),
        ("map iterator", link(.iterator(.map("bpf_map_elem", TreePath(joined: "net/m")))), 5147634569865738039, 4, 28,
         "iterator net/prog over bpf_map_elem of net/m"),
        ("sockmap", link(.sockmap(SockmapLink(attach: AttachType.sockmap[2], map: TreePath(joined: "net/socks")))), 12886516027798192943, 14, 7,
         "net/prog on net/socks at sk_msg_verdict"),
        ("fentry", link(.tracing(.attach(AttachType.tracing[1]))), 1628212590421624115, 2, 24, "net/prog at its trace_fentry target"),
        ("tp_btf", link(.tracing(.attach(.traceRawTP))), 17846707100603716498, 1, 23, "net/prog at its trace_raw_tp target"),
    ]

    @Test func everyFamilyGivesTheFingerprintEarlierVersionsRecorded() {
        for (name, link, fingerprint, kernelType, attach, summary) in Self.recorded {
            #expect(link.fingerprint == fingerprint, "\(name)")
            #expect(link.spec.kernelType == kernelType && link.spec.attachType.kernelValue == attach, "\(name)")
            #expect(link.summary == summary, "\(name)")
        }
    }
}
