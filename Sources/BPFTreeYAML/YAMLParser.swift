import CYAML

/// Parses YAML text with the system libyaml into position-annotated documents. Pure: no I/O.
///
/// Bounded for hostile input: collections may nest at most `maxDepth` deep (a valid manifest nests far
/// less: bpffs paths hold at most 255 bytes), and aliases may add at most `aliasAllowance` nodes per
/// document beyond the document's own (so "billion laughs" alias trees are refused, not expanded).
public enum YAMLParser {
    /// The deepest nesting of collections accepted.
    public static let maxDepth = 512

    /// How many nodes a document's aliases may add when expanded: ten times the document's own nodes,
    /// plus 100,000.
    static func aliasAllowance(nodes: Int) -> Int { nodes * 10 + 100_000 }

    /// Parses every document of `text`; `file` is only used in locations.
    public static func parse(_ text: String, file: String) throws(YAMLError) -> [YAMLDocument] {
        try parse(bytes: Array(text.utf8), file: file)
    }

    /// Parses every document of UTF-8 `bytes` (libyaml refuses invalid UTF-8).
    public static func parse(bytes: [UInt8], file: String) throws(YAMLError) -> [YAMLDocument] {
        let input = bytes.isEmpty ? [0x0a] : bytes
        let result: Result<[YAMLDocument], YAMLError> = input.withUnsafeBufferPointer { buffer in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else {
                return .failure(YAMLError(location: SourceLocation(file: file, line: 1, column: 1),
                                          message: "cannot initialise libyaml"))
            }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var builder = Builder(file: file, inputSize: buffer.count)
            return builder.run(&parser)
        }
        return try result.get()
    }

    /// Event-driven builder of the flat node arrays: a stack of open collections whose children wait on
    /// `pending` until the collection ends and they move, as one run, to `children`.
    private struct Builder {
        typealias Node = YAMLStorage.Node

        /// An open collection.
        struct Frame {
            var node: Int
            var isMapping: Bool
            /// Where this collection's children start in `pending`.
            var firstChild: Int
            var anchor: String?
            /// Lines of the scalar keys so far, by key bytes (keys are bytes: NFC and NFD spellings are
            /// two keys); built only once the mapping is large.
            var keyLines: [[UInt8]: Int] = [:]
        }

        let file: String
        var nodes: [Node] = []
        var children: [UInt32] = []
        var bytes: [UInt8] = []
        var pending: [UInt32] = []
        var stack: [Frame] = []
        var anchors: [String: Int] = [:]
        var roots: [(root: Int?, line: Int, column: Int)] = []
        var documentRoot: Int?
        var documentStart = (line: 1, column: 1)
        /// Nodes the aliases of this document add when expanded, and the first node of the document.
        var aliasExpansion = 0
        var documentFirstNode = 0
        /// Expanded sizes of alias targets already measured.
        var expandedSizes: [Int: Int] = [:]

        init(file: String, inputSize: Int) {
            self.file = file
            // About one event per 5 bytes of YAML; untouched reserved pages cost no memory.
            nodes.reserveCapacity(inputSize / 4 + 16)
            children.reserveCapacity(inputSize / 4 + 16)
            bytes.reserveCapacity(inputSize)
        }

        func location(_ mark: yaml_mark_t) -> SourceLocation {
            SourceLocation(file: file, line: Int(mark.line) + 1, column: Int(mark.column) + 1)
        }

        static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            pointer.map { String(cString: $0) }
        }

        mutating func newNode(_ kind: Node.Kind, _ mark: yaml_mark_t, start: Int = 0, count: Int = 0) -> Int {
            nodes.append(Node(kind: kind, line: UInt32(truncatingIfNeeded: mark.line + 1),
                              column: UInt32(truncatingIfNeeded: mark.column + 1),
                              start: UInt32(truncatingIfNeeded: start), count: UInt32(truncatingIfNeeded: count)))
            return nodes.count - 1
        }

        mutating func run(_ parser: inout yaml_parser_t) -> Result<[YAMLDocument], YAMLError> {
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    let problem = parser.problem.map { String(cString: $0) } ?? "malformed YAML"
                    var message = problem
                    if let context = parser.context.map({ String(cString: $0) }) {
                        message = "\(problem) \(context)"
                    }
                    return .failure(YAMLError(location: location(parser.problem_mark), message: "malformed YAML: \(message)"))
                }
                defer { yaml_event_delete(&event) }
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return .success(finish())
                case YAML_DOCUMENT_START_EVENT:
                    documentRoot = nil
                    anchors = [:]
                    aliasExpansion = 0
                    documentFirstNode = nodes.count
                    expandedSizes = [:]
                    documentStart = (Int(event.start_mark.line) + 1, Int(event.start_mark.column) + 1)
                case YAML_DOCUMENT_END_EVENT:
                    roots.append((documentRoot, documentStart.line, documentStart.column))
                case YAML_SCALAR_EVENT:
                    let scalar = event.data.scalar
                    let start = bytes.count
                    if let value = scalar.value, scalar.length > 0 {
                        bytes.append(contentsOf: UnsafeBufferPointer(start: value, count: Int(scalar.length)))
                    }
                    let node = newNode(scalar.style == YAML_PLAIN_SCALAR_STYLE ? .plainScalar : .quotedScalar,
                                       event.start_mark, start: start, count: Int(scalar.length))
                    if let error = add(node, anchor: Self.string(scalar.anchor)) { return .failure(error) }
                case YAML_ALIAS_EVENT:
                    let name = Self.string(event.data.alias.anchor) ?? ""
                    guard let target = anchors[name] else {
                        return .failure(YAMLError(location: location(event.start_mark), message: "unknown alias *\(name)"))
                    }
                    let copy = nodes[target]
                    aliasExpansion += expandedSize(target) - 1
                    let allowance = YAMLParser.aliasAllowance(nodes: nodes.count - documentFirstNode)
                    guard aliasExpansion <= allowance else {
                        return .failure(YAMLError(location: location(event.start_mark),
                                                  message: "aliases expand to more than \(allowance) nodes (alias *\(name)); write the entries out instead"))
                    }
                    let node = newNode(copy.kind, event.start_mark, start: Int(copy.start), count: Int(copy.count))
                    if let error = add(node, anchor: nil) { return .failure(error) }
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    let isMapping = event.type == YAML_MAPPING_START_EVENT
                    let anchor = isMapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor
                    guard stack.count < YAMLParser.maxDepth else {
                        return .failure(YAMLError(location: location(event.start_mark),
                                                  message: "collections nest more than \(YAMLParser.maxDepth) deep"))
                    }
                    let node = newNode(isMapping ? .mapping : .sequence, event.start_mark)
                    stack.append(Frame(node: node, isMapping: isMapping, firstChild: pending.count, anchor: Self.string(anchor)))
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let frame = stack.popLast() else { break }
                    let count = pending.count - frame.firstChild
                    nodes[frame.node].start = UInt32(truncatingIfNeeded: children.count)
                    nodes[frame.node].count = UInt32(truncatingIfNeeded: frame.isMapping ? count / 2 : count)
                    // No slice of `pending` may outlive this statement, or removing would copy it whole.
                    children.append(contentsOf: pending[frame.firstChild...])
                    pending.removeLast(count)
                    if let error = add(frame.node, anchor: frame.anchor) { return .failure(error) }
                default:
                    break
                }
            }
        }

        func finish() -> [YAMLDocument] {
            let storage = YAMLStorage(file: file, nodes: nodes, children: children, bytes: bytes)
            return roots.map { root in
                YAMLDocument(root: root.root.map { YAMLNode(storage, $0) },
                             location: SourceLocation(file: file, line: root.line, column: root.column))
            }
        }

        /// Attaches a finished node to the innermost open collection (or makes it the document root).
        mutating func add(_ node: Int, anchor: String?) -> YAMLError? {
            if let anchor { anchors[anchor] = node }
            guard let top = stack.indices.last else {
                documentRoot = node
                return nil
            }
            defer { pending.append(UInt32(truncatingIfNeeded: node)) }
            guard stack[top].isMapping, (pending.count - stack[top].firstChild) % 2 == 0,
                  nodes[node].kind == .plainScalar || nodes[node].kind == .quotedScalar else { return nil }
            // A scalar key: refuse a duplicate.
            if let line = lineOfKey(node, in: top) {
                let at = SourceLocation(file: file, line: Int(nodes[node].line), column: Int(nodes[node].column))
                return YAMLError(location: at, message: "duplicate key '\(text(of: node))' (first at line \(line))")
            }
            if !stack[top].keyLines.isEmpty { stack[top].keyLines[keyBytes(of: node)] = Int(nodes[node].line) }
            return nil
        }

        /// The line where the scalar `key` is already a key of the mapping `stack[frame]`, if it is.
        mutating func lineOfKey(_ key: Int, in frame: Int) -> Int? {
            let first = stack[frame].firstChild
            let pairs = (pending.count - first) / 2
            if pairs < 16 {
                let wanted = nodes[key]
                for pair in 0..<pairs {
                    let other = nodes[Int(pending[first + 2 * pair])]
                    if (other.kind == .plainScalar || other.kind == .quotedScalar), other.count == wanted.count,
                       bytes[Int(other.start)..<Int(other.start + other.count)] == bytes[Int(wanted.start)..<Int(wanted.start + wanted.count)] {
                        return Int(other.line)
                    }
                }
                return nil
            }
            if stack[frame].keyLines.isEmpty {
                for pair in 0..<pairs {
                    let other = Int(pending[first + 2 * pair])
                    if nodes[other].kind == .plainScalar || nodes[other].kind == .quotedScalar {
                        stack[frame].keyLines[keyBytes(of: other)] = Int(nodes[other].line)
                    }
                }
            }
            return stack[frame].keyLines[keyBytes(of: key)]
        }

        /// How many nodes `node` stands for with every alias in it expanded (saturating), measured
        /// without expanding: each node of the graph is visited once.
        mutating func expandedSize(_ node: Int) -> Int {
            if nodes[node].kind == .plainScalar || nodes[node].kind == .quotedScalar { return 1 }
            if let known = expandedSizes[node] { return known }
            // Iterative post-order over the collection graph, so that deep input cannot exhaust the stack.
            var work: [(node: Int, visited: Bool)] = [(node, false)]
            while let (current, visited) = work.popLast() {
                let raw = nodes[current]
                let first = Int(raw.start), count = Int(raw.count) * (raw.kind == .mapping ? 2 : 1)
                let items = children[first..<(first + count)].map(Int.init)
                    .filter { nodes[$0].kind == .sequence || nodes[$0].kind == .mapping }
                if visited {
                    var size = 1 + count - items.count
                    for item in items { size = size &+ (expandedSizes[item] ?? 0) }
                    expandedSizes[current] = min(size, Int(Int32.max))
                    continue
                }
                work.append((current, true))
                for item in items where expandedSizes[item] == nil { work.append((item, false)) }
            }
            return expandedSizes[node] ?? 1
        }

        func keyBytes(of node: Int) -> [UInt8] {
            let raw = nodes[node]
            return Array(bytes[Int(raw.start)..<Int(raw.start + raw.count)])
        }

        func text(of node: Int) -> String {
            let raw = nodes[node]
            return String(decoding: bytes[Int(raw.start)..<Int(raw.start + raw.count)], as: UTF8.self)
        }
    }
}
