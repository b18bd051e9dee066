import BPFTreeYAML

/// `netfilter:` of a link: a netfilter hook of bpftree's network namespace (`BPF_LINK_TYPE_NETFILTER`,
/// Linux 6.4), as nftables names it.
public struct NetfilterHook: Hashable, Sendable, CustomStringConvertible, LinkFamily {
    public enum Family: String, Sendable, CaseIterable {
        case ipv4, ipv6

        /// `NFPROTO_*`.
        public var kernelValue: UInt32 { self == .ipv4 ? 2 : 10 }
    }

    public enum Hook: String, Sendable, CaseIterable {
        case prerouting, input, forward, output, postrouting

        /// `NF_INET_*`.
        public var kernelValue: UInt32 { UInt32(Self.allCases.firstIndex(of: self) ?? 0) }
    }

    public var family: Family
    public var hook: Hook
    /// Lower runs first; the kernel refuses the reserved ends (`NF_IP_PRI_FIRST`, `NF_IP_PRI_LAST`).
    public var priority: Int32
    /// `BPF_F_NETFILTER_IP_DEFRAG` (6.6): packets reach the program defragmented.
    public var defrag: Bool

    public init(family: Family, hook: Hook, priority: Int32, defrag: Bool = false) {
        (self.family, self.hook, self.priority, self.defrag) = (family, hook, priority, defrag)
    }

    public var flags: UInt32 { defrag ? 1 : 0 }

    public var description: String {
        "netfilter \(family.rawValue) \(hook.rawValue) priority \(priority)\(defrag ? ", defragmented" : "")"
    }
}

extension NetfilterHook {
    var kernelType: UInt32 { 10 }
    var kernelSince: String? { "Linux 6.4" }
    var attachType: AttachType { .netfilter }

    func summary(_ program: TreePath, _ resolved: LinkResolution) -> String { "\(program) on \(self)" }
    func fingerprintText(_ resolved: LinkResolution) -> String { "\(self)" }

    func differences(from info: LiveLinkInfo, _ resolved: LinkResolution) -> [FieldDifference] {
        guard case .netfilter(let live) = info.details else { return [] }
        return live == self ? [] : [FieldDifference(field: "netfilter", declared: description, live: live.description)]
    }

    /// The hook `bpf_link_info` reports: `NFPROTO_*`, `NF_INET_*`, the priority and the flags.
    public init(kernelFamily: UInt32, hook: UInt32, priority: Int32, flags: UInt32) {
        self.init(family: kernelFamily == 10 ? .ipv6 : .ipv4, hook: Hook.allCases.first { $0.kernelValue == hook } ?? .prerouting,
                  priority: priority, defrag: flags & 1 == 1)
    }

    func problems(of spec: LinkSpec, image: ProgramImage, at path: TreePath, in tree: DesiredTree) -> [LinkProblem] {
        programProblem(spec, image.type == ProgramType.netfilter.kernelValue ? nil
            : "\(named(image)); a netfilter link needs a netfilter program (program: {type: netfilter}: Debian 12's libbpf 1.1 knows no netfilter section)")
    }
}

extension PinSpecDecoder {
    /// A `netfilter:` link.
    func netfilterLink(_ node: YAMLNode, _ field: String) -> LinkTarget? {
        guard let block = reader.object(node, field, known: ["family", "hook", "priority", "defrag"], required: ["family", "hook", "priority"])
        else { return nil }
        let family = block["family"].flatMap { reader.choice($0, join(field, "family"), NetfilterHook.Family.self) }
        let hook = block["hook"].flatMap { reader.choice($0, join(field, "hook"), NetfilterHook.Hook.self) }
        var priority: Int32?
        if let node = block["priority"], let value = reader.integer(node, join(field, "priority")) {
            // The kernel keeps the ends for itself (NF_IP_PRI_FIRST, NF_IP_PRI_LAST).
            let limit = UInt64(Int32.max) - 1
            if value.magnitude > limit {
                reader.error("\(value) is out of range -\(limit)...\(limit)", at: node, join(field, "priority"))
            } else {
                priority = value.isNegative ? -Int32(value.magnitude) : Int32(value.magnitude)
            }
        }
        let defrag = block["defrag"].flatMap { reader.bool($0, join(field, "defrag")) } ?? false
        guard let family, let hook, let priority else { return nil }
        return .netfilter(NetfilterHook(family: family, hook: hook, priority: priority, defrag: defrag))
    }
}
