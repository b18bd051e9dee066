/// A manifest or policy file as read, by the name it was read under: what is decoded, and with its
/// role, name and bytes what a stamp's inputs digest is made of.
public struct SourceFile: Sendable {
    /// "manifest" or "policy".
    public var role: String
    public var file: String
    public var bytes: [UInt8]

    public init(role: String, file: String, bytes: [UInt8]) {
        self.role = role
        self.file = file
        self.bytes = bytes
    }
}
