import CBPFTreeShim
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
