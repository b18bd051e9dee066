import BPFTreeCore
import CBPFTreeShim

/// Tracing, LSM and raw tracepoint links: the program names its target (a raw tracepoint by name,
/// checked to exist before planning).
extension TracingLink: KernelLink {
    func resolve(_ spec: LinkSpec, cgroups: inout [String: Result<UInt64, KernelError>]) -> Result<LinkResolution, LinkTargetProblem> {
        guard case .rawTracepoint(let name) = self else { return .success(.none) }
        return ProbeTargets.rawTracepoint(name).map { .none }.on("rawTracepoint", name)
    }

    func linkOp(_ link: ResolvedLink, program: Descriptor, at path: TreePath, _ context: LinkContext) throws(KernelError) -> LinkOp {
        var op = LinkOp(program: program, target: nil, attachType: link.spec.attachType.kernelValue, info: [])
        if case .rawTracepoint(let name) = self { op.rawTracepoint = name }
        return op
    }

    /// Tracing links report their attach type, raw tracepoint links (tp_btf too) their tracepoint.
    static func live(_ info: bt_link_info) -> LiveLinkDetails {
        .tracing(Live(attach: info.type == 1 ? 0 : info.attach_type, name: info.type == 1 ? cString(info.probe_name) : ""))
    }
}
