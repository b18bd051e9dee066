import BPFTreeCore
import CBPFTreeShim

/// Cgroup links: the cgroup is found by its path and known by its id (opened once per pass), and opened
/// again by the executor, checked to be that id.
extension CgroupLink: KernelLink {
    func resolve(_ spec: LinkSpec, cgroups: inout [String: Result<UInt64, KernelError>]) -> Result<LinkResolution, LinkTargetProblem> {
        Self.resolve(cgroup, cgroups: &cgroups)
    }

    /// The id of `cgroup` (a cgroup link's or cgroup iterator's), opened once per pass.
    static func resolve(_ cgroup: String, cgroups: inout [String: Result<UInt64, KernelError>]) -> Result<LinkResolution, LinkTargetProblem> {
        let found = cgroups[cgroup] ?? PinResolver.cgroupID(cgroup)
        cgroups[cgroup] = found
        return found.map { .cgroup(id: $0) }.on("cgroup", cgroup)
    }

    func linkOp(_ link: ResolvedLink, program: Descriptor, at path: TreePath, _ context: LinkContext) throws(KernelError) -> LinkOp {
        guard let id = link.resolution.cgroupID else { throw context.unresolved("cgroup", path) }
        let cgroup = try context.kernel.openCgroup(self.cgroup, id: id, for: path)
        return LinkOp(program: program, target: cgroup, attachType: attach.kernelValue, info: [])
    }

    static func live(_ info: bt_link_info) -> LiveLinkDetails {
        .cgroup(Live(attach: info.attach_type, cgroupID: info.cgroup_id))
    }
}
