import BPFTreeCore
import CBPFTreeShim

/// Tracepoint, kprobe and uprobe links: made on a perf event bpftree opens (`ProbeTargets`); the
/// tracepoint's id and the uprobe's file offset are found before planning, the kernel function checked
/// to exist.
extension ProbeLink: KernelLink {
    func resolve(_ spec: LinkSpec, cgroups: inout [String: Result<UInt64, KernelError>]) -> Result<LinkResolution, LinkTargetProblem> {
        switch self {
        case .tracepoint(let category, let name):
            return ProbeTargets.tracepointID(category, name).map { .tracepoint(id: $0) }.on("tracepoint", "\(category)/\(name)")
        case .uprobe(let probe):
            return ProbeTargets.uprobe(probe).map { .uprobe(file: $0.file, offset: $0.offset, identity: $0.identity) }
                .on("uprobe", probe.location)
        case .kprobe(let probe):
            return ProbeTargets.kprobe(probe).map { .none }.on("kprobe", probe.function)
        }
    }

    func linkOp(_ link: ResolvedLink, program: Descriptor, at path: TreePath, _ context: LinkContext) throws(KernelError) -> LinkOp {
        let event = try context.kernel.openPerfEvent(link, for: path)
        return LinkOp(program: program, target: event, attachType: AttachType.perfEvent.kernelValue, info: [])
    }

    /// Before Linux 6.6 the kernel reports nothing of a perf event link's event (type 0): only its program
    /// is compared then, as for a link type bpftree does not read.
    static func live(_ info: bt_link_info) -> LiveLinkDetails {
        guard info.perf_event_type != 0 else { return .none }
        return .probe(Live(kind: info.perf_event_type, name: cString(info.probe_name), offset: info.probe_offset))
    }
}
