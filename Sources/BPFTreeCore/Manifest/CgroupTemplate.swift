import BPFTreeYAML

/// `spec.forEachCgroup`: the cgroup v2 directory whose cgroups a manifest is rendered for.
public struct CgroupSource: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// As written: absolute, or relative to the cgroup v2 mount (found in /proc/self/mountinfo).
    public var path: String
    /// The cgroups exactly this many levels below `path` (1: its children).
    public var depth: Int

    public init(path: String, depth: Int) {
        self.path = path
        self.depth = depth
    }

    public static let maxDepth = 8

    public var description: String { "\(path) (depth \(depth))" }

    public static func < (a: CgroupSource, b: CgroupSource) -> Bool { (a.path, a.depth) < (b.path, b.depth) }
}

/// One cgroup a template is rendered for.
public struct Cgroup: Hashable, Sendable {
    /// The cgroup id (the kernel's `bpf_get_current_cgroup_id`; its inode on cgroup2).
    public var id: UInt64
    /// The cgroup directory's own name.
    public var name: String
    /// Its path below the source directory, e.g. `worker-1` at depth 1.
    public var path: String

    public init(id: UInt64, name: String, path: String) {
        self.id = id
        self.name = name
        self.path = path
    }

    /// `path` as output shows it: bytes that are not UTF-8 as `\xHH`, like every name bpftree prints.
    public var displayPath: String { TreePath.escaped(TreePath.rawName(path)) }
}

/// A manifest whose root holds `{cgroup.id}` or `{cgroup.name}`: rendered once per cgroup of `source`.
public struct CgroupTemplate: Hashable, Sendable {
    public var source: CgroupSource
    /// `spec.root` as written, e.g. `jobs/A/{cgroup.id}`.
    public var root: String

    public init(source: CgroupSource, root: String) {
        self.source = source
        self.root = root
    }

    public static let placeholders = ["{cgroup.id}", "{cgroup.name}"]

    /// Why `root` cannot be a template root, or nil when it can: only the known placeholders, at least
    /// one of them, and a valid path once they are filled in.
    public static func problem(withRoot root: String) -> String? {
        let found: [String]
        switch placeholders(in: root) {
        case .failure(let problem): return problem.message
        case .success(let tokens): found = tokens
        }
        if let unknown = found.first(where: { !placeholders.contains($0) }) {
            return "unknown placeholder '\(unknown)'; known: \(placeholders.joined(separator: ", "))"
        }
        if root.count(where: { $0 == "}" }) > found.count { return "'}' without '{' in '\(root)'" }
        guard !found.isEmpty else {
            return "with forEachCgroup, the root must hold {cgroup.id} or {cgroup.name}, or every cgroup would get the same subtree"
        }
        let sample = TemplateText(root).filled(Cgroup(id: 1, name: "x", path: "x"), source: CgroupSource(path: "/", depth: 1))
        if case .failure(let error) = TreePath.parse(relative: sample) { return error.message }
        return nil
    }

    /// Why a text's braces do not parse.
    public struct PlaceholderProblem: Error {
        public var message: String
    }

    /// Every `{...}` of `text`, in order, known or not; a `{` without its `}` is a problem.
    public static func placeholders(in text: String) -> Result<[String], PlaceholderProblem> {
        var found: [String] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else {
                return .failure(PlaceholderProblem(message: "'{' without '}' in '\(text)'"))
            }
            found.append(String(rest[open...close]))
            rest = rest[rest.index(after: close)...]
        }
        return .success(found)
    }

    /// The root for `cgroup`, or why the cgroup cannot have one (a name bpffs cannot hold).
    public func root(for cgroup: Cgroup) -> Result<TreePath, TreePath.PathError> {
        TreePath.parse(relative: TemplateText(root).filled(cgroup, source: source))
    }

    /// Placeholders a link's `cgroup` may hold: `{cgroup.path}` is the cgroup's directory, written like
    /// `forEachCgroup.path` (absolute, or relative to the cgroup v2 mount).
    public static let linkPlaceholders = ["{cgroup.path}", "{cgroup.id}", "{cgroup.name}"]

    /// `text` with every placeholder filled for `cgroup` of `source`.
    public static func fill(_ text: String, with cgroup: Cgroup, source: CgroupSource) -> String {
        TemplateText(text).filled(cgroup, source: source)
    }
}

/// A text with placeholders, split once into literal runs and placeholders, so that filling it for each
/// cgroup is concatenation (a template is filled once per cgroup and field).
public struct TemplateText: Hashable, Sendable {
    enum Part: Hashable, Sendable {
        case literal(String), id, name, path
    }

    let parts: [Part]

    public init(_ text: String) {
        var parts: [Part] = []
        var rest = Substring(text)
        let known: [(String, Part)] = [("{cgroup.id}", .id), ("{cgroup.name}", .name), ("{cgroup.path}", .path)]
        var literal = ""
        while let open = rest.firstIndex(of: "{") {
            literal += rest[..<open]
            rest = rest[open...]
            if let (token, part) = known.first(where: { rest.hasPrefix($0.0) }) {
                if !literal.isEmpty { parts.append(.literal(literal)) }
                literal = ""
                parts.append(part)
                rest = rest.dropFirst(token.count)
            } else {
                literal.append("{")
                rest = rest.dropFirst()
            }
        }
        literal += rest
        if !literal.isEmpty || parts.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
    }

    /// Whether the text holds no placeholder.
    public var isLiteral: Bool { parts.count == 1 && { if case .literal = parts[0] { true } else { false } }() }

    /// The text for `cgroup` of `source`: `{cgroup.path}` is the cgroup's directory, written like the
    /// source's path.
    public func filled(_ cgroup: Cgroup, source: CgroupSource) -> String {
        var text = ""
        for part in parts {
            switch part {
            case .literal(let literal): text += literal
            case .id: text += String(cgroup.id)
            case .name: text += cgroup.name
            case .path: text += source.path.hasSuffix("/") ? source.path + cgroup.path : source.path + "/" + cgroup.path
            }
        }
        return text
    }
}

extension Manifest {
    /// The manifests this one stands for: itself, or for a template one per cgroup of `cgroups` (those of
    /// its source) with the root filled in and every entry moved beneath it. A cgroup whose name bpffs
    /// cannot hold gets no subtree and a notice.
    public func instances(_ cgroups: [CgroupSource: [Cgroup]]) -> (manifests: [Manifest], notices: [PlanNotice]) {
        guard let compiled = CompiledTemplate(self) else { return ([self], []) }
        return compiled.instances(cgroups[compiled.template.source] ?? [])
    }
}

/// A template manifest with its root and every entry's placeholders split once (`TemplateText`), so that
/// rendering it for a cgroup is concatenation; the service keeps one per template between events.
public struct CompiledTemplate: Sendable {
    public let manifest: Manifest
    public let template: CgroupTemplate
    private let rootText: TemplateText
    private let kinds: [KindTemplate]

    /// Nil for a manifest that is no template.
    public init?(_ manifest: Manifest) {
        guard let template = manifest.forEachCgroup else { return nil }
        self.manifest = manifest
        self.template = template
        rootText = TemplateText(template.root)
        kinds = manifest.entries.map { KindTemplate($0.kind) }
    }

    /// The root for `cgroup`, or why the cgroup cannot have one (a name bpffs cannot hold).
    public func root(for cgroup: Cgroup) -> Result<TreePath, TreePath.PathError> {
        let filled = rootText.filled(cgroup, source: template.source)
        // A name that is not UTF-8 comes escaped (`TreePath.name(raw:)`), its only dots those of its escapes:
        // its bytes are checked as bpffs sees them, and the rest with a stand-in of the same length.
        let raw = TreePath.rawName(cgroup.name)
        guard String(validating: raw, as: UTF8.self) == nil else { return TreePath.parse(relative: filled) }
        if raw.contains(UInt8(ascii: ".")) {
            return .failure(TreePath.PathError(message: "'\(TreePath.escaped(raw))' contains '.', which bpffs refuses in names"))
        }
        var standIn = cgroup
        standIn.name = String(repeating: "x", count: raw.count)
        standIn.path = cgroup.path.hasSuffix(cgroup.name) ? String(cgroup.path.dropLast(cgroup.name.count)) + standIn.name : standIn.name
        return TreePath.parse(relative: rootText.filled(standIn, source: template.source)).map { _ in TreePath(joined: filled) }
    }

    /// One manifest per cgroup of `cgroups` (of the template's source), and a notice for each cgroup
    /// that gets no subtree.
    public func instances(_ cgroups: [Cgroup]) -> (manifests: [Manifest], notices: [PlanNotice]) {
        let (pairs, notices) = renderedInstances(cgroups)
        return (pairs.map(\.manifest), notices)
    }

    /// `instances`, each with the cgroup it was rendered for.
    func renderedInstances(_ cgroups: [Cgroup]) -> (instances: [(manifest: Manifest, cgroup: Cgroup)], notices: [PlanNotice]) {
        var manifests: [(manifest: Manifest, cgroup: Cgroup)] = []
        var notices: [PlanNotice] = []
        let prefix = manifest.root.text.utf8.count
        for cgroup in cgroups {
            switch root(for: cgroup) {
            case .failure(let error):
                notices.append(PlanNotice(
                    path: TreePath(joined: template.root),
                    message: "cgroup '\(cgroup.displayPath)' (id \(cgroup.id)) of \(template.source.path) gets no subtree: \(error.message)",
                    category: .cgroup))
            case .success(let instanceRoot):
                var instance = manifest
                instance.root = instanceRoot
                instance.forEachCgroup = nil
                instance.entries = zip(manifest.entries, kinds).map { entry, kind in
                    var moved = entry
                    let rest = entry.path.text.utf8.dropFirst(prefix)
                    moved.path = TreePath(joined: instanceRoot.text + String(decoding: rest, as: UTF8.self))
                    moved.kind = kind.filled(entry.kind, for: cgroup, of: template.source)
                    if case .program(var program) = moved.kind {
                        program.scope += "\u{0}" + instanceRoot.text
                        moved.kind = .program(program)
                    }
                    return moved
                }
                manifests.append((instance, cgroup))
            }
        }
        return (manifests, notices)
    }
}

/// The placeholders of an entry's references (a program's maps, a link's program, cgroup, map and tcx
/// neighbour), compiled once per template.
struct KindTemplate: Sendable {
    var maps: [TemplateText] = []
    var program: TemplateText?
    var cgroup: TemplateText?
    var map: TemplateText?
    var relative: TemplateText?

    init(_ kind: DesiredEntry.Kind) {
        switch kind {
        case .directory, .map: break
        case .program(let spec): maps = spec.maps.map { TemplateText($0.path.text) }
        case .link(let spec):
            program = TemplateText(spec.program.text)
            cgroup = spec.cgroup.map(TemplateText.init)
            map = spec.map.map { TemplateText($0.text) }
            relative = spec.relative.map { TemplateText($0.text) }
        }
    }

    /// `kind` with its references filled for `cgroup`.
    func filled(_ kind: DesiredEntry.Kind, for cgroup: Cgroup, of source: CgroupSource) -> DesiredEntry.Kind {
        switch kind {
        case .directory, .map:
            return kind
        case .program(var spec):
            spec.maps = zip(spec.maps, maps).map { binding, text in
                MapBinding(name: binding.name, path: text.isLiteral ? binding.path : TreePath(joined: text.filled(cgroup, source: source)),
                           location: binding.location)
            }
            return .program(spec)
        case .link(var spec):
            if let program, !program.isLiteral { spec.program = TreePath(joined: program.filled(cgroup, source: source)) }
            func filled(_ text: TemplateText?) -> String? {
                guard let text, !text.isLiteral else { return nil }
                return text.filled(cgroup, source: source)
            }
            return .link(spec.referencing(cgroup: filled(self.cgroup), map: filled(map).map(TreePath.init(joined:)),
                                          relative: filled(relative).map(TreePath.init(joined:))))
        }
    }
}

private extension DesiredEntry {
    var isMap: Bool { if case .map = kind { true } else { false } }
}

extension DesiredTree {
    /// Renders the templates among `manifests` for `cgroups` and merges everything; also returns the
    /// notices about cgroups that got no subtree. A cgroup is a name someone else chose: an instance that
    /// cannot be merged (a path too long for the ledger, a path another manifest or instance declares, a
    /// root beneath a declared map) gets a notice and no subtree, and every other instance converges.
    public static func build(rendering manifests: [Manifest], cgroups: [CgroupSource: [Cgroup]])
        -> (tree: Result<DesiredTree, ValidationFailure>, notices: [PlanNotice]) {
        var rendered: [Manifest] = []
        var notices: [PlanNotice] = []
        // Two manifests of one name are an error of the files, whichever instances they render.
        var names: [String: SourceLocation] = [:]
        var clashes: [Diagnostic] = []
        for manifest in manifests {
            if let other = names[manifest.name], other != manifest.location {
                clashes.append(Diagnostic("manifest name '\(manifest.name)' is also used at \(other)", at: manifest.location, field: "metadata.name"))
            }
            names[manifest.name] = manifest.location
        }
        guard clashes.isEmpty else { return (.failure(ValidationFailure(clashes)), []) }
        // Every instance, with the cgroup it is for; merged whole first, which is what a tree of ordinary
        // cgroups needs.
        var parts: [(manifest: Manifest, cgroup: Cgroup?, source: String)] = []
        for manifest in manifests {
            guard let compiled = CompiledTemplate(manifest) else {
                parts.append((manifest, nil, ""))
                continue
            }
            let (instances, skipped) = compiled.renderedInstances(cgroups[compiled.template.source] ?? [])
            notices += skipped
            parts += instances.map { ($0.manifest, $0.cgroup, compiled.template.source.path) }
        }
        let whole = build(parts.map(\.manifest))
        guard case .failure = whole, parts.contains(where: { $0.cgroup != nil }) else { return (whole, notices) }
        // Something does not merge: instance by instance, against the fixed manifests and the instances
        // taken before it (the fixed manifests' own errors stay errors).
        var declared: [TreePath: (manifest: String, isMap: Bool)] = [:]
        for part in parts where part.cgroup == nil {
            for entry in part.manifest.entries where declared[entry.path] == nil {
                declared[entry.path] = (part.manifest.name, entry.isMap)
            }
        }
        for part in parts {
            guard let cgroup = part.cgroup else {
                rendered.append(part.manifest)
                continue
            }
            if let why = Self.unmergeable(part.manifest, declared) {
                notices.append(PlanNotice(
                    path: part.manifest.root,
                    message: "cgroup '\(cgroup.displayPath)' (id \(cgroup.id)) of \(part.source) gets no subtree: \(why)",
                    category: .cgroup))
                continue
            }
            for entry in part.manifest.entries { declared[entry.path] = (part.manifest.name, entry.isMap) }
            rendered.append(part.manifest)
        }
        return (build(rendered), notices)
    }

    /// Why `instance` cannot join what is `declared`, if it cannot.
    private static func unmergeable(_ instance: Manifest, _ declared: [TreePath: (manifest: String, isMap: Bool)]) -> String? {
        for entry in instance.entries {
            if entry.path.byteCount > Reserved.maxPathBytes {
                return "its path '\(entry.path)' is \(entry.path.byteCount) bytes long; the ownership ledger holds paths of up to \(Reserved.maxPathBytes) bytes"
            }
            if let other = declared[entry.path] {
                return "'\(entry.path)' is also declared by manifest \(other.manifest)"
            }
        }
        for ancestor in instance.root.ancestors where declared[ancestor]?.isMap == true {
            return "'\(instance.root)' would be beneath the map '\(ancestor)'"
        }
        return nil
    }
}
