import BPFTreeYAML

/// A `link:` entry: a declared program attached through a BPF link, and the link pinned. What it attaches
/// to is its family's (`LinkTarget`), exactly as declared; what the kernel layer found that target to be
/// before planning is kept apart (`ResolvedTargets`, `ResolvedLink`).
public struct LinkSpec: Hashable, Sendable {
    /// The declared program (anchor-relative).
    public var program: TreePath
    public var target: LinkTarget
    /// Where its fields were written (`program`, `cgroup`, `interface`, `position`, a probe's field…).
    public var locations: [String: SourceLocation] = [:]

    public init(program: TreePath, target: LinkTarget) {
        (self.program, self.target) = (program, target)
    }

    /// `BPF_LINK_TYPE_*`.
    public var kernelType: UInt32 { target.family.kernelType }
    /// The release that brought the link's type, when newer than the oldest kernel bpftree supports.
    public var kernelSince: String? { target.family.kernelSince }
    /// `BPF_LINK_CREATE`'s attach type.
    public var attachType: AttachType { target.family.attachType }
    /// The hook takes one such link per program (tcx) or one in all (XDP, a sockmap's attach type): a
    /// replaced link is detached before its successor is made.
    public var exclusive: Bool { target.family.exclusive }
    /// The kernel moves such a link to another program in place (`BPF_LINK_UPDATE`).
    public var updatable: Bool { target.family.updatable }
    /// The cgroup v2 directory of a cgroup link or iterator: absolute, or relative to the cgroup v2 mount.
    public var cgroup: String? {
        switch target {
        case .cgroup(let link): link.cgroup
        case .iterator(.cgroup(let cgroup, _)): cgroup
        default: nil
        }
    }

    /// The network interface of an XDP, tcx or netkit link, by name, in bpftree's network namespace.
    public var interface: String? { if case .netDevice(let link) = target { link.interface } else { nil } }

    /// The network namespace file of a netns link.
    public var netns: String? { if case .netns(let link) = target { link.namespace } else { nil } }

    /// The declared map of a map iterator or a sockmap link (anchor-relative).
    public var map: TreePath? {
        switch target {
        case .sockmap(let link): link.map
        case .iterator(.map(_, let map)): map
        default: nil
        }
    }

    /// Where a tcx or netkit link goes among the programs on its hook.
    public var position: TCXPosition? {
        if case .netDevice(let link) = target, case .tcx(_, let position?) = link.hook { position } else { nil }
    }

    /// The declared program or tcx link a tcx or netkit link is placed next to.
    public var relative: TreePath? { position?.relative }

    /// This link with its references rewritten (a template's instance): `cgroup`, `map` and `relative`
    /// replace the ones it has, when given.
    public func referencing(cgroup: String?, map: TreePath?, relative: TreePath?) -> LinkSpec {
        var spec = self
        switch target {
        case .cgroup(var link):
            if let cgroup { link.cgroup = cgroup }
            spec.target = .cgroup(link)
        case .iterator(.cgroup(let old, let order)):
            spec.target = .iterator(.cgroup(cgroup ?? old, order))
        case .iterator(.map(let name, let old)):
            spec.target = .iterator(.map(name, map ?? old))
        case .sockmap(var link):
            if let map { link.map = map }
            spec.target = .sockmap(link)
        case .netDevice(var link):
            if let relative, case .tcx(let attach, let position?) = link.hook {
                link.hook = .tcx(attach, position.flags & TCXFlags.before != 0 ? .before(relative) : .after(relative))
                spec.target = .netDevice(link)
            }
        default:
            break
        }
        return spec
    }
}

/// What a link attaches to, by family: each family's declared fields, so that no other family's can be
/// written. One file per family holds its decoding, comparison, fingerprint, capability needs and refusals.
public enum LinkTarget: Hashable, Sendable {
    /// A program on a cgroup (`BPF_LINK_TYPE_CGROUP`).
    case cgroup(CgroupLink)
    /// XDP, tcx and netkit programs on a network interface.
    case netDevice(NetDeviceLink)
    /// A program on a network namespace (`BPF_LINK_TYPE_NETNS`).
    case netns(NetnsLink)
    /// A tracepoint, kprobe or uprobe through a perf event (`BPF_LINK_TYPE_PERF_EVENT`).
    indirect case probe(ProbeLink)
    /// Every matching kernel function or function of a binary in one link (kprobe_multi, uprobe_multi).
    indirect case multiProbe(MultiProbeLink)
    /// fentry, fexit, fmod_ret, LSM and tp_btf programs at their BTF targets, and raw tracepoints.
    indirect case tracing(TracingLink)
    /// An iterator: reading the pin runs the program.
    indirect case iterator(IteratorLink)
    /// A netfilter hook of bpftree's network namespace (`BPF_LINK_TYPE_NETFILTER`).
    case netfilter(NetfilterHook)
    /// An `sk_msg` or `sk_skb` program on a declared sockmap or sockhash (`BPF_LINK_TYPE_SOCKMAP`).
    case sockmap(SockmapLink)

    /// The family's value, for the kernel layer, which extends each family's type with its own code.
    public var familyValue: any Sendable { family }

    /// The family's own code.
    var family: any LinkFamily {
        switch self {
        case .cgroup(let link): link
        case .netDevice(let link): link
        case .netns(let link): link
        case .probe(let link): link
        case .multiProbe(let link): link
        case .tracing(let link): link
        case .iterator(let link): link
        case .netfilter(let link): link
        case .sockmap(let link): link
        }
    }
}

/// What Core knows of one family of links. Defaults: not exclusive, not updatable, nothing unobserved,
/// no capability beyond creating a link, no refusal.
protocol LinkFamily: Hashable, Sendable {
    /// `BPF_LINK_TYPE_*`.
    var kernelType: UInt32 { get }
    /// `BPF_LINK_CREATE`'s attach type.
    var attachType: AttachType { get }
    func summary(_ program: TreePath, _ resolved: LinkResolution) -> String
    var exclusive: Bool { get }
    var updatable: Bool { get }
    func unobserved(_ resolved: LinkResolution) -> (field: String, value: String)?
    /// The family's part of `ResolvedLink.fingerprint`.
    func fingerprintText(_ resolved: LinkResolution) -> String
    /// How a live link of the same kernel type differs, but for its program.
    func differences(from live: LiveLinkInfo, _ resolved: LinkResolution) -> [FieldDifference]
    /// The capability making such a link takes beyond the batch program's, and why.
    var capabilityNeed: (Capability, String)? { get }
    /// The release that brought this link type, for types newer than the oldest kernel bpftree supports
    /// (a kernel whose BTF lacks the type is refused before planning); nil for the older ones.
    var kernelSince: String? { get }
    /// What is wrong with link `spec` at `path` given its program's `image` and the rest of the desired
    /// tree, each with the `link:` field it is about; a program problem reads "'PROGRAM' is a TYPE
    /// program; …".
    func problems(of spec: LinkSpec, image: ProgramImage, at path: TreePath, in tree: DesiredTree) -> [LinkProblem]
}

/// A refusal of a declared link: the `link:` field it is about, and why.
struct LinkProblem {
    var field: String
    var message: String
}

extension LinkFamily {
    var exclusive: Bool { false }
    var updatable: Bool { false }
    func unobserved(_ resolved: LinkResolution) -> (field: String, value: String)? { nil }
    var capabilityNeed: (Capability, String)? { nil }
    var kernelSince: String? { nil }
    func problems(of spec: LinkSpec, image: ProgramImage, at path: TreePath, in tree: DesiredTree) -> [LinkProblem] { [] }

    /// "a TYPE program (section 'S')", as program problems name a program.
    func named(_ image: ProgramImage) -> String {
        "a \(ProgramType(kernelValue: image.type)?.name ?? "type \(image.type)") program (section '\(image.section)')"
    }

    /// A program problem of `spec`: "'PROGRAM' is `problem`".
    func programProblem(_ spec: LinkSpec, _ problem: String?) -> [LinkProblem] {
        problem.map { [LinkProblem(field: "program", message: "'\(spec.program)' is \($0)")] } ?? []
    }

    /// An attach type's difference, named as the manifest names it.
    func attachDifference(_ declared: AttachType, _ live: UInt32) -> FieldDifference? {
        live == declared.kernelValue ? nil
            : FieldDifference(field: "attachType", declared: declared.name, live: AttachType(kernelValue: live)?.name ?? "\(live)")
    }
}
