import CYAML

/// Parses YAML text with the system libyaml into position-annotated documents. Pure: no I/O.
public enum YAMLParser {
    /// Parses every document of `text`; `file` is only used in locations.
    public static func parse(_ text: String, file: String) throws(YAMLError) -> [YAMLDocument] {
        var bytes = Array(text.utf8)
        if bytes.isEmpty { bytes = [0x0a] }
        let result: Result<[YAMLDocument], YAMLError> = bytes.withUnsafeBufferPointer { buffer in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else {
                return .failure(YAMLError(location: SourceLocation(file: file, line: 1, column: 1),
                                          message: "cannot initialise libyaml"))
            }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var builder = Builder(file: file)
            return builder.run(&parser)
        }
        return try result.get()
    }

    /// Event-driven tree builder: a stack of open collections.
    private struct Builder {
        let file: String
        var documents: [YAMLDocument] = []
        var stack: [Frame] = []
        var anchors: [String: YAMLNode] = [:]
        var documentRoot: YAMLNode?
        var documentStart = SourceLocation(file: "", line: 1, column: 1)

        /// An open collection. A class, so appending a child does not copy the collection.
        final class Frame {
            let isMapping: Bool
            let start: SourceLocation
            let anchor: String?
            var items: [YAMLNode] = []
            var pairs: [(key: YAMLNode, value: YAMLNode)] = []
            /// Lines of the scalar keys so far, by key; built only once the mapping is large.
            var keyLines: [String: Int] = [:]
            var pendingKey: YAMLNode?

            /// The line where `key` is already a key of this mapping, if it is.
            func lineOfKey(_ key: String) -> Int? {
                if pairs.count < 16 {
                    for pair in pairs {
                        if case .scalar(let s) = pair.key.value, s.text == key { return pair.key.location.line }
                    }
                    return nil
                }
                if keyLines.isEmpty {
                    for pair in pairs {
                        if case .scalar(let s) = pair.key.value { keyLines[s.text] = pair.key.location.line }
                    }
                }
                return keyLines[key]
            }

            init(isMapping: Bool, start: SourceLocation, anchor: String?) {
                self.isMapping = isMapping
                self.start = start
                self.anchor = anchor
            }

            var node: YAMLNode { YAMLNode(isMapping ? .mapping(pairs) : .sequence(items), at: start) }
        }

        init(file: String) {
            self.file = file
            documentStart = SourceLocation(file: file, line: 1, column: 1)
        }

        func location(_ mark: yaml_mark_t) -> SourceLocation {
            SourceLocation(file: file, line: Int(mark.line) + 1, column: Int(mark.column) + 1)
        }

        static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?, length: Int? = nil) -> String? {
            guard let pointer else { return nil }
            if let length {
                return String(decoding: UnsafeBufferPointer(start: pointer, count: length), as: UTF8.self)
            }
            return String(cString: pointer)
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
                    return .success(documents)
                case YAML_DOCUMENT_START_EVENT:
                    documentRoot = nil
                    anchors = [:]
                    documentStart = location(event.start_mark)
                case YAML_DOCUMENT_END_EVENT:
                    documents.append(YAMLDocument(root: documentRoot, location: documentStart))
                case YAML_SCALAR_EVENT:
                    let scalar = event.data.scalar
                    let text = Self.string(scalar.value, length: Int(scalar.length)) ?? ""
                    let node = YAMLNode(.scalar(.init(text: text, isPlain: scalar.style == YAML_PLAIN_SCALAR_STYLE)),
                                        at: location(event.start_mark))
                    if let error = add(node, anchor: Self.string(scalar.anchor)) { return .failure(error) }
                case YAML_ALIAS_EVENT:
                    let name = Self.string(event.data.alias.anchor) ?? ""
                    guard var node = anchors[name] else {
                        return .failure(YAMLError(location: location(event.start_mark), message: "unknown alias *\(name)"))
                    }
                    node.location = location(event.start_mark)
                    if let error = add(node, anchor: nil) { return .failure(error) }
                case YAML_SEQUENCE_START_EVENT:
                    stack.append(Frame(isMapping: false, start: location(event.start_mark),
                                       anchor: Self.string(event.data.sequence_start.anchor)))
                case YAML_MAPPING_START_EVENT:
                    stack.append(Frame(isMapping: true, start: location(event.start_mark),
                                       anchor: Self.string(event.data.mapping_start.anchor)))
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let frame = stack.popLast() else { break }
                    if let error = add(frame.node, anchor: frame.anchor) { return .failure(error) }
                default:
                    break
                }
            }
        }

        /// Attaches a finished node to the innermost open collection (or makes it the document root).
        mutating func add(_ node: YAMLNode, anchor: String?) -> YAMLError? {
            if let anchor { anchors[anchor] = node }
            guard let top = stack.last else {
                documentRoot = node
                return nil
            }
            guard top.isMapping else {
                top.items.append(node)
                return nil
            }
            if let key = top.pendingKey {
                top.pairs.append((key: key, value: node))
                top.pendingKey = nil
                return nil
            }
            if case .scalar(let s) = node.value {
                if let line = top.lineOfKey(s.text) {
                    return YAMLError(location: node.location, message: "duplicate key '\(s.text)' (first at line \(line))")
                }
                if !top.keyLines.isEmpty { top.keyLines[s.text] = node.location.line }
            }
            top.pendingKey = node
            return nil
        }
    }
}
