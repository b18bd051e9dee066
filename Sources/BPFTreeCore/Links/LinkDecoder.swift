import BPFTreeYAML

/// Decodes `link:` blocks: which family a block is (by its probe field, `attachType` or `iter`), that
/// family's decoding (in the family's file), and the fields of other families refused with their place.
extension PinSpecDecoder {
    static let linkFields = ["program", "attachType", "iter"] + LinkField.owned.map(\.name) + probeFields
    /// The fields that name a probe link's target, each implying its attach type.
    static let probeFields = ["tracepoint", "rawTracepoint", "uprobe", "kprobe", "netfilter"]

    func link(_ block: Fields, node: YAMLNode, _ field: String) -> LinkSpec? {
        let before = reader.diagnostics.count
        var locations: [String: SourceLocation] = [:]
        for name in ["program", "cgroup", "interface", "netns", "map", "position", "before", "after", "pid", "tid"] + Self.probeFields {
            if let node = block[name] { locations[name] = node.location }
        }
        let program = block["program"].flatMap { reference($0, join(field, "program"), placeholders: ["{cgroup.id}", "{cgroup.name}"]) }
        let kind = kind(block, node: node, field)
        let target = kind.flatMap { decode($0, block, node: node, field) }
        if case .probe(let probe) = kind {
            // The probe field implies the attach type.
            let implied = target?.family.attachType ?? (probe == "rawTracepoint" ? .traceRawTP : probe == "netfilter" ? .netfilter : .perfEvent)
            if let attachNode = block["attachType"], let attach = attachType(attachNode, join(field, "attachType")), attach != implied {
                reader.error("a \(probe) link's attach type is \(implied.name) (attachType may be left out)", at: attachNode, join(field, "attachType"))
            }
            if let iterNode = block["iter"] {
                reader.error("iter makes an iterator link; this link is a \(probe) link", at: iterNode, join(field, "iter"))
            }
        }
        if let kind {
            for owned in LinkField.owned where !kind.accepts(owned.name) {
                guard let misplaced = block[owned.name] else { continue }
                let kindText = owned.isHost ? "; this link is \(kind.description)" : ""
                reader.error("\(owned.name) applies to \(owned.owners)\(kindText)", at: misplaced, join(field, owned.name))
            }
        }
        guard let program, let target, reader.diagnostics.count == before else { return nil }
        var spec = LinkSpec(program: program, target: target)
        spec.locations = locations
        return spec
    }

    /// Which family `block` declares, by its probe field, `attachType` or `iter`; nil (after an error)
    /// when that cannot be told.
    private func kind(_ block: Fields, node: YAMLNode, _ field: String) -> LinkKind? {
        let probes = Self.probeFields.filter { block[$0] != nil }
        if probes.count > 1, let second = probes.dropFirst().first, let node = block[second] {
            reader.error("a link has one of \(Self.probeFields.joined(separator: ", ")), not \(probes.joined(separator: " and "))",
                         at: node, join(field, second))
        }
        if let probe = probes.first { return .probe(probe) }
        switch (block["attachType"], block["iter"]) {
        case (let attachNode?, nil):
            guard let attach = attachType(attachNode, join(field, "attachType")) else { return nil }
            if attach.isCgroup || attach == .xdp || AttachType.multiProgramHooks.contains(attach) || NetnsLink.attachTypes.contains(attach)
                || AttachType.sockmap.contains(attach) || AttachType.tracing.contains(attach) {
                return .attach(attach)
            }
            if attach == .perfEvent {
                reader.error("a perf_event link needs one of tracepoint, uprobe or kprobe", at: attachNode, join(field, "attachType"))
            } else {
                reader.error("attach type \(attach.name) is not supported for links; supported: xdp, tcx_ingress, tcx_egress, netkit_primary, netkit_peer, sk_lookup, flow_dissector, \(AttachType.sockmap.map(\.name).joined(separator: ", ")), netfilter, \(AttachType.tracing.map(\.name).joined(separator: ", ")), perf_event, trace_uprobe_multi and the cgroup attach types (\(AttachType.cgroupNames.joined(separator: ", ")))",
                             at: attachNode, join(field, "attachType"))
            }
            return nil
        case (nil, let iterNode?):
            return reader.string(iterNode, join(field, "iter")).map { .iterator($0, iterNode) }
        case (.some, .some):
            reader.error("a link has either attachType (a cgroup, XDP or network namespace link) or iter (an iterator link), not both", at: node, field)
            return nil
        case (nil, nil):
            reader.error("a link needs attachType (e.g. cgroup_inet_egress, xdp), iter (e.g. cgroup, task) or one of \(Self.probeFields.joined(separator: ", "))",
                         at: node, field)
            return nil
        }
    }

    /// The family's decoding of `block`.
    private func decode(_ kind: LinkKind, _ block: Fields, node: YAMLNode, _ field: String) -> LinkTarget? {
        switch kind {
        case .probe(let probe):
            guard let probeNode = block[probe] else { return nil }
            switch probe {
            case "tracepoint": return tracepointLink(probeNode, join(field, probe))
            case "rawTracepoint": return rawTracepointLink(probeNode, join(field, probe))
            case "uprobe": return uprobeLink(probeNode, join(field, probe))
            case "netfilter": return netfilterLink(probeNode, join(field, probe))
            default: return kprobeLink(probeNode, join(field, probe))
            }
        case .attach(let attach):
            if attach.isCgroup { return cgroupLink(attach, block, node: node, field) }
            if attach == .xdp || AttachType.multiProgramHooks.contains(attach) { return netDeviceLink(attach, block, node: node, field) }
            if NetnsLink.attachTypes.contains(attach) { return netnsLink(attach, block, node: node, field) }
            if AttachType.sockmap.contains(attach) { return sockmapLink(attach, block, node: node, field) }
            return .tracing(.attach(attach))
        case .iterator(_, let iterNode):
            return iteratorLink(iterNode, block, node: node, field)
        }
    }

    /// A link whose only field beside its program is what it is attached to (`name`), decoded by `decode`.
    func hosted<T>(_ name: String, _ block: Fields, node: YAMLNode, _ field: String, _ decode: (YAMLNode, String) -> T?,
                   _ make: (T) -> LinkTarget) -> LinkTarget? {
        let before = reader.diagnostics.count
        guard let value = host(name, block, node: node, field, required: true, decode), reader.diagnostics.count == before else { return nil }
        return make(value)
    }

    /// The link's `name` field (what it is attached to) decoded by `decode`; "missing required field"
    /// when it is not there and `required` (nothing else was wrong before it).
    func host<T>(_ name: String, _ block: Fields, node: YAMLNode, _ field: String, required: Bool,
                 _ decode: (YAMLNode, String) -> T?) -> T? {
        guard let value = block[name] else {
            if required { reader.error("missing required field '\(name)'", at: node, join(field, name)) }
            return nil
        }
        return decode(value, join(field, name))
    }
}

/// What a `link:` block declares itself to be, before its family decodes it.
private enum LinkKind {
    /// By one of `PinSpecDecoder.probeFields`.
    case probe(String)
    /// By `attachType`: a cgroup, net device, netns, sockmap or tracing link.
    case attach(AttachType)
    /// By `iter`.
    case iterator(String, YAMLNode)

    /// Whether a link of this kind takes field `name` (of `LinkField.owned`).
    func accepts(_ name: String) -> Bool {
        switch (self, name) {
        case (.attach(let attach), "cgroup"): attach.isCgroup
        case (.attach(let attach), "interface"): attach == .xdp || AttachType.multiProgramHooks.contains(attach)
        case (.attach(let attach), "xdpMode"): attach == .xdp
        case (.attach(let attach), "position"), (.attach(let attach), "before"), (.attach(let attach), "after"):
            AttachType.multiProgramHooks.contains(attach)
        case (.attach(let attach), "netns"): NetnsLink.attachTypes.contains(attach)
        case (.attach(let attach), "map"): AttachType.sockmap.contains(attach)
        case (.iterator(let target, _), "cgroup"), (.iterator(let target, _), "order"): target == "cgroup"
        case (.iterator(let target, _), "map"): IteratorTargets.overMaps.contains(target)
        // pid and tid of a target that takes none are refused by the iterator's own decoding.
        case (.iterator(let target, _), "pid"), (.iterator(let target, _), "tid"): IteratorTargets.plain.contains(target)
        default: false
        }
    }

    /// "this link is …".
    var description: String {
        switch self {
        case .probe(let probe): "a \(probe) link"
        case .attach(let attach):
            if attach.isCgroup { "on a cgroup" }
            else if attach == .xdp || AttachType.multiProgramHooks.contains(attach) { "on an interface" }
            else if NetnsLink.attachTypes.contains(attach) { "on a network namespace" }
            else if AttachType.sockmap.contains(attach) { "on a map" }
            else { "a \(attach.name) link" }
        case .iterator(let target, _):
            if target == "cgroup" { "on a cgroup" } else if IteratorTargets.overMaps.contains(target) { "on a map" } else { "an iterator over \(target)" }
        }
    }
}

/// A `link:` field only some families take, and which.
private struct LinkField {
    var name: String
    /// The links that take it, as an error names them.
    var owners: String
    /// What the link is attached to: its error says what this link is instead.
    var isHost = false

    static let owned: [LinkField] = [
        LinkField(name: "cgroup", owners: "cgroup links and iterators", isHost: true),
        LinkField(name: "interface", owners: "XDP, tcx and netkit links (attachType: xdp, tcx_ingress, tcx_egress, netkit_primary, netkit_peer)", isHost: true),
        LinkField(name: "netns", owners: "network namespace links (attachType: sk_lookup, flow_dissector)", isHost: true),
        LinkField(name: "map", owners: "map iterators (iter: bpf_map_elem, sockmap) and sockmap links (attachType: sk_msg_verdict, sk_skb_stream_parser, sk_skb_stream_verdict, sk_skb_verdict)", isHost: true),
        LinkField(name: "xdpMode", owners: "XDP links (attachType: xdp)"),
        LinkField(name: "position", owners: "tcx and netkit links (attachType: tcx_ingress, tcx_egress, netkit_primary, netkit_peer)"),
        LinkField(name: "before", owners: "tcx and netkit links (attachType: tcx_ingress, tcx_egress, netkit_primary, netkit_peer)"),
        LinkField(name: "after", owners: "tcx and netkit links (attachType: tcx_ingress, tcx_egress, netkit_primary, netkit_peer)"),
        LinkField(name: "order", owners: "cgroup iterators (iter: cgroup)"),
        LinkField(name: "pid", owners: "task iterators (iter: \(TaskScope.targets.joined(separator: ", ")))"),
        LinkField(name: "tid", owners: "task iterators (iter: \(TaskScope.targets.joined(separator: ", ")))"),
    ]
}
