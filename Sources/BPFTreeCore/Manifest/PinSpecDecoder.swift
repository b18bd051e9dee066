import BPFTreeYAML

/// Decodes `program:` and `link:` blocks. References to other entries (a program's maps, a link's
/// program) are anchor-relative paths; in a template they and a link's cgroup may hold placeholders.
struct PinSpecDecoder {
    var reader: NodeReader
    /// The manifest is a template (`forEachCgroup`): placeholders are allowed in references.
    var template: Bool

    static let programFields = ["object", "name", "type", "attachType", "maps"]
    static let linkFields = ["program", "cgroup", "attachType", "iter", "order"]

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
        let attach = block["attachType"].flatMap { attachType($0, join(field, "attachType")) }
        var maps: [MapBinding] = []
        if let mapsNode = block["maps"], let pairs = reader.mapping(mapsNode, join(field, "maps")) {
            for (mapName, keyNode, value) in pairs {
                let mapField = join(join(field, "maps"), mapName)
                guard let path = reference(value, mapField, placeholders: ["{cgroup.id}", "{cgroup.name}"]) else { continue }
                maps.append(MapBinding(name: mapName, path: path, location: keyNode.location))
            }
        }
        guard let object, let name, reader.diagnostics.count == before else { return nil }
        var spec = ProgramSpec(object: object, objectPath: Self.resolve(object, besides: node.location.file), program: name,
                               type: type, attachType: attach, maps: maps)
        spec.locations = locations
        return spec
    }

    func link(_ block: Fields, node: YAMLNode, _ field: String) -> LinkSpec? {
        let before = reader.diagnostics.count
        var locations: [String: SourceLocation] = [:]
        for name in ["program", "cgroup"] { if let node = block[name] { locations[name] = node.location } }
        let program = block["program"].flatMap { reference($0, join(field, "program"), placeholders: ["{cgroup.id}", "{cgroup.name}"]) }
        let cgroup = block["cgroup"].flatMap { cgroupPath($0, join(field, "cgroup")) }
        var target: LinkSpec.Target?
        switch (block["attachType"], block["iter"]) {
        case (let attachNode?, nil):
            if let order = block["order"] {
                reader.error("order applies to iterator links (iter: cgroup)", at: order, join(field, "order"))
            }
            if let attach = attachType(attachNode, join(field, "attachType")) {
                if attach.isCgroup {
                    target = .cgroup(attach)
                } else {
                    reader.error("a link on a cgroup needs a cgroup attach type (\(AttachType.cgroupNames.joined(separator: ", "))), not \(attach.name)",
                                 at: attachNode, join(field, "attachType"))
                }
            }
        case (nil, let iterNode?):
            if let text = reader.string(iterNode, join(field, "iter")) {
                if text == "cgroup" {
                    let order = block["order"].flatMap { reader.choice($0, join(field, "order"), CgroupIteratorOrder.self) }
                    target = .cgroupIterator(order ?? .selfOnly)
                } else {
                    reader.error("iterator '\(text)' is not supported; supported: cgroup", at: iterNode, join(field, "iter"))
                }
            }
        case (.some, .some):
            reader.error("a link has either attachType (a cgroup link) or iter (an iterator link), not both", at: node, field)
        case (nil, nil):
            reader.error("a link needs attachType (e.g. cgroup_inet_egress) or iter: cgroup", at: node, field)
        }
        guard let program, let cgroup, let target, reader.diagnostics.count == before else { return nil }
        var spec = LinkSpec(program: program, cgroup: cgroup, target: target)
        spec.locations = locations
        return spec
    }

    /// An anchor-relative path to another entry; placeholders only in a template.
    private func reference(_ node: YAMLNode, _ field: String, placeholders: [String]) -> TreePath? {
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

    /// A cgroup v2 directory: absolute or relative to the cgroup v2 mount, without `.`/`..` segments.
    private func cgroupPath(_ node: YAMLNode, _ field: String) -> String? {
        guard let text = reader.string(node, field) else { return nil }
        if let problem = placeholderProblem(text, CgroupTemplate.linkPlaceholders) {
            reader.error(problem, at: node, field)
            return nil
        }
        if text.isEmpty || text.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) {
            reader.error("'\(text)' must name a cgroup directory, without '.' or '..' segments", at: node, field)
            return nil
        }
        return text
    }

    private func placeholderProblem(_ text: String, _ allowed: [String]) -> String? {
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

    private func attachType(_ node: YAMLNode, _ field: String) -> AttachType? {
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
