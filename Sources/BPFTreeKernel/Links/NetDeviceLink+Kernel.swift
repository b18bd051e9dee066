import BPFTreeCore

/// XDP, tcx and netkit links: the interface is known by its index, checked again right before the link
/// is made; a tcx position relative to a declared program or link names it by id.
extension NetDeviceLink: KernelLink {
    func resolve(_ spec: LinkSpec, cgroups: inout [String: Result<UInt64, KernelError>]) -> Result<LinkResolution, LinkTargetProblem> {
        PinResolver.interfaceIndex(interface).map { .interface(index: $0) }.on("interface", interface)
    }

    func linkOp(_ spec: LinkSpec, program: Descriptor, at path: TreePath, _ context: LinkContext) throws(KernelError) -> LinkOp {
        guard let index = spec.resolved.interfaceIndex else { throw context.unresolved("interface", path) }
        try context.kernel.checkInterface(interface, index: index, for: path)
        switch hook {
        case .xdp(let mode):
            return LinkOp(program: program, target: nil, interfaceIndex: index, attachType: spec.attachType.kernelValue,
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
}
