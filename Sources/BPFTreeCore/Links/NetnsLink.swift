import BPFTreeYAML

/// A program on a network namespace (`BPF_LINK_TYPE_NETNS`): `sk_lookup` or `flow_dissector`.
public struct NetnsLink: Hashable, Sendable, LinkFamily {
    public var attach: AttachType
    /// A namespace file such as `/proc/PID/ns/net` or `/run/netns/NAME`.
    public var namespace: String

    public init(attach: AttachType, namespace: String) {
        (self.attach, self.namespace) = (attach, namespace)
    }

    /// What `bpf_link_info` reports of a network namespace link.
    public struct Live: Hashable, Sendable {
        public var attach: UInt32
        /// 0 once detached, or once the namespace is gone.
        public var inode: UInt32

        public init(attach: UInt32, inode: UInt32) {
            (self.attach, self.inode) = (attach, inode)
        }
    }

    /// The attach types of network namespace links.
    static let attachTypes: [AttachType] = [.skLookup, .flowDissector]

    var kernelType: UInt32 { 5 }
    var attachType: AttachType { attach }
    var updatable: Bool { true }

    func summary(_ program: TreePath, _ resolved: LinkResolution) -> String {
        "\(program) on network namespace \(namespace)\(resolved.namespaceInode.map { " (inode \($0))" } ?? "") at \(attach.name)"
    }

    func fingerprintText(_ resolved: LinkResolution) -> String { "netns \(attach.kernelValue) \(resolved.namespaceInode ?? 0)" }

    func differences(from info: LiveLinkInfo, _ resolved: LinkResolution) -> [FieldDifference] {
        guard case .netns(let live) = info.details else { return [] }
        var differences = attachDifference(attach, live.attach).map { [$0] } ?? []
        if let inode = resolved.namespaceInode, UInt64(live.inode) != inode {
            differences.append(FieldDifference(field: "netns", declared: "\(namespace) (inode \(inode))",
                                               live: live.inode == 0 ? "detached, or its namespace gone" : "namespace inode \(live.inode)"))
        }
        return differences
    }
}

extension PinSpecDecoder {
    /// A network namespace link (`attachType: sk_lookup` or `flow_dissector`).
    func netnsLink(_ attach: AttachType, _ block: Fields, node: YAMLNode, _ field: String) -> LinkTarget? {
        hosted("netns", block, node: node, field, namespacePath) { .netns(NetnsLink(attach: attach, namespace: $0)) }
    }

    /// A network namespace file: an absolute path such as `/proc/PID/ns/net` or `/run/netns/NAME`.
    private func namespacePath(_ node: YAMLNode, _ field: String) -> String? {
        guard let text = reader.string(node, field) else { return nil }
        guard text.hasPrefix("/"), !text.utf8.contains(0) else {
            reader.error("'\(text)' must be the absolute path of a network namespace file, e.g. /proc/PID/ns/net or /run/netns/NAME", at: node, field)
            return nil
        }
        return text
    }
}
