/// Numeric owner of a directory or pin; a nil half is not managed.
public struct Owner: Hashable, Sendable, CustomStringConvertible {
    public var uid: UInt32?
    public var gid: UInt32?

    public init(uid: UInt32? = nil, gid: UInt32? = nil) {
        self.uid = uid
        self.gid = gid
    }

    public static let unmanaged = Owner()
    public var isManaged: Bool { uid != nil || gid != nil }

    public var description: String { "\(uid.map(String.init) ?? "-"):\(gid.map(String.init) ?? "-")" }
}

/// Formats permission bits as bpftree prints them everywhere: `0755`, `01777`.
public func formatMode(_ mode: UInt32) -> String {
    let octal = String(mode, radix: 8)
    return octal.count >= 4 ? "0" + octal : String(repeating: "0", count: 4 - octal.count) + octal
}
