import BPFTreeYAML

/// Turns parsed YAML documents into manifests, reporting every problem with its location and field.
public struct ManifestDecoder: Sendable {
    /// Ring buffer sizes must be multiples of it.
    public var pageSize: Int

    public init(pageSize: Int) { self.pageSize = pageSize }

    /// Decodes every non-empty document; on any problem returns no manifests and every diagnostic.
    public func decode(_ documents: [YAMLDocument]) -> Result<[Manifest], ValidationFailure> {
        DocumentHeader.decodeAll(documents, decodeDocument)
    }

    private func decodeDocument(_ node: YAMLNode, _ reader: NodeReader) -> Manifest? {
        guard let header = DocumentHeader.read(node, kind: "Tree", reader) else { return nil }
        let name = header.name
        guard let specNode = header.spec,
              let spec = reader.object(specNode, "spec", known: ["root", "mode", "uid", "gid", "adopt", "entries", "forEachCgroup"]) else { return nil }

        let source = spec["forEachCgroup"].flatMap { cgroupSource($0, reader) }
        var root = TreePath.anchor
        var template: CgroupTemplate?
        if let rootNode = spec["root"], let text = reader.string(rootNode, "spec.root") {
            if spec["forEachCgroup"] != nil {
                // Entries are decoded beneath the root as written; each instance moves them to its own.
                if let problem = CgroupTemplate.problem(withRoot: text) {
                    reader.error(problem, at: rootNode, "spec.root")
                } else if let source {
                    root = TreePath(joined: text)
                    template = CgroupTemplate(source: source, root: text)
                }
            } else if text.contains("{cgroup.") {
                reader.error("placeholders such as {cgroup.id} need spec.forEachCgroup", at: rootNode, "spec.root")
            } else {
                switch TreePath.parse(relative: text) {
                case .success(let path): root = path
                case .failure(let problem): reader.error(problem.message, at: rootNode, "spec.root")
                }
            }
        } else if let node = spec["forEachCgroup"] {
            reader.error("forEachCgroup needs a spec.root with {cgroup.id} or {cgroup.name}", at: node, "spec.forEachCgroup")
        }
        let manifestName = name ?? "?"
        let origin = Origin(manifest: manifestName, location: specNode.location, field: "spec")
        var entries: [DesiredEntry] = []
        let (mode, owner) = attributes(entry: spec, block: Fields(), "spec", "spec", reader)
        var rootEntry = DesiredEntry(path: root, kind: .directory,
                                     mode: mode ?? (root.isAnchor ? nil : Defaults.directoryMode),
                                     owner: owner, origin: origin)
        rootEntry.adopt = spec["adopt"].flatMap { reader.bool($0, "spec.adopt") } ?? false
        entries.append(rootEntry)
        if let entriesNode = spec["entries"] {
            let pins = PinSpecDecoder(reader: reader, template: spec["forEachCgroup"] != nil)
            decodeEntries(entriesNode, under: root, "spec.entries", manifestName, reader, pins, into: &entries)
        }
        for index in entries.indices {
            // Programs of one object load together within their manifest (and, rendered, their instance).
            if case .program(var program) = entries[index].kind {
                program.scope = manifestName
                entries[index].kind = .program(program)
            }
        }
        var manifest = Manifest(name: manifestName, location: node.location, root: root, entries: entries, forEachCgroup: template)
        (manifest.owner, manifest.ownerLocation) = (header.owner?.name, header.owner?.location)
        return manifest
    }

    /// `forEachCgroup: {path: jobs/A, depth: 1}`.
    private func cgroupSource(_ node: YAMLNode, _ reader: NodeReader) -> CgroupSource? {
        let field = "spec.forEachCgroup"
        guard let fields = reader.object(node, field, known: ["path", "depth"], required: ["path"]),
              let pathNode = fields["path"], let path = reader.string(pathNode, join(field, "path")) else { return nil }
        var depth = 1
        if let depthNode = fields["depth"] {
            guard let value = reader.unsigned(depthNode, join(field, "depth"), max: UInt64(CgroupSource.maxDepth)) else { return nil }
            guard value >= 1 else {
                reader.error("depth must be 1 (the children of path) to \(CgroupSource.maxDepth)", at: depthNode, join(field, "depth"))
                return nil
            }
            depth = Int(value)
        }
        let parts = path.split(separator: "/")
        if path.isEmpty || parts.contains(where: { $0 == ".." || $0 == "." }) {
            reader.error("'\(path)' must name a cgroup directory, without '.' or '..' segments", at: pathNode, join(field, "path"))
            return nil
        }
        return CgroupSource(path: path, depth: depth)
    }

    private func decodeEntries(_ node: YAMLNode, under parent: TreePath, _ field: String, _ manifest: String,
                               _ reader: NodeReader, _ pins: PinSpecDecoder, into entries: inout [DesiredEntry]) {
        if node.isNull { return }
        guard let pairs = reader.mapping(node, field) else { return }
        for pair in pairs { decodePair(pair, parent, field, manifest, reader, pins, into: &entries) }
    }

    private func decodePair(_ pair: (key: String, keyNode: YAMLNode, value: YAMLNode), _ parent: TreePath, _ field: String,
                            _ manifest: String, _ reader: NodeReader, _ pins: PinSpecDecoder,
                            into entries: inout [DesiredEntry]) {
        let entryField = join(field, pair.key)
        if let problem = TreePath.problem(withComponent: pair.key) {
            reader.error(problem, at: pair.keyNode, entryField)
            return
        }
        decodeEntry(pair.value, name: pair.key, at: pair.keyNode.location, path: parent.appending(pair.key), entryField,
                    manifest, reader, pins, into: &entries)
    }

    private static let attributeFields = ["mode", "uid", "gid"]
    private static let entryFields = ["map", "directory", "program", "link", "adopt", "onIncompatible"] + attributeFields
    private static let kinds = ["map", "directory", "program", "link"]
    private static let mapFields = MapSpecDecoder.fields + attributeFields
    private static let programFields = PinSpecDecoder.programFields + attributeFields
    private static let linkFields = PinSpecDecoder.linkFields + attributeFields
    private static let directoryFields = ["entries"] + attributeFields

    private func decodeEntry(_ node: YAMLNode, name: String, at location: SourceLocation, path: TreePath,
                             _ field: String, _ manifest: String, _ reader: NodeReader, _ pins: PinSpecDecoder,
                             into entries: inout [DesiredEntry]) {
        guard let fields = reader.object(node, field, known: Self.entryFields)
        else { return }
        let origin = Origin(manifest: manifest, location: location, field: field)
        let adopt = fields["adopt"].flatMap { reader.bool($0, join(field, "adopt")) } ?? false
        var onIncompatible: IncompatibleAction?
        if let node = fields["onIncompatible"] {
            if fields["directory"] != nil {
                reader.error("onIncompatible applies to maps, programs and links", at: node, join(field, "onIncompatible"))
            } else {
                onIncompatible = reader.choice(node, join(field, "onIncompatible"), IncompatibleAction.self)
            }
        }
        let given = Self.kinds.filter { fields[$0] != nil }
        guard given.count == 1 else {
            reader.error(given.isEmpty ? "an entry needs one of 'map', 'directory', 'program' or 'link'"
                                       : "an entry is one of 'map', 'directory', 'program' or 'link', not \(given.map { "'\($0)'" }.joined(separator: " and "))",
                         at: node, field)
            return
        }
        if let pinNode = fields["program"] ?? fields["link"] {
            let isProgram = fields["program"] != nil
            let pinField = join(field, isProgram ? "program" : "link")
            guard let block = reader.object(pinNode, pinField, known: isProgram ? Self.programFields : Self.linkFields,
                                            required: isProgram ? ["object", "name"] : ["program"]) else { return }
            let (mode, owner) = attributes(entry: fields, block: block, field, pinField, reader)
            let kind: DesiredEntry.Kind?
            if isProgram {
                kind = pins.program(block, node: pinNode, pinField).map { .program($0) }
            } else {
                kind = pins.link(block, node: pinNode, pinField).map { .link($0) }
            }
            if let kind {
                entries.append(DesiredEntry(path: path, kind: kind, mode: mode ?? Defaults.pinMode, owner: owner,
                                            origin: origin, adopt: adopt, onIncompatible: onIncompatible))
            }
            return
        }
        switch (fields["map"], fields["directory"]) {
        case (nil, nil), (.some, .some):
            return
        case (let mapNode?, nil):
            let mapField = join(field, "map")
            guard let block = reader.object(mapNode, mapField, known: Self.mapFields,
                                            required: ["type"]) else { return }
            let (mode, owner) = attributes(entry: fields, block: block, field, mapField, reader)
            let decoder = MapSpecDecoder(pageSize: pageSize, reader: reader)
            if let spec = decoder.decode(block, node: mapNode, entryName: name, mapField) {
                entries.append(DesiredEntry(path: path, kind: .map(spec), mode: mode ?? Defaults.pinMode, owner: owner,
                                            origin: origin, adopt: adopt, onIncompatible: onIncompatible))
            }
        case (nil, let directoryNode?):
            let directoryField = join(field, "directory")
            var block: Fields = Fields()
            if !directoryNode.isNull {
                guard let fields = reader.object(directoryNode, directoryField, known: Self.directoryFields)
                else { return }
                block = fields
            }
            let (mode, owner) = attributes(entry: fields, block: block, field, directoryField, reader)
            entries.append(DesiredEntry(path: path, kind: .directory, mode: mode ?? Defaults.directoryMode, owner: owner,
                                        origin: origin, adopt: adopt))
            if let children = block["entries"] {
                decodeEntries(children, under: path, join(directoryField, "entries"), manifest, reader, pins, into: &entries)
            }
        }
    }

    /// mode/uid/gid may sit on the entry or inside its map/directory block, not in both.
    private func attributes(entry: Fields, block: Fields, _ entryField: String,
                            _ blockField: String, _ reader: NodeReader) -> (UInt32?, Owner) {
        /// The node of one attribute and its field path, from wherever it was given.
        func chosen(_ name: String) -> (node: YAMLNode, field: String)? {
            switch (entry[name], block[name]) {
            case (let a?, let b?):
                reader.error("'\(name)' is given twice (also at line \(a.location.line)); keep one", at: b, join(blockField, name))
                return nil
            case (let a?, nil): return (a, join(entryField, name))
            case (nil, let b?): return (b, join(blockField, name))
            case (nil, nil): return nil
            }
        }
        let mode = chosen("mode").flatMap { reader.mode($0.node, $0.field) }
        let limit = UInt64(UInt32.max - 1)
        let uid = chosen("uid").flatMap { reader.unsigned($0.node, $0.field, max: limit) }.map(UInt32.init)
        let gid = chosen("gid").flatMap { reader.unsigned($0.node, $0.field, max: limit) }.map(UInt32.init)
        return (mode, Owner(uid: uid, gid: gid))
    }
}
