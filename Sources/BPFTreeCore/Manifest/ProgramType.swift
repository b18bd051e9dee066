/// A BPF program type, by the name libbpf and bpftool use (`libbpf_bpf_prog_type_str`).
public struct ProgramType: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let kernelValue: UInt32

    public init?(kernelValue: UInt32) {
        guard Self.names.indices.contains(Int(kernelValue)), kernelValue != 0 else { return nil }
        self.kernelValue = kernelValue
    }

    public init?(name: String) {
        guard let index = Self.names.firstIndex(of: name), index != 0 else { return nil }
        kernelValue = UInt32(index)
    }

    public var name: String { Self.names[Int(kernelValue)] }
    public var description: String { name }
    public static func < (a: ProgramType, b: ProgramType) -> Bool { a.kernelValue < b.kernelValue }

    /// Index = `enum bpf_prog_type` value.
    public static let names = [
        "unspec", "socket_filter", "kprobe", "sched_cls", "sched_act", "tracepoint", "xdp", "perf_event",
        "cgroup_skb", "cgroup_sock", "lwt_in", "lwt_out", "lwt_xmit", "sock_ops", "sk_skb", "cgroup_device",
        "sk_msg", "raw_tracepoint", "cgroup_sock_addr", "lwt_seg6local", "lirc_mode2", "sk_reuseport",
        "flow_dissector", "cgroup_sysctl", "raw_tracepoint_writable", "cgroup_sockopt", "tracing", "struct_ops",
        "ext", "lsm", "sk_lookup", "syscall", "netfilter",
    ]

    private init(raw: UInt32) { kernelValue = raw }
    public static let cgroupSKB = ProgramType(raw: 8)
    public static let tracing = ProgramType(raw: 26)
    public static let xdp = ProgramType(raw: 6)
    public static let schedCLS = ProgramType(raw: 3)
    public static let kprobe = ProgramType(raw: 2)
    public static let tracepoint = ProgramType(raw: 5)
    public static let rawTracepoint = ProgramType(raw: 17)
    public static let rawTracepointWritable = ProgramType(raw: 24)
    public static let lsm = ProgramType(raw: 29)
    public static let netfilter = ProgramType(raw: 32)

    /// Every known type name (for error messages).
    public static var allNames: [String] { Array(names.dropFirst()) }

    /// The release that brought this type, for types newer than the oldest kernel bpftree supports.
    public var kernelSince: String? { self == .netfilter ? "Linux 6.4" : nil }
    /// The uapi constant, as the kernel's BTF names it: `BPF_PROG_TYPE_NETFILTER`.
    public var constant: String { "BPF_PROG_TYPE_\(name.uppercased())" }
}

/// A BPF attach type, by the name libbpf and bpftool use (`libbpf_bpf_attach_type_str`).
public struct AttachType: Hashable, Sendable, CustomStringConvertible {
    public let kernelValue: UInt32

    public init?(kernelValue: UInt32) {
        guard Self.names.indices.contains(Int(kernelValue)) else { return nil }
        self.kernelValue = kernelValue
    }

    public init?(name: String) {
        guard let index = Self.names.firstIndex(of: name) else { return nil }
        kernelValue = UInt32(index)
    }

    public var name: String { Self.names[Int(kernelValue)] }
    public var description: String { name }

    /// Whether a program is attached to a cgroup with this type (a `BPF_LINK_TYPE_CGROUP` link).
    public var isCgroup: Bool { name.hasPrefix("cgroup_") || name == "lsm_cgroup" }

    /// Index = `enum bpf_attach_type` value.
    public static let names = [
        "cgroup_inet_ingress", "cgroup_inet_egress", "cgroup_inet_sock_create", "cgroup_sock_ops",
        "sk_skb_stream_parser", "sk_skb_stream_verdict", "cgroup_device", "sk_msg_verdict", "cgroup_inet4_bind",
        "cgroup_inet6_bind", "cgroup_inet4_connect", "cgroup_inet6_connect", "cgroup_inet4_post_bind",
        "cgroup_inet6_post_bind", "cgroup_udp4_sendmsg", "cgroup_udp6_sendmsg", "lirc_mode2", "flow_dissector",
        "cgroup_sysctl", "cgroup_udp4_recvmsg", "cgroup_udp6_recvmsg", "cgroup_getsockopt", "cgroup_setsockopt",
        "trace_raw_tp", "trace_fentry", "trace_fexit", "modify_return", "lsm_mac", "trace_iter",
        "cgroup_inet4_getpeername", "cgroup_inet6_getpeername", "cgroup_inet4_getsockname",
        "cgroup_inet6_getsockname", "xdp_devmap", "cgroup_inet_sock_release", "xdp_cpumap", "sk_lookup", "xdp",
        "sk_skb_verdict", "sk_reuseport_select", "sk_reuseport_select_or_migrate", "perf_event",
        "trace_kprobe_multi", "lsm_cgroup", "struct_ops", "netfilter", "tcx_ingress", "tcx_egress",
        "trace_uprobe_multi", "cgroup_unix_connect", "cgroup_unix_sendmsg", "cgroup_unix_recvmsg",
        "cgroup_unix_getpeername", "cgroup_unix_getsockname", "netkit_primary", "netkit_peer",
        "trace_kprobe_session", "trace_uprobe_session",
    ]

    private init(raw: UInt32) { kernelValue = raw }
    public static let cgroupInetEgress = AttachType(raw: 1)
    public static let traceIter = AttachType(raw: 28)
    public static let xdp = AttachType(raw: 37)
    public static let skLookup = AttachType(raw: 36)
    public static let flowDissector = AttachType(raw: 17)
    public static let tcxIngress = AttachType(raw: 46)
    public static let tcxEgress = AttachType(raw: 47)
    /// A netkit device's primary or peer side (Linux 6.7): tcx's link layout, on a netkit interface.
    public static let netkitPrimary = AttachType(raw: 54)
    public static let netkitPeer = AttachType(raw: 55)
    /// The hooks that take an ordered list of sched_cls links on an interface.
    public static let multiProgramHooks = [tcxIngress, tcxEgress, netkitPrimary, netkitPeer]
    public var isNetkit: Bool { self == .netkitPrimary || self == .netkitPeer }
    public static let traceRawTP = AttachType(raw: 23)
    public static let perfEvent = AttachType(raw: 41)
    public static let traceUprobeMulti = AttachType(raw: 48)
    public static let traceKprobeMulti = AttachType(raw: 42)
    public static let netfilter = AttachType(raw: 45)
    /// sk_skb_stream_parser, sk_skb_stream_verdict, sk_msg_verdict, sk_skb_verdict: on a sockmap or sockhash.
    public static let sockmap = [4, 5, 7, 38].map { AttachType(raw: $0) }
    /// The attach types of tracing and LSM programs, whose target is fixed when they load.
    public static let tracing = [23, 24, 25, 26, 27].map { AttachType(raw: $0) }
    public static var cgroupNames: [String] { names.filter { AttachType(name: $0)?.isCgroup ?? false } }
}
