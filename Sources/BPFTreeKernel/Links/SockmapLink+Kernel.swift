import BPFTreeCore
import CBPFTreeShim

/// Sockmap links: the declared map, opened where the run stages it, is the link's target.
extension SockmapLink: KernelLink {
    func linkOp(_ link: ResolvedLink, program: Descriptor, at path: TreePath, _ context: LinkContext) throws(KernelError) -> LinkOp {
        LinkOp(program: program, target: try context.kernel.openPin(context.location(map)), attachType: attach.kernelValue, info: [])
    }

    static func live(_ info: bt_link_info) -> LiveLinkDetails {
        .sockmap(Live(attach: info.attach_type, mapID: info.map_id))
    }
}
