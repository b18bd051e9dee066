import BPFTreeYAML

/// Turns parsed YAML documents into policies, reporting every problem with its location and field.
public struct PolicyDecoder: Sendable {
    public init() {}

    static let scopeFields = ["paths", "mapTypes", "programTypes", "attachTypes", "cgroups", "maxEntries", "maxMapMemory", "maxScopeMemory", "maxMode", "uids",
                              "gids", "onIncompatible", "allowOnIncompatible", "prune", "protect", "ignore"]

    /// Decodes every non-empty document; on any problem returns no policies and every diagnostic.
    public func decode(_ documents: [YAMLDocument]) -> Result<[Policy], ValidationFailure> {
        DocumentHeader.decodeAll(documents, decodeDocument)
    }

    private func decodeDocument(_ node: YAMLNode, _ reader: NodeReader) -> Policy? {
        guard let header = DocumentHeader.read(node, kind: "Policy", reader),
              let specNode = header.spec,
              let spec = reader.object(specNode, "spec", known: ["scopes"], required: ["scopes"]),
              let scopesNode = spec["scopes"], let items = reader.sequence(scopesNode, "spec.scopes") else { return nil }
        let name = header.name ?? "?"
        if items.isEmpty { reader.error("a policy needs at least one scope", at: scopesNode, "spec.scopes") }
        let scopes = items.enumerated().compactMap { index, item in
            decodeScope(item, policy: name, "spec.scopes[\(index)]", reader)
        }
        return Policy(name: name, location: node.location, scopes: scopes)
    }

    /// A list of type names, e.g. `mapTypes: [hash, array]`.
    private func names<Name: Hashable>(_ node: YAMLNode, _ field: String, _ what: String, known: [String],
                                       _ reader: NodeReader, _ parse: (String) -> Name?) -> Set<Name>? {
        guard let items = reader.sequence(node, field) else { return nil }
        var names: Set<Name> = []
        for (index, item) in items.enumerated() {
            guard let text = reader.string(item, "\(field)[\(index)]") else { continue }
            if let name = parse(text) {
                names.insert(name)
            } else {
                var message = "unknown \(what) '\(text)'"
                if let suggestion = closest(to: text, in: known) { message += "; did you mean '\(suggestion)'?" }
                reader.error(message, at: item, "\(field)[\(index)]")
            }
        }
        return names
    }

    private func decodeScope(_ node: YAMLNode, policy: String, _ field: String, _ reader: NodeReader) -> PolicyScope? {
        let before = reader.diagnostics.count
        guard let fields = reader.object(node, field, known: Self.scopeFields, required: ["paths"]) else { return nil }
        func f(_ name: String) -> String { join(field, name) }
        let paths = fields["paths"].map { patterns($0, f("paths"), reader) } ?? []
        if let pathsNode = fields["paths"], paths.isEmpty, reader.diagnostics.count == before {
            reader.error("a scope needs at least one path pattern", at: pathsNode, f("paths"))
        }
        var scope = PolicyScope(policy: policy, location: node.location, paths: paths)
        scope.mapTypes = fields["mapTypes"].flatMap {
            names($0, f("mapTypes"), "map type", known: MapType.allCases.map(\.rawValue), reader, MapType.init(rawValue:))
        }
        scope.cgroups = fields["cgroups"].map { node in
            var found: [CgroupPattern] = []
            guard let items = reader.sequence(node, f("cgroups")) else { return found }
            for (index, item) in items.enumerated() {
                guard let text = reader.string(item, "\(f("cgroups"))[\(index)]") else { continue }
                switch CgroupPattern.parse(text) {
                case .success(let pattern): found.append(pattern)
                case .failure(let error): reader.error(error.message, at: item, "\(f("cgroups"))[\(index)]")
                }
            }
            return found
        }
        scope.programTypes = fields["programTypes"].flatMap {
            names($0, f("programTypes"), "program type", known: ProgramType.allNames, reader, ProgramType.init(name:))
        }
        scope.attachTypes = fields["attachTypes"].flatMap {
            names($0, f("attachTypes"), "attach type", known: AttachType.names, reader, AttachType.init(name:))
        }
        scope.maxEntries = fields["maxEntries"].flatMap { reader.uint32($0, f("maxEntries")) }
        scope.maxMapMemory = fields["maxMapMemory"].flatMap { byteSize($0, f("maxMapMemory"), reader) }
        scope.maxScopeMemory = fields["maxScopeMemory"].flatMap { byteSize($0, f("maxScopeMemory"), reader) }
        scope.maxMode = fields["maxMode"].flatMap { reader.mode($0, f("maxMode")) }
        scope.uids = fields["uids"].flatMap { idRanges($0, f("uids"), reader) }
        scope.gids = fields["gids"].flatMap { idRanges($0, f("gids"), reader) }
        if let node = fields["onIncompatible"], let value = reader.choice(node, f("onIncompatible"), IncompatibleAction.self) {
            scope.onIncompatible = value
        }
        if let node = fields["allowOnIncompatible"], let items = reader.sequence(node, f("allowOnIncompatible")) {
            scope.allowOnIncompatible = Set(items.enumerated().compactMap { index, item in
                reader.choice(item, "\(f("allowOnIncompatible"))[\(index)]", IncompatibleAction.self)
            })
        }
        if let node = fields["prune"], let value = reader.choice(node, f("prune"), PruneMode.self) { scope.prune = value }
        scope.protect = fields["protect"].map { patterns($0, f("protect"), reader) } ?? []
        scope.ignore = fields["ignore"].map { patterns($0, f("ignore"), reader) }
            ?? PolicySet.defaultIgnore.map { PathPattern(trusted: $0) }
        return reader.diagnostics.count == before ? scope : nil
    }

    private func patterns(_ node: YAMLNode, _ field: String, _ reader: NodeReader) -> [PathPattern] {
        guard let items = reader.sequence(node, field) else { return [] }
        return items.enumerated().compactMap { index, item in
            let itemField = "\(field)[\(index)]"
            guard let text = reader.string(item, itemField) else { return nil }
            switch PathPattern.parse(text) {
            case .success(let pattern): return pattern
            case .failure(let error):
                reader.error(error.message, at: item, itemField)
                return nil
            }
        }
    }

    private static let units: [(String, UInt64)] = [
        ("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40),
        ("K", 1000), ("M", 1_000_000), ("G", 1_000_000_000), ("T", 1_000_000_000_000),
    ]

    /// Bytes: an integer, or a number with a unit such as `64Mi` (binary) or `500M` (decimal).
    private func byteSize(_ node: YAMLNode, _ field: String, _ reader: NodeReader) -> UInt64? {
        if case .scalar(let scalar) = node.value, !node.isNull {
            let text = scalar.text
            for (suffix, factor) in Self.units where text.hasSuffix(suffix) {
                let number = text.dropLast(suffix.count)
                if let value = UInt64(number), value.multipliedReportingOverflow(by: factor).overflow == false {
                    return value * factor
                }
            }
            if let value = UInt64(text.filter { $0 != "_" }) { return value }
        }
        reader.error("expected a byte size such as 65536, \"64Ki\" or \"16Mi\", found \(reader.describe(node))", at: node, field)
        return nil
    }

    /// A list of ids and `low-high` ranges.
    private func idRanges(_ node: YAMLNode, _ field: String, _ reader: NodeReader) -> [IDRange]? {
        guard let items = reader.sequence(node, field) else { return nil }
        var ranges: [IDRange] = []
        for (index, item) in items.enumerated() {
            let itemField = "\(field)[\(index)]"
            guard case .scalar(let scalar) = item.value, !item.isNull else {
                reader.error("expected an id or a range such as \"1000-1999\", found \(item.shapeName)", at: item, itemField)
                continue
            }
            let bounds = scalar.text.split(separator: "-", omittingEmptySubsequences: false).map { UInt32($0) }
            switch bounds.count {
            case 1 where bounds[0] != nil:
                ranges.append(IDRange(bounds[0] ?? 0, bounds[0] ?? 0))
            case 2 where bounds[0] != nil && bounds[1] != nil && (bounds[0] ?? 0) <= (bounds[1] ?? 0):
                ranges.append(IDRange(bounds[0] ?? 0, bounds[1] ?? 0))
            default:
                reader.error("'\(scalar.text)' is not an id or a range such as \"1000-1999\"", at: item, itemField)
            }
        }
        return ranges
    }
}
