import BPFTreeCore

/// Sockmap links: the declared map, opened where the run stages it, is the link's target.
extension SockmapLink: KernelLink {
    func linkOp(_ spec: LinkSpec, program: Descriptor, at path: TreePath, _ context: LinkContext) throws(KernelError) -> LinkOp {
        LinkOp(program: program, target: try context.kernel.openPin(context.location(map)), attachType: attach.kernelValue, info: [])
    }
}
