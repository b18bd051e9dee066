import BPFTreeCore

/// Tracing, LSM and raw tracepoint links: the program names its target (a raw tracepoint by name,
/// checked to exist before planning).
extension TracingLink: KernelLink {
    func resolve(_ spec: LinkSpec, cgroups: inout [String: Result<UInt64, KernelError>]) -> Result<LinkResolution, LinkTargetProblem> {
        guard case .rawTracepoint(let name) = self else { return .success(.none) }
        return ProbeTargets.rawTracepoint(name).map { .none }.on("rawTracepoint", name)
    }

    func linkOp(_ spec: LinkSpec, program: Descriptor, at path: TreePath, _ context: LinkContext) throws(KernelError) -> LinkOp {
        var op = LinkOp(program: program, target: nil, attachType: spec.attachType.kernelValue, info: [])
        if case .rawTracepoint(let name) = self { op.rawTracepoint = name }
        return op
    }
}
