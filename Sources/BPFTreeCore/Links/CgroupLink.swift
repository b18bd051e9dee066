import BPFTreeYAML

/// A program attached to a cgroup v2 directory (`BPF_LINK_TYPE_CGROUP`), e.g. at `cgroup_inet_egress`.
public struct CgroupLink: Hashable, Sendable, LinkFamily {
    /// One of the cgroup attach types (`AttachType.isCgroup`).
    public var attach: AttachType
    /// Absolute, or relative to the cgroup v2 mount.
    public var cgroup: String

    public init(attach: AttachType, cgroup: String) {
        (self.attach, self.cgroup) = (attach, cgroup)
    }

    /// What `bpf_link_info` reports of a cgroup link.
    public struct Live: Hashable, Sendable {
        public var attach: UInt32
        /// 0 once the cgroup is gone.
        public var cgroupID: UInt64

        public init(attach: UInt32, cgroupID: UInt64) {
            (self.attach, self.cgroupID) = (attach, cgroupID)
        }
    }

    var kernelType: UInt32 { 3 }
    var attachType: AttachType { attach }
    var updatable: Bool { true }
    var capabilityNeed: (Capability, String)? { (.netAdmin, "attaching a program to a cgroup") }

    func summary(_ program: TreePath, _ resolved: LinkResolution) -> String {
        "\(program) on cgroup \(cgroup)\(resolved.cgroupID.map { " (id \($0))" } ?? "") at \(attach.name)"
    }

    func fingerprintText(_ resolved: LinkResolution) -> String { "cgroup \(attach.kernelValue)" }

    func differences(from live: LiveLinkInfo, _ resolved: LinkResolution) -> [FieldDifference] {
        guard case .cgroup(let live) = live.details else { return [] }
        return [attachDifference(attach, live.attach), Self.cgroupDifference(cgroup, resolved, live.cgroupID)].compactMap { $0 }
    }

    /// A cgroup link's or cgroup iterator's cgroup against the live one's (`live`: its id, 0 when gone).
    static func cgroupDifference(_ cgroup: String, _ resolved: LinkResolution, _ live: UInt64) -> FieldDifference? {
        guard let id = resolved.cgroupID, live != id else { return nil }
        return FieldDifference(field: "cgroup", declared: "\(cgroup) (id \(id))", live: live == 0 ? "a removed cgroup" : "cgroup id \(live)")
    }
}

extension PinSpecDecoder {
    /// A cgroup link (`attachType:` one of the cgroup attach types).
    func cgroupLink(_ attach: AttachType, _ block: Fields, node: YAMLNode, _ field: String) -> LinkTarget? {
        hosted("cgroup", block, node: node, field, cgroupPath) { .cgroup(CgroupLink(attach: attach, cgroup: $0)) }
    }

    /// A cgroup v2 directory: absolute or relative to the cgroup v2 mount, without `.`/`..` segments.
    func cgroupPath(_ node: YAMLNode, _ field: String) -> String? {
        guard let text = reader.string(node, field) else { return nil }
        if let problem = placeholderProblem(text, CgroupTemplate.linkPlaceholders) {
            reader.error(problem, at: node, field)
            return nil
        }
        if text.isEmpty || text.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) {
            reader.error("'\(text)' must name a cgroup directory, without '.' or '..' segments", at: node, field)
            return nil
        }
        return text
    }
}
