import BPFTreeCore
import CBPFTreeShim

/// What the kernel layer does for one family of links: find what its target is before planning, and
/// give the `BPF_LINK_CREATE` that makes it. One file per family beside this one.
protocol KernelLink {
    /// What the kernel says the target of `spec` is (`.none`: nothing to remember, but it was checked to
    /// exist); `cgroups`: the cgroups already opened in this pass, by path.
    func resolve(_ spec: LinkSpec, cgroups: inout [String: Result<UInt64, KernelError>]) -> Result<LinkResolution, LinkTargetProblem>
    /// The `BPF_LINK_CREATE` of `spec` for `program`, its target checked to be the one planned.
    func linkOp(_ link: ResolvedLink, program: Descriptor, at path: TreePath, _ context: LinkContext) throws(KernelError) -> LinkOp
}

extension KernelLink {
    func resolve(_ spec: LinkSpec, cgroups: inout [String: Result<UInt64, KernelError>]) -> Result<LinkResolution, LinkTargetProblem> {
        .success(.none)
    }
}

/// A link target the kernel refuses before planning: the `link:` field and its value, and why.
struct LinkTargetProblem: Error {
    var field: String
    var value: String
    var error: KernelError
}

/// What a family's `linkOp` makes its calls through: the executor's kernel (a test's fake stands in), and
/// where a declared path is while the run stages it.
struct LinkContext {
    var kernel: any KernelOperations
    var location: (TreePath) -> TreePath

    /// The error of a target that was not resolved before planning.
    func unresolved(_ what: String, _ path: TreePath) -> KernelError {
        KernelError(.step(.createLink), path: path.description, detail: "the \(what) was not resolved")
    }
}

/// Decodes `bpf_link_info` by the link's kernel type, in the family's file.
enum LiveLinks {
    /// Each `BPF_LINK_TYPE_*` bpftree declares links of, and the family that reads its info.
    private static let families: [UInt32: @Sendable (bt_link_info) -> LiveLinkDetails] = [
        1: TracingLink.live, 2: TracingLink.live, 3: CgroupLink.live, 4: IteratorLink.live, 5: NetnsLink.live,
        6: NetDeviceLink.live, 7: ProbeLink.live, 8: MultiProbeLink.live, 10: NetfilterHook.live, 11: NetDeviceLink.live,
        12: MultiProbeLink.live, 13: NetDeviceLink.live, 14: SockmapLink.live,
    ]

    static func info(_ info: bt_link_info) -> LiveLinkInfo {
        var live = LiveLinkInfo(id: info.id, type: info.type, programID: info.prog_id, details: families[info.type]?(info) ?? .none)
        live.state = state(info, live.details)
        return live
    }

    /// FNV-1a, eight bytes a step, of everything read of the link: `bt_link_info` as filled (zeroed
    /// first, so its padding is 0) and, for a tcx or netkit link, what is on its hook.
    private static func state(_ info: bt_link_info, _ details: LiveLinkDetails) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: UnsafeRawBufferPointer) {
            var offset = 0
            while offset + 8 <= bytes.count {
                hash ^= bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                hash = hash &* 0x100_0000_01b3
                offset += 8
            }
            for byte in bytes[offset...] {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
        }
        withUnsafeBytes(of: info) { mix($0) }
        if case .netDevice(let device) = details {
            device.hookPrograms.withUnsafeBytes { mix($0) }
            device.hookLinks.withUnsafeBytes { mix($0) }
        }
        return hash
    }
}

extension LinkTarget {
    /// The family's kernel-layer code: every family's Core type conforms to `KernelLink` in this folder
    /// (`KernelLinkTests` checks each).
    var kernel: any KernelLink {
        (familyValue as? any KernelLink) ?? MissingKernelLink()
    }
}

/// A family without kernel-layer code: refused with what is missing, never attached.
private struct MissingKernelLink: KernelLink {
    func resolve(_ spec: LinkSpec, cgroups: inout [String: Result<UInt64, KernelError>]) -> Result<LinkResolution, LinkTargetProblem> {
        .failure(LinkTargetProblem(field: "program", value: spec.program.description,
                                   error: KernelError(.step(.resolveLink), path: spec.program.description, detail: "bpftree has no kernel code for \(ResolvedLink(spec).summary)")))
    }

    func linkOp(_ link: ResolvedLink, program: Descriptor, at path: TreePath, _ context: LinkContext) throws(KernelError) -> LinkOp {
        throw KernelError(.step(.createLink), path: path.description, detail: "bpftree has no kernel code for \(link.summary)")
    }
}

extension Result where Failure == KernelError {
    /// This result, a failure named as the `link:` field `field` with value `value`.
    func on(_ field: String, _ value: String) -> Result<Success, LinkTargetProblem> {
        mapError { LinkTargetProblem(field: field, value: value, error: $0) }
    }
}
