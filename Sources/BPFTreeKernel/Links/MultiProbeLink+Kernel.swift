import BPFTreeCore
import CBPFTreeShim

/// kprobe_multi and uprobe_multi links: the matching functions (their file offsets for a binary) are
/// found before planning and given to the link in bpftree's memory.
extension MultiProbeLink: KernelLink {
    func resolve(_ spec: LinkSpec, cgroups: inout [String: Result<UInt64, KernelError>]) -> Result<LinkResolution, LinkTargetProblem> {
        switch self {
        case .uprobe(let probe):
            ProbeTargets.uprobeMulti(probe).map { .uprobeMulti(file: $0.file, offsets: $0.offsets) }.on("uprobe", probe.description)
        case .kprobe(let probe):
            ProbeTargets.kprobeMulti(probe).map { .kprobeMulti(functions: $0) }.on("kprobe", probe.description)
        }
    }

    func linkOp(_ link: ResolvedLink, program: Descriptor, at path: TreePath, _ context: LinkContext) throws(KernelError) -> LinkOp {
        var op = LinkOp(program: program, target: nil, attachType: link.spec.attachType.kernelValue, info: [])
        switch (self, link.resolution) {
        case (.uprobe(let probe), .uprobeMulti(let file, let offsets)):
            op.uprobeMulti = (file, offsets, probe.flags, UInt32(probe.pid ?? 0))
        case (.kprobe(let probe), .kprobeMulti(let functions)):
            op.kprobeMulti = (functions, probe.flags)
        default:
            if case .kprobe = self { throw context.unresolved("kprobe", path) }
            throw context.unresolved("uprobe", path)
        }
        return op
    }

    static func live(_ info: bt_link_info) -> LiveLinkDetails {
        .multiProbe(Live(file: cString(info.probe_name), count: Int(info.probe_count), digest: info.probe_offsets_digest,
                         flags: info.probe_flags, pid: info.probe_pid))
    }
}
