import BPFTreeCore
import CBPFTreeShim
import Glibc
import SystemPackage

/// A BPF token (Linux 6.9) made from the anchor's delegated bpffs: in a user namespace without CAP_BPF in
/// the initial one, it lets this process create the map types, load the program types and use the
/// attach types that the bpffs mount delegates. Once `activate`d, every map creation, program load and
/// BTF load of the process carries it, libbpf's and the batch program's own map creations included.
public final class BPFToken: Sendable {
    public let descriptor: Descriptor
    /// What the bpffs delegates.
    public let delegation: BPFDelegation

    private init(descriptor: Descriptor, delegation: BPFDelegation) {
        self.descriptor = descriptor
        self.delegation = delegation
    }

    deinit {
        if bt_token_active() == descriptor.rawValue { bt_token_activate(-1) }
    }

    /// Makes every following `BPF_MAP_CREATE`, `BPF_PROG_LOAD` and `BPF_BTF_LOAD` of this process carry the
    /// token, until another is activated or this one goes away.
    public func activate() { bt_token_activate(descriptor.rawValue) }

    /// The `delegate_*` options of the bpffs mount holding the anchor (from /proc/self/mountinfo), or nil
    /// when this process cannot see that mount: an anchor descriptor from another mount namespace (what a
    /// container runtime hands over). Then only `BPF_TOKEN_CREATE` itself can tell.
    public static func delegation(of anchor: Anchor) throws(KernelError) -> BPFDelegation? {
        var mountID: UInt64 = 0
        let result = bt_mount_id(anchor.fd.rawValue, &mountID)
        guard result == 0 else { throw KernelError(.step(.statxAnchor), path: anchor.displayName, negativeErrno: result) }
        return try MountInfo.mounts().first(where: { $0.mountID == mountID }).map { BPFDelegation(superOptions: $0.superOptions) }
    }

    /// `BPF_TOKEN_CREATE` on the root of the anchor's bpffs (found by walking up with `..` while on the
    /// anchor's mount); `delegation`: the mount's, as `delegation(of:)` read it (`.unknown` when it could
    /// not: the kernel's answer decides).
    public static func create(for anchor: Anchor, delegation: BPFDelegation) throws(KernelError) -> BPFToken {
        guard delegation.isDelegated else {
            throw KernelError(.step(.createToken), path: anchor.displayName,
                              detail: "this bpffs delegates nothing: its mount has no delegate_cmds, delegate_maps, delegate_progs or delegate_attachs option")
        }
        let root = bt_mount_root_open(anchor.fd.rawValue)
        guard root >= 0 else { throw KernelError(.step(.openBPFFSRoot), path: anchor.displayName, negativeErrno: root) }
        let rootDescriptor = Descriptor(owning: root)
        let token = bt_token_create(rootDescriptor.rawValue)
        guard token >= 0 else {
            let detail: String? = switch -token {
            case EINVAL: "the anchor's mount is not the root of its bpffs (a bind mount of a subdirectory?); a token needs the bpffs itself"
            case EPERM: "the bpffs belongs to another user namespace than this process's, or this process lacks CAP_BPF in it"
            case EOPNOTSUPP: "tokens are for user namespaces other than the initial one"
            default: nil
            }
            throw KernelError(.bpf(.tokenCreate), path: anchor.displayName, negativeErrno: token, detail: detail)
        }
        return BPFToken(descriptor: Descriptor(owning: token), delegation: delegation)
    }
}

extension MountInfo {
    /// This process's mounts (/proc/self/mountinfo); empty when it cannot be read.
    /// The mounts of /proc/self/mountinfo; a file that cannot be read (e.g. `EMFILE`) is an error, never
    /// "no such mount".
    public static func mounts() throws(KernelError) -> [MountInfo] {
        switch FileBytes.read("/proc/self/mountinfo") {
        case .success(let bytes): return parse(String(decoding: bytes, as: UTF8.self))
        case .failure(let error):
            throw KernelError(.call(.read), path: "/proc/self/mountinfo", errno: Errno(rawValue: error.errno),
                              detail: error.errno == EMFILE ? "this process has as many files open as it may (RLIMIT_NOFILE)" : nil)
        }
    }
}
