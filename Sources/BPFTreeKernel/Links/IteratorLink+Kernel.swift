import BPFTreeCore
import CBPFTreeShim

/// Iterator links: `bpf_iter_link_info` names the cgroup (by id), the map (by fd) or the one task.
extension IteratorLink: KernelLink {
    func resolve(_ spec: LinkSpec, cgroups: inout [String: Result<UInt64, KernelError>]) -> Result<LinkResolution, LinkTargetProblem> {
        switch self {
        case .cgroup(let cgroup, _):
            return CgroupLink.resolve(cgroup, cgroups: &cgroups)
        case .plain(_, let scope?):
            return ProbeTargets.task(scope).map { .none }.on(scope.field, "\(scope.tid != 0 ? scope.tid : scope.pid)")
        case .plain, .map:
            return .success(.none)
        }
    }

    func linkOp(_ link: ResolvedLink, program: Descriptor, at path: TreePath, _ context: LinkContext) throws(KernelError) -> LinkOp {
        var info: [UInt8] = []
        switch self {
        case .cgroup(_, let order):
            // union bpf_iter_link_info, cgroup: order (u32), cgroup_fd (u32), cgroup_id (u64).
            guard let id = link.resolution.cgroupID else { throw context.unresolved("cgroup", path) }
            withUnsafeBytes(of: order.kernelValue.littleEndian) { info += $0 }
            withUnsafeBytes(of: UInt32(0)) { info += $0 }
            withUnsafeBytes(of: id.littleEndian) { info += $0 }
            return LinkOp(program: program, target: nil, attachType: AttachType.traceIter.kernelValue, info: info)
        case .map(_, let path):
            let map = try context.kernel.openPin(context.location(path))
            // union bpf_iter_link_info, map: map_fd (u32), then the rest of the union.
            withUnsafeBytes(of: UInt32(bitPattern: map.rawValue).littleEndian) { info += $0 }
            info += [UInt8](repeating: 0, count: 12)
            var op = LinkOp(program: program, target: nil, attachType: AttachType.traceIter.kernelValue, info: info)
            op.keepAlive = [map]
            return op
        case .plain(_, let scope):
            // union bpf_iter_link_info, task: tid, pid, pid_fd (u32 each, padded to the union's 16 bytes); empty for every task.
            if let scope {
                for word in [scope.tid, scope.pid, 0, 0] { withUnsafeBytes(of: word.littleEndian) { info += $0 } }
            }
            return LinkOp(program: program, target: nil, attachType: AttachType.traceIter.kernelValue, info: info)
        }
    }

    static func live(_ info: bt_link_info) -> LiveLinkDetails {
        .iterator(Live(target: cString(info.iter_target), order: info.iter_order, cgroupID: info.cgroup_id, mapID: info.map_id,
                       taskTID: info.task_tid, taskPID: info.task_pid))
    }
}
