/// One node of a parsed YAML document; every node keeps where it was written.
///
/// A node is a position in its document's `YAMLStorage`, where all nodes of a file live in flat arrays:
/// a manifest of 100,000 entries is a few million nodes, and one allocation per node (or per collection)
/// would cost more memory and time than libyaml itself.
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

    public enum Kind: Sendable {
        case scalar, sequence, mapping
    }

    public enum Value: Sendable {
        case scalar(Scalar)
        case sequence(Items)
        /// Keys in document order; duplicate keys are refused by the parser.
        case mapping(Pairs)
    }

    let storage: YAMLStorage
    let index: Int

    init(_ storage: YAMLStorage, _ index: Int) {
        self.storage = storage
        self.index = index
    }

    private var raw: YAMLStorage.Node { storage.nodes[index] }

    public var kind: Kind {
        switch raw.kind {
        case .sequence: .sequence
        case .mapping: .mapping
        case .plainScalar, .quotedScalar: .scalar
        }
    }

    public var value: Value {
        let raw = raw
        switch raw.kind {
        case .sequence: return .sequence(Items(storage: storage, start: Int(raw.start), count: Int(raw.count)))
        case .mapping: return .mapping(Pairs(storage: storage, start: Int(raw.start), count: Int(raw.count)))
        case .plainScalar, .quotedScalar: return .scalar(Scalar(text: text, isPlain: raw.kind == .plainScalar))
        }
    }

    public var location: SourceLocation {
        let raw = raw
        return SourceLocation(file: storage.file, line: Int(raw.line), column: Int(raw.column))
    }

    /// A scalar's text ("" for a collection).
    public var text: String {
        let raw = raw
        guard raw.kind == .plainScalar || raw.kind == .quotedScalar else { return "" }
        return storage.bytes.withUnsafeBufferPointer { buffer in
            String(decoding: UnsafeBufferPointer(rebasing: buffer[Int(raw.start)..<Int(raw.start + raw.count)]), as: UTF8.self)
        }
    }

    /// Whether the node is a plain (unquoted) scalar.
    public var isPlainScalar: Bool { raw.kind == .plainScalar }

    /// A short name of the node's shape, for "expected X, found Y" messages.
    public var shapeName: String {
        switch kind {
        case .scalar: isNull ? "null" : "scalar"
        case .sequence: "sequence"
        case .mapping: "mapping"
        }
    }

    /// Whether the node is an explicit or implicit null (`~`, `null`, or nothing).
    public var isNull: Bool {
        let raw = raw
        guard raw.kind == .plainScalar, raw.count <= 4 else { return false }
        // Compared as bytes: this is asked of nearly every scalar, and most are not null.
        return storage.bytes.withUnsafeBufferPointer { buffer in
            let text = UnsafeBufferPointer(rebasing: buffer[Int(raw.start)..<Int(raw.start + raw.count)])
            return Self.nulls.contains { $0.elementsEqual(text) }
        }
    }

    private static let nulls: [[UInt8]] = ["", "~", "null", "Null", "NULL"].map { Array($0.utf8) }

    /// The items of a sequence, without copying them.
    public struct Items: RandomAccessCollection, Sendable {
        let storage: YAMLStorage
        let start: Int
        public let count: Int
        public var startIndex: Int { 0 }
        public var endIndex: Int { count }
        public subscript(position: Int) -> YAMLNode { YAMLNode(storage, Int(storage.children[start + position])) }
    }

    /// The key/value pairs of a mapping, in document order, without copying them.
    public struct Pairs: RandomAccessCollection, Sendable {
        let storage: YAMLStorage
        let start: Int
        public let count: Int
        public var startIndex: Int { 0 }
        public var endIndex: Int { count }
        public subscript(position: Int) -> (key: YAMLNode, value: YAMLNode) {
            (YAMLNode(storage, Int(storage.children[start + 2 * position])),
             YAMLNode(storage, Int(storage.children[start + 2 * position + 1])))
        }
    }
}

/// The nodes of one parsed file, in flat arrays: scalar text in `bytes`, the children of each collection
/// as a run of `children` (a mapping's run alternates key and value). Immutable once built.
final class YAMLStorage: Sendable {
    struct Node {
        enum Kind: UInt8 {
            case plainScalar, quotedScalar, sequence, mapping
        }

        var kind: Kind
        var line: UInt32
        var column: UInt32
        /// Scalars: offset in `bytes`; collections: offset in `children`.
        var start: UInt32
        /// Scalars: byte length; sequences: items; mappings: pairs.
        var count: UInt32
    }

    let file: String
    let nodes: [Node]
    let children: [UInt32]
    let bytes: [UInt8]

    init(file: String, nodes: [Node], children: [UInt32], bytes: [UInt8]) {
        self.file = file
        self.nodes = nodes
        self.children = children
        self.bytes = bytes
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
