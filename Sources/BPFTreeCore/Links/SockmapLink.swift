import BPFTreeYAML

/// An `sk_msg` or `sk_skb` program on a declared sockmap or sockhash (`BPF_LINK_TYPE_SOCKMAP`, Linux 6.10).
public struct SockmapLink: Hashable, Sendable, LinkFamily {
    /// One of `AttachType.sockmap`.
    public var attach: AttachType
    /// The declared map (anchor-relative).
    public var map: TreePath

    public init(attach: AttachType, map: TreePath) {
        (self.attach, self.map) = (attach, map)
    }

    /// What `bpf_link_info` reports of a sockmap link.
    public struct Live: Hashable, Sendable {
        public var attach: UInt32
        public var mapID: UInt32

        public init(attach: UInt32, mapID: UInt32) {
            (self.attach, self.mapID) = (attach, mapID)
        }
    }

    var kernelType: UInt32 { 14 }
    var kernelSince: String? { "Linux 6.10" }
    var attachType: AttachType { attach }
    var exclusive: Bool { true }
    var updatable: Bool { true }

    func summary(_ program: TreePath, _ resolved: LinkResolution) -> String { "\(program) on \(map) at \(attach.name)" }
    func fingerprintText(_ resolved: LinkResolution) -> String { "sockmap \(attach.kernelValue) \(map.text)" }

    func differences(from info: LiveLinkInfo, _ resolved: LinkResolution) -> [FieldDifference] {
        guard case .sockmap(let live) = info.details else { return [] }
        return attachDifference(attach, live.attach).map { [$0] } ?? []
    }

    func problems(of spec: LinkSpec, image: ProgramImage, at path: TreePath, in tree: DesiredTree) -> [LinkProblem] {
        var problems = Self.mapProblem(map, in: tree, sockets: true).map { [LinkProblem(field: "map", message: $0)] } ?? []
        let wanted: ProgramType? = attach.name == "sk_msg_verdict" ? ProgramType(name: "sk_msg") : ProgramType(name: "sk_skb")
        problems += programProblem(spec, ProgramType(kernelValue: image.type) == wanted ? nil
            : "\(named(image)); a \(attach.name) link needs a\(wanted.map { " \($0.name)" } ?? "n sk_skb") program")
        return problems
    }

    /// Why a link cannot be on map `path`: it must be a declared map, and a sockmap or sockhash when it
    /// holds `sockets`.
    static func mapProblem(_ path: TreePath, in tree: DesiredTree, sockets: Bool) -> String? {
        guard case .map(let map)? = tree[path]?.kind else { return "'\(path)' is not declared as a map" }
        guard sockets, map.type != .sockmap, map.type != .sockhash else { return nil }
        return "'\(path)' is a \(map.type.rawValue) map; this link needs a sockmap or sockhash"
    }
}

extension PinSpecDecoder {
    /// A sockmap link (`attachType:` one of `AttachType.sockmap`).
    func sockmapLink(_ attach: AttachType, _ block: Fields, node: YAMLNode, _ field: String) -> LinkTarget? {
        hosted("map", block, node: node, field, { reference($0, $1, placeholders: ["{cgroup.id}", "{cgroup.name}"]) }) {
            .sockmap(SockmapLink(attach: attach, map: $0))
        }
    }
}
