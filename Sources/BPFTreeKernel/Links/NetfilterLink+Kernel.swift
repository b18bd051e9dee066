import BPFTreeCore
import CBPFTreeShim

/// Netfilter links: the hook is all in `link_create.netfilter`.
extension NetfilterHook: KernelLink {
    func linkOp(_ link: ResolvedLink, program: Descriptor, at path: TreePath, _ context: LinkContext) throws(KernelError) -> LinkOp {
        var op = LinkOp(program: program, target: nil, attachType: AttachType.netfilter.kernelValue, info: [])
        // link_create.netfilter: pf, hooknum, priority, flags.
        for word in [family.kernelValue, hook.kernelValue, UInt32(bitPattern: priority), flags] {
            withUnsafeBytes(of: word.littleEndian) { op.args += $0 }
        }
        return op
    }

    static func live(_ info: bt_link_info) -> LiveLinkDetails {
        .netfilter(NetfilterHook(kernelFamily: info.nf_family, hook: info.nf_hook, priority: info.nf_priority, flags: info.nf_flags))
    }
}
