import BPFTreeCore
import CBPFTreeShim

/// XDP, tcx and netkit links: the interface is known by its index, checked again right before the link
/// is made; a tcx position relative to a declared program or link names it by id.
extension NetDeviceLink: KernelLink {
    func resolve(_ spec: LinkSpec, cgroups: inout [String: Result<UInt64, KernelError>]) -> Result<LinkResolution, LinkTargetProblem> {
        PinResolver.interfaceIndex(interface).map { .interface(index: $0) }.on("interface", interface)
    }

    func linkOp(_ link: ResolvedLink, program: Descriptor, at path: TreePath, _ context: LinkContext) throws(KernelError) -> LinkOp {
        guard let index = link.resolution.interfaceIndex else { throw context.unresolved("interface", path) }
        try context.kernel.checkInterface(interface, index: index, for: path)
        switch hook {
        case .xdp(let mode):
            return LinkOp(program: program, target: nil, interfaceIndex: index, attachType: link.spec.attachType.kernelValue,
                          flags: mode?.flags ?? 0, info: [])
        case .tcx(let attach, let position):
            var flags = position?.flags ?? 0
            var relativeID: UInt32 = 0
            if let relative = position?.relative {
                let object = try context.kernel.openPin(context.location(relative))
                let found = try context.kernel.objectID(object, path: relative)
                relativeID = found.id
                if found.isLink { flags |= TCXFlags.link }
            }
            return LinkOp(program: program, target: nil, interfaceIndex: index, attachType: attach.kernelValue, flags: flags,
                          relativeID: relativeID, info: [])
        }
    }

    /// XDP, tcx and netkit links; a tcx or netkit link's place among the hook's programs (`BPF_PROG_QUERY`),
    /// against which its declared position is checked.
    static func live(_ info: bt_link_info) -> LiveLinkDetails {
        var live = Live(attach: info.type == 6 ? 0 : info.attach_type, interfaceIndex: info.ifindex)
        if info.type != 6, info.ifindex != 0, let hook = try? hook(info.ifindex, info.attach_type, for: "") {
            (live.hookPrograms, live.hookLinks) = hook
        }
        return .netDevice(live)
    }

    /// What is on a tcx or netkit hook, in order (`BPF_PROG_QUERY`, at most 64): each entry's program id
    /// and link id (0 for a program attached without a link). `path`: the link it is read for, in errors.
    static func hook(_ interfaceIndex: UInt32, _ attachType: UInt32, for path: String) throws(KernelError)
        -> (programs: [UInt32], links: [UInt32]) {
        var programs = [UInt32](repeating: 0, count: 64), links = [UInt32](repeating: 0, count: 64)
        var count: UInt32 = 0
        let result = bt_tcx_query(interfaceIndex, attachType, &programs, &links, 64, &count)
        guard result == 0 else { throw KernelError(.bpf(.progQuery), path: path, negativeErrno: result) }
        return (Array(programs.prefix(Int(count))), Array(links.prefix(Int(count))))
    }
}
