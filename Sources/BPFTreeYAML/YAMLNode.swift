/// One node of a parsed YAML document; every node keeps where it was written.
public struct YAMLNode: Sendable {
    /// A scalar as written: its text, and whether it was plain (unquoted), which decides whether it may
    /// be read as a number or a boolean.
    public struct Scalar: Sendable, Equatable {
        public var text: String
        public var isPlain: Bool
        public init(text: String, isPlain: Bool) {
            self.text = text
            self.isPlain = isPlain
        }
    }

    public enum Value: Sendable {
        case scalar(Scalar)
        case sequence([YAMLNode])
        /// Keys in document order; duplicate keys are refused by the parser.
        case mapping([(key: YAMLNode, value: YAMLNode)])
    }

    public var value: Value
    public var location: SourceLocation

    public init(_ value: Value, at location: SourceLocation) {
        self.value = value
        self.location = location
    }

    /// A short name of the node's shape, for "expected X, found Y" messages.
    public var shapeName: String {
        switch value {
        case .scalar: isNull ? "null" : "scalar"
        case .sequence: "sequence"
        case .mapping: "mapping"
        }
    }

    /// Whether the node is an explicit or implicit null (`~`, `null`, or nothing).
    public var isNull: Bool {
        if case .scalar(let s) = value, s.isPlain, ["", "~", "null", "Null", "NULL"].contains(s.text) { return true }
        return false
    }
}

/// One document of a YAML stream.
public struct YAMLDocument: Sendable {
    /// nil for an empty document.
    public var root: YAMLNode?
    public var location: SourceLocation
}

/// Malformed YAML, with the position libyaml reported.
public struct YAMLError: Error, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String
    public var description: String { "\(location): \(message)" }
}
