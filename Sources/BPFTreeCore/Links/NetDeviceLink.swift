import BPFTreeYAML

/// A program on a network interface: XDP (`BPF_LINK_TYPE_XDP`), or tc through tcx (`BPF_LINK_TYPE_TCX`,
/// Linux 6.6) or netkit (`BPF_LINK_TYPE_NETKIT`, 6.7), which share the multi-program hooks' layout.
public struct NetDeviceLink: Hashable, Sendable, LinkFamily {
    public enum Hook: Hashable, Sendable {
        /// An XDP program in `mode` (nil: the kernel's choice, native where the driver has it).
        case xdp(XDPMode?)
        /// A tcx or netkit hook (`AttachType.multiProgramHooks`), placed among the programs already there
        /// (nil: appended, the kernel's default).
        case tcx(AttachType, TCXPosition?)
    }

    /// By name, in bpftree's network namespace.
    public var interface: String
    public var hook: Hook

    public init(interface: String, hook: Hook) {
        (self.interface, self.hook) = (interface, hook)
    }

    /// What `bpf_link_info` reports of an XDP, tcx or netkit link, and (tcx, netkit) where it stands on
    /// its hook (`BPF_PROG_QUERY`).
    public struct Live: Hashable, Sendable {
        /// tcx and netkit: the hook; 0 for XDP.
        public var attach: UInt32
        /// 0 once detached, or once the interface is gone.
        public var interfaceIndex: UInt32
        /// The programs on the hook and their links' ids (0: a program attached without one), first to
        /// last; empty when not read.
        public var hookPrograms: [UInt32] = []
        public var hookLinks: [UInt32] = []

        public init(attach: UInt32 = 0, interfaceIndex: UInt32, hookPrograms: [UInt32] = [], hookLinks: [UInt32] = []) {
            (self.attach, self.interfaceIndex, self.hookPrograms, self.hookLinks) = (attach, interfaceIndex, hookPrograms, hookLinks)
        }
    }

    var kernelType: UInt32 {
        switch hook {
        case .xdp: 6
        case .tcx(let attach, _): attach.isNetkit ? 13 : 11
        }
    }

    var kernelSince: String? {
        switch hook {
        case .xdp: nil
        case .tcx(let attach, _): attach.isNetkit ? "Linux 6.7" : "Linux 6.6"
        }
    }

    var attachType: AttachType {
        switch hook {
        case .xdp: .xdp
        case .tcx(let attach, _): attach
        }
    }

    var exclusive: Bool { true }
    var updatable: Bool { true }

    func summary(_ program: TreePath, _ resolved: LinkResolution) -> String {
        let index = resolved.interfaceIndex.map { " (index \($0))" } ?? ""
        switch hook {
        case .xdp(let mode):
            return "XDP \(program) on interface \(interface)\(index)\(mode.map { ", \($0.rawValue) mode" } ?? "")"
        case .tcx(let attach, let position):
            return "\(attach.isNetkit ? "netkit" : "tcx") \(program) on interface \(interface)\(index) at \(attach.name)\(position.map { ", \($0)" } ?? "")"
        }
    }

    func unobserved(_ resolved: LinkResolution) -> (field: String, value: String)? {
        switch hook {
        case .xdp(let mode): ("xdpMode", mode?.rawValue ?? "none (the kernel's choice)")
        case .tcx(_, let position):
            switch position {
            case .before?: ("before", position?.description ?? "")
            case .after?: ("after", position?.description ?? "")
            case .first?, .last?, nil: ("position", position?.description ?? "none (appended)")
            }
        }
    }

    func fingerprintText(_ resolved: LinkResolution) -> String {
        switch hook {
        case .xdp(let mode): "xdp \(mode?.flags ?? 0) \(resolved.interfaceIndex ?? 0)"
        case .tcx(let attach, let position):
            "tcx \(attach.kernelValue) \(resolved.interfaceIndex ?? 0) \(position.map(String.init(describing:)) ?? "")"
        }
    }

    func differences(from info: LiveLinkInfo, _ resolved: LinkResolution) -> [FieldDifference] {
        guard case .netDevice(let live) = info.details else { return [] }
        // Neither the XDP mode nor the tcx position is in bpf_link_info (see `unobserved`); the interface is.
        if let index = resolved.interfaceIndex, live.interfaceIndex != index {
            return [FieldDifference(field: "interface", declared: "\(interface) (index \(index))",
                                    live: live.interfaceIndex == 0 ? "detached, or its interface removed" : "interface index \(live.interfaceIndex)")]
        }
        if case .tcx(let attach, _) = hook, let difference = attachDifference(attach, live.attach) { return [difference] }
        return []
    }

    /// How a tcx link's place on its hook (`live.tcxLinks`, first to last) differs from its declared
    /// position (where it went when it was made; other programs may come and go around it); `relative`:
    /// the live id of the program or link it is declared next to.
    func positionDifference(from info: LiveLinkInfo, relative: (id: UInt32, isLink: Bool)?) -> FieldDifference? {
        guard case .tcx(_, let position?) = hook, case .netDevice(let live) = info.details,
              let index = live.hookLinks.firstIndex(of: info.id) else { return nil }
        let count = live.hookLinks.count
        let place = "\(index + 1) of \(count) on the hook"
        func neighbour(_ at: Int) -> String {
            guard live.hookLinks.indices.contains(at) else { return "nothing" }
            return live.hookLinks[at] != 0 ? "link id \(live.hookLinks[at])" : "program id \(live.hookPrograms[at])"
        }
        func holds(_ at: Int, _ wanted: (id: UInt32, isLink: Bool)) -> Bool {
            guard live.hookLinks.indices.contains(at) else { return false }
            return wanted.isLink ? live.hookLinks[at] == wanted.id : live.hookPrograms[at] == wanted.id
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

    func problems(of spec: LinkSpec, image: ProgramImage, at path: TreePath, in tree: DesiredTree) -> [LinkProblem] {
        let type = ProgramType(kernelValue: image.type)?.name ?? "type \(image.type)"
        switch hook {
        case .xdp:
            return programProblem(spec, image.type == ProgramType.xdp.kernelValue ? nil : "a \(type) program; an XDP link needs an xdp program")
        case .tcx(let attach, let position):
            var problems = programProblem(spec, image.type == ProgramType.schedCLS.kernelValue ? nil
                : "a \(type) program; a tcx link needs a sched_cls program (section \"tc\" or \"tcx/ingress\")")
            if let position, let relative = position.relative, let problem = relativeProblem(attach, relative, at: path, in: tree) {
                problems.append(LinkProblem(field: position.field, message: problem))
            }
            return problems
        }
    }

    /// Why a tcx link at `path` cannot go next to `relative`: it must be a declared program, or a declared
    /// tcx link on the same interface and hook that does not itself (through others) go next to this one.
    private func relativeProblem(_ attach: AttachType, _ relative: TreePath, at path: TreePath, in tree: DesiredTree) -> String? {
        var seen: Set<TreePath> = [path]
        var next: TreePath? = relative
        while let current = next {
            switch tree[current]?.kind {
            case .program?:
                // The kernel places a link relative to a program only while that program is on the hook
                // (ENOENT, after the links being moved were detached): a declared tcx link must attach it there.
                let attached = tree.entries.contains { entry in
                    guard entry.path != path, case .link(let other) = entry.kind, other.program == current,
                          case .netDevice(let link) = other.target, case .tcx(let otherAttach, _) = link.hook else { return false }
                    return otherAttach == attach && link.interface == interface
                }
                return attached ? nil
                    : "'\(current)' is a declared program that no declared tcx link attaches at \(attach.name) of interface \(interface): a position relative to it cannot be kept; declare its link, or place this one relative to a link or program on the hook"
            case .link(let other)?:
                guard case .netDevice(let link) = other.target, case .tcx(let otherAttach, let otherPosition) = link.hook,
                      otherAttach == attach, link.interface == interface else {
                    return "'\(current)' is not a tcx link on interface \(interface) at \(attach.name)"
                }
                guard seen.insert(current).inserted else {
                    return "'\(relative)' is placed relative to this link in turn: tcx positions must not form a cycle"
                }
                next = otherPosition?.relative
            default:
                return "'\(current)' is not declared as a program or a tcx link"
            }
        }
        return nil
    }
}

extension PinSpecDecoder {
    /// An XDP, tcx or netkit link (`attachType: xdp`, or one of `AttachType.multiProgramHooks`).
    func netDeviceLink(_ attach: AttachType, _ block: Fields, node: YAMLNode, _ field: String) -> LinkTarget? {
        let before = reader.diagnostics.count
        let hook: NetDeviceLink.Hook = attach == .xdp
            ? .xdp(block["xdpMode"].flatMap { reader.choice($0, join(field, "xdpMode"), XDPMode.self) })
            : .tcx(attach, tcxPosition(block, field))
        let interface = host("interface", block, node: node, field, required: reader.diagnostics.count == before, interfaceName)
        guard let interface, reader.diagnostics.count == before else { return nil }
        return .netDevice(NetDeviceLink(interface: interface, hook: hook))
    }

    /// Where a tcx link goes: `position: first|last`, or `before`/`after` a declared program or tcx link;
    /// at most one of the three.
    private func tcxPosition(_ block: Fields, _ field: String) -> TCXPosition? {
        let given = ["position", "before", "after"].compactMap { name in block[name].map { (name, $0) } }
        if given.count > 1, let second = given.dropFirst().first {
            reader.error("a tcx link has at most one of position, before and after", at: second.1, join(field, second.0))
            return nil
        }
        guard let (name, node) = given.first else { return nil }
        if name == "position" {
            return reader.choice(node, join(field, name), TCXEnd.self).map { $0 == .first ? .first : .last }
        }
        guard let path = reference(node, join(field, name), placeholders: ["{cgroup.id}", "{cgroup.name}"]) else { return nil }
        return name == "before" ? .before(path) : .after(path)
    }

    /// A network interface name as the kernel takes it (`dev_valid_name`): 1–15 bytes, not `.` or `..`,
    /// without `/`, `:` or white space.
    private func interfaceName(_ node: YAMLNode, _ field: String) -> String? {
        guard let text = reader.string(node, field) else { return nil }
        let bytes = Array(text.utf8)
        if bytes.isEmpty || bytes.count > 15 || text == "." || text == ".."
            || bytes.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ":") || $0 <= 32 || $0 == 127 }) {
            reader.error("'\(text)' is not a network interface name (1 to 15 bytes, no '/', ':' or white space)", at: node, field)
            return nil
        }
        return text
    }
}

/// `position:` of a tcx link.
private enum TCXEnd: String, CaseIterable {
    case first, last
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

    /// The `link:` field that declares it.
    public var field: String {
        switch self {
        case .first, .last: "position"
        case .before: "before"
        case .after: "after"
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
