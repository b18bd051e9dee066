import BPFTreeYAML

/// One problem in a manifest: where it is, which field, and what is wrong.
public struct Diagnostic: Error, Sendable, Hashable, CustomStringConvertible {
    public var location: SourceLocation
    /// Dotted path of the field, e.g. `spec.entries.config.map.keySize`; empty for the document itself.
    public var field: String
    public var message: String

    public init(_ message: String, at location: SourceLocation, field: String) {
        self.location = location
        self.field = field
        self.message = message
    }

    public var description: String {
        field.isEmpty ? "\(location): \(message)" : "\(location): \(field): \(message)"
    }
}

/// Every problem found in a run's input; nothing is changed when this is thrown.
public struct ValidationFailure: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics.sorted { $0.location < $1.location } }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
