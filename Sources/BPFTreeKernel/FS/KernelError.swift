import CBPFTreeShim
import Glibc
import SystemPackage

/// A failed kernel operation: which call, on which anchor-relative path, and the errno.
public struct KernelError: Error, Sendable, Equatable, CustomStringConvertible {
    public var operation: String
    /// Anchor-relative path, or the anchor as given on the command line.
    public var path: String
    public var errno: Errno?
    /// Extra explanation (e.g. libbpf's message, or why an anchor is refused).
    public var detail: String?

    public init(_ operation: String, path: String, errno: Errno? = nil, detail: String? = nil) {
        self.operation = operation
        self.path = path
        self.errno = errno
        self.detail = detail
    }

    /// From a shim return value (-errno).
    init(_ operation: String, path: String, negativeErrno: Int32, detail: String? = nil) {
        self.init(operation, path: path, errno: Errno(rawValue: -negativeErrno), detail: detail)
    }

    /// What to do about an `EPERM` from creating a map or loading a program when this process cannot have the
    /// privilege: it is in a user namespace (no CAP_BPF in the initial one) and holds no BPF token.
    static func privilegeHint(_ negativeErrno: Int32) -> String? {
        guard negativeErrno == -EPERM, bt_token_active() < 0, !Machine.inInitialUserNamespace else { return nil }
        return "this process is in a user namespace, without CAP_BPF in the initial one, and holds no BPF token: "
            + "run it on a bpffs delegated to its namespace (delegate_* mount options) with --token auto or require"
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
