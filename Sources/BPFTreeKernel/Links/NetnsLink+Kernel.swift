import BPFTreeCore
import CBPFTreeShim

/// Network namespace links: the namespace file is known by its inode, checked again when it is opened.
extension NetnsLink: KernelLink {
    func resolve(_ spec: LinkSpec, cgroups: inout [String: Result<UInt64, KernelError>]) -> Result<LinkResolution, LinkTargetProblem> {
        PinResolver.namespaceInode(namespace).map { .namespace(inode: $0) }.on("netns", namespace)
    }

    func linkOp(_ link: ResolvedLink, program: Descriptor, at path: TreePath, _ context: LinkContext) throws(KernelError) -> LinkOp {
        guard let inode = link.resolution.namespaceInode else { throw context.unresolved("network namespace", path) }
        let opened = try context.kernel.openNamespace(namespace, inode: inode, for: path)
        return LinkOp(program: program, target: opened, attachType: attach.kernelValue, info: [])
    }

    static func live(_ info: bt_link_info) -> LiveLinkDetails {
        .netns(Live(attach: info.attach_type, inode: info.netns_ino))
    }
}
