import BPFTreeYAML

/// Decodes `program:` and `link:` blocks. References to other entries (a program's maps, a link's
/// program) are anchor-relative paths; in a template they and a link's cgroup may hold placeholders.
struct PinSpecDecoder {
    var reader: NodeReader
    /// The manifest is a template (`forEachCgroup`): placeholders are allowed in references.
    var template: Bool

    static let programFields = ["object", "name", "type", "attachType", "maps", "globals"]

    func program(_ block: Fields, node: YAMLNode, _ field: String) -> ProgramSpec? {
        let before = reader.diagnostics.count
        var locations: [String: SourceLocation] = [:]
        for name in ["object", "name", "type"] { if let node = block[name] { locations[name] = node.location } }
        let object = block["object"].flatMap { reader.string($0, join(field, "object")) }
        if let object, object.isEmpty, let node = block["object"] {
            reader.error("object must name a BPF ELF file", at: node, join(field, "object"))
        }
        let name = block["name"].flatMap { reader.string($0, join(field, "name")) }
        let type = block["type"].flatMap { programType($0, join(field, "type")) }
        var attach = block["attachType"].flatMap { attachType($0, join(field, "attachType")) }
        // The kernel loads a netfilter program only for its one attach type; libbpf 1.1 cannot say it.
        if type == .netfilter, block["attachType"] == nil { attach = .netfilter }
        var maps: [MapBinding] = []
        if let mapsNode = block["maps"], let pairs = reader.mapping(mapsNode, join(field, "maps")) {
            for (mapName, keyNode, value) in pairs {
                let mapField = join(join(field, "maps"), mapName)
                guard let path = reference(value, mapField, placeholders: ["{cgroup.id}", "{cgroup.name}"]) else { continue }
                maps.append(MapBinding(name: mapName, path: path, location: keyNode.location))
            }
        }
        var globals: [GlobalAssignment] = []
        if let globalsNode = block["globals"], let pairs = reader.mapping(globalsNode, join(field, "globals")) {
            for (variable, keyNode, value) in pairs {
                if let decoded = globalValue(value, join(join(field, "globals"), variable), depth: 0) {
                    globals.append(GlobalAssignment(name: variable, value: decoded, location: keyNode.location))
                }
            }
        }
        guard let object, let name, reader.diagnostics.count == before else { return nil }
        var spec = ProgramSpec(object: object, objectPath: Self.resolve(object, besides: node.location.file), program: name,
                               type: type, attachType: attach, maps: maps)
        spec.globals = globals.sorted { Array($0.name.utf8).lexicographicallyPrecedes($1.name.utf8) }
        spec.locations = locations
        return spec
    }

    /// A global's value: an integer, `true`/`false`, a string (quoted, or plain when it is neither), or a
    /// list of those for an array.
    private func globalValue(_ node: YAMLNode, _ field: String, depth: Int) -> GlobalValue? {
        switch node.value {
        case .scalar(let scalar) where !node.isNull:
            if scalar.isPlain {
                if let integer = IntegerLiteral(scalar.text) { return .integer(negative: integer.isNegative, magnitude: integer.magnitude) }
                switch scalar.text {
                case "true", "True", "TRUE": return .bool(true)
                case "false", "False", "FALSE": return .bool(false)
                default: break
                }
            }
            return .string(scalar.text)
        case .sequence(let items) where depth == 0:
            var values: [GlobalValue] = []
            for (index, item) in items.enumerated() {
                guard let value = globalValue(item, "\(field)[\(index)]", depth: 1) else { return nil }
                values.append(value)
            }
            return .list(values)
        default:
            reader.error(depth == 0 ? "expected an integer, true or false, a string or a list of those, found \(reader.describe(node))"
                                    : "expected an integer, true or false or a string, found \(reader.describe(node))",
                         at: node, field)
            return nil
        }
    }

    /// An anchor-relative path to another entry; placeholders only in a template.
    func reference(_ node: YAMLNode, _ field: String, placeholders: [String]) -> TreePath? {
        guard let text = reader.string(node, field) else { return nil }
        if let problem = placeholderProblem(text, placeholders) {
            reader.error(problem, at: node, field)
            return nil
        }
        let filled = CgroupTemplate.fill(text, with: Cgroup(id: 1, name: "x", path: "x"), source: CgroupSource(path: "x", depth: 1))
        switch TreePath.parse(relative: filled) {
        case .success: return TreePath(joined: text)
        case .failure(let problem):
            reader.error("'\(text)' is not an anchor-relative path: \(problem.message)", at: node, field)
            return nil
        }
    }

    func placeholderProblem(_ text: String, _ allowed: [String]) -> String? {
        switch CgroupTemplate.placeholders(in: text) {
        case .failure(let problem):
            return problem.message
        case .success(let found):
            guard let first = found.first else { return nil }
            guard template else { return "placeholders such as \(first) need spec.forEachCgroup" }
            guard let unknown = found.first(where: { !allowed.contains($0) }) else { return nil }
            return "unknown placeholder '\(unknown)' here; known: \(allowed.joined(separator: ", "))"
        }
    }

    private func programType(_ node: YAMLNode, _ field: String) -> ProgramType? {
        guard let text = reader.string(node, field) else { return nil }
        if let type = ProgramType(name: text) { return type }
        var message = "unknown program type '\(text)'"
        if let suggestion = closest(to: text, in: ProgramType.allNames) { message += "; did you mean '\(suggestion)'?" }
        reader.error(message, at: node, field)
        return nil
    }

    func attachType(_ node: YAMLNode, _ field: String) -> AttachType? {
        guard let text = reader.string(node, field) else { return nil }
        if let type = AttachType(name: text) { return type }
        var message = "unknown attach type '\(text)'"
        if let suggestion = closest(to: text, in: AttachType.names) { message += "; did you mean '\(suggestion)'?" }
        reader.error(message, at: node, field)
        return nil
    }

    /// `object` relative to the directory of the manifest `file` (absolute stays as is).
    static func resolve(_ object: String, besides file: String) -> String {
        guard !object.hasPrefix("/"), let slash = file.lastIndex(of: "/") else { return object }
        return String(file[...slash]) + object
    }
}
