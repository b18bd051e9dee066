import BPFTreeCore
import CBPFTreeShim
import Glibc
import SystemPackage

/// A failed kernel operation: which call, on which anchor-relative path, and the errno.
public struct KernelError: Error, Sendable, Equatable, CustomStringConvertible {
    public var operation: KernelOperation
    /// Anchor-relative path, or the anchor as given on the command line.
    public var path: String
    public var errno: Errno?
    /// Extra explanation (e.g. libbpf's message, or why an anchor is refused).
    public var detail: String?

    public init(_ operation: KernelOperation, path: String, errno: Errno? = nil, detail: String? = nil) {
        self.operation = operation
        self.path = path
        self.errno = errno
        self.detail = detail
    }

    /// From a shim return value (-errno).
    init(_ operation: KernelOperation, path: String, negativeErrno: Int32, detail: String? = nil) {
        self.init(operation, path: path, errno: Errno(rawValue: -negativeErrno), detail: detail)
    }

    /// What to do about an `EPERM` from creating a map or loading a program when this process cannot have the
    /// privilege: it is in a user namespace (no CAP_BPF in the initial one) and holds no BPF token.
    static func privilegeHint(_ negativeErrno: Int32) -> String? {
        guard negativeErrno == -EPERM, bt_token_active() < 0, !Machine.inInitialUserNamespace else { return nil }
        return "this process is in a user namespace, without CAP_BPF in the initial one, and holds no BPF token: "
            + "run it on a bpffs delegated to its namespace (delegate_* mount options) with --token auto or require"
    }

    /// Names the capabilities among `needed` this process lacks, for an `EPERM` or `EACCES` (or one of
    /// `alsoFor`) from a call that takes them: "bpftree runs without CAP_X, which WHAT needs". Nil when it holds
    /// them all, or in a user namespace, where the initial namespace's capabilities cannot be read.
    /// With every capability held, an `EPERM` or `ENOSYS` under a seccomp filter is the filter's: `syscall`
    /// names the call it refused.
    static func capabilityHint(_ negativeErrno: Int32, needs needed: [Capability], for what: String,
                               alsoFor: [Int32] = [], syscall: String = "bpf") -> String? {
        guard negativeErrno == -EPERM || negativeErrno == -EACCES || negativeErrno == -ENOSYS || alsoFor.contains(negativeErrno),
              Machine.inInitialUserNamespace else { return nil }
        let effective = Machine.effectiveCapabilities
        let missing = needed.filter { !$0.isHeld(in: effective) }
        guard !missing.isEmpty else {
            guard negativeErrno == -EPERM || negativeErrno == -ENOSYS, Machine.underSeccompFilter else { return nil }
            let held = needed.isEmpty ? "" : " although bpftree has \(needed.map(\.description).joined(separator: " and "))"
            return "a seccomp filter refuses \(syscall)(2)\(held): "
                + "container runtimes' default profiles allow bpf and perf_event_open only with CAP_SYS_ADMIN up to "
                + "containers-common 0.50 (Debian 12's podman); run with a profile that allows them for CAP_BPF and CAP_PERFMON "
                + "(scripts/seccomp-profile.py writes one) or add CAP_SYS_ADMIN"
        }
        let names = missing.map(\.description).joined(separator: " and ")
        return "bpftree runs without \(names), which \(what) needs (see Capabilities in bpftree's README)"
    }

    /// What BPF_OBJ_GET of a pin takes: a link is only ever opened read-write.
    static let pinAccess = "opening a pin bpftree's user may not write (a link pin such as an iterator's mode 0444, or another owner's)"

    /// This error with `hint` added to its detail, when there is one.
    func adding(_ hint: String?) -> KernelError {
        guard let hint else { return self }
        var error = self
        error.detail = detail.map { "\($0); \(hint)" } ?? hint
        return error
    }

    public var description: String {
        var text = "\(operation) \(path)"
        if let errno { text += ": \(errno) (\(Self.symbol(errno)))" }
        if let detail { text += errno == nil ? ": \(detail)" : "; \(detail)" }
        return text
    }

    private static func symbol(_ errno: Errno) -> String {
        bt_errno_name(errno.rawValue).map { String(cString: $0) } ?? "errno \(errno.rawValue)"
    }
}
