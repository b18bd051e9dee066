import BPFTreeYAML

/// Every path the manifests declare, merged, with implicit parent directories added; sorted so that a
/// parent comes before its children. Never changed once built: what the kernel says about its programs
/// and links is kept apart (`ResolvedTargets`).
public struct DesiredTree: Sendable {
    public let entries: [DesiredEntry]
    /// The manifest roots, whose subtrees must be observed.
    public let roots: [TreePath]
    /// Position of each path in `entries`.
    private var positions: [TreePath: Int]
    /// Maps that declared programs are bound to (their live id is always inspected).
    public private(set) var boundMaps: Set<TreePath> = []
    /// Whether any program or link is declared.
    public var hasProgramsOrLinks: Bool {
        entries.contains {
            switch $0.kind {
            case .program, .link: true
            case .directory, .map: false
            }
        }
    }

    /// The entry declared (or implied) at `path`.
    public subscript(path: TreePath) -> DesiredEntry? { positions[path].map { entries[$0] } }
    public func declares(_ path: TreePath) -> Bool { positions[path] != nil }

    /// Where `path` is declared; for an implicit parent, the first declaration beneath it (the one that
    /// needs it), so that every problem with a declared path names a place in a manifest.
    public func origin(for path: TreePath) -> Origin? {
        guard let position = positions[path] else { return nil }
        if let origin = entries[position].origin { return origin }
        for entry in entries[(position + 1)...] {
            guard entry.path.isDescendant(of: path) else { break }
            if let origin = entry.origin { return origin }
        }
        return nil
    }
    /// The shape fingerprint of the map declared at `path`, nil when no map is.
    public func mapFingerprint(at path: TreePath) -> UInt64? {
        guard let position = positions[path], case .map(let spec) = entries[position].kind else { return nil }
        return spec.fingerprint
    }

    /// Merges manifests; two declarations of one path, or anything declared beneath a map, is an error.
    /// Entries are moved out of `manifests` as they are merged, so a large tree is held once, not twice.
    public static func build(_ manifests: consuming [Manifest]) -> Result<DesiredTree, ValidationFailure> {
        var diagnostics: [Diagnostic] = []
        var groups: [[DesiredEntry]] = []
        groups.reserveCapacity(manifests.count)
        var names: [String: SourceLocation] = [:]
        var roots: Set<TreePath> = []
        for index in manifests.indices {
            let manifest = manifests[index]
            // The instances of one template share its name and its location.
            if let other = names[manifest.name], other != manifest.location {
                diagnostics.append(Diagnostic("manifest name '\(manifest.name)' is also used at \(other)",
                                              at: manifest.location, field: "metadata.name"))
            }
            names[manifest.name] = manifest.location
            roots.insert(manifest.root)
            groups.append(manifest.entries)
            manifests[index].entries = []
        }
        return merge(groups, roots: roots, implicit: [:], diagnostics: diagnostics)
    }

    /// Merges declared entries (in manifest order; entries without an origin are left out) with the
    /// checks of `build`, and adds implicit parents: every one in `implicit` (a view keeps those of the
    /// tree it is cut from, even where it holds nothing beneath), then one for each missing ancestor,
    /// made for the first entry that needs it.
    /// `groups`: one per manifest, each let go once merged, so that a large tree is held once.
    static func merge(_ groups: consuming [[DesiredEntry]], roots: Set<TreePath>, implicit: [TreePath: DesiredEntry],
                      diagnostics found: [Diagnostic]) -> Result<DesiredTree, ValidationFailure> {
        var diagnostics = found
        var entries: [DesiredEntry] = []
        let total = groups.reduce(0) { $0 + $1.count }
        entries.reserveCapacity(total)
        var positions: [TreePath: Int] = Dictionary(minimumCapacity: total)
        for group in groups.indices {
            let declared = groups[group]
            groups[group] = []
            for entry in declared {
                guard let origin = entry.origin else { continue }
                if let existing = positions[entry.path], let first = entries[existing].origin {
                    diagnostics.append(Diagnostic(
                        "path '\(entry.path)' is declared twice: here (manifest \(origin.manifest)) and at \(first.location) (manifest \(first.manifest), \(first.field))",
                        at: origin.location, field: origin.field))
                    continue
                }
                positions[entry.path] = entries.count
                entries.append(entry)
                let length = entry.path.byteCount
                if length > Reserved.maxPathBytes {
                    diagnostics.append(Diagnostic(
                        "path '\(entry.path)' is \(length) bytes long; the ownership ledger holds anchor-relative paths of up to \(Reserved.maxPathBytes) bytes",
                        at: origin.location, field: origin.field))
                }
            }
        }
        // Nothing may be declared beneath a map. The nearest declared ancestor decides: a directory there
        // was checked the same way.
        for entry in entries {
            var ancestor = entry.path
            while !ancestor.isAnchor {
                ancestor = ancestor.parent
                guard let position = positions[ancestor] else { continue }
                let declared = entries[position]
                if declared.kind != .directory, let origin = entry.origin, let parentOrigin = declared.origin {
                    diagnostics.append(Diagnostic(
                        "'\(entry.path)' lies beneath '\(ancestor)', which is declared as a \(declared.kind.name) at \(parentOrigin.location)",
                        at: origin.location, field: origin.field))
                }
                break
            }
        }
        var bound: Set<TreePath> = []
        diagnostics += references(entries, positions, bound: &bound)
        guard diagnostics.isEmpty else { return .failure(ValidationFailure(diagnostics)) }
        for (path, parent) in implicit where positions[path] == nil {
            positions[path] = entries.count
            entries.append(parent)
        }
        // Implicit parents, in manifest order (each manifest lists a parent before its children).
        for index in entries.indices {
            let entry = entries[index]
            guard !entry.path.isAnchor, positions[entry.path.parent] == nil else { continue }
            for ancestor in entry.path.ancestors where positions[ancestor] == nil {
                var parent = DesiredEntry(path: ancestor, kind: .directory, mode: nil, origin: nil)
                parent.implicitFor = entry.manifest
                positions[ancestor] = entries.count
                entries.append(parent)
            }
        }
        var tree = DesiredTree(merged: entries, positions: positions, roots: roots.sorted())
        tree.boundMaps = bound
        return .success(tree)
    }

    /// A program's map bindings must name declared maps, and a link's program a declared program.
    private static func references(_ entries: [DesiredEntry], _ positions: [TreePath: Int],
                                   bound: inout Set<TreePath>) -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        func declared(_ path: TreePath) -> DesiredEntry.Kind? { positions[path].map { entries[$0].kind } }
        for entry in entries {
            guard let origin = entry.origin else { continue }
            switch entry.kind {
            case .program(let spec):
                for binding in spec.maps {
                    bound.insert(binding.path)
                    guard case .map? = declared(binding.path) else {
                        let what = declared(binding.path).map { "a \($0.name)" } ?? "not declared"
                        diagnostics.append(Diagnostic("map \(binding.name) is bound to '\(binding.path)', which is \(what); bind it to a declared map",
                                                      at: binding.location, field: "\(origin.field).program.maps.\(binding.name)"))
                        continue
                    }
                }
            case .link(let spec):
                guard case .program? = declared(spec.program) else {
                    let what = declared(spec.program).map { "a \($0.name)" } ?? "not declared"
                    diagnostics.append(Diagnostic("the link's program '\(spec.program)' is \(what); name a declared program entry",
                                                  at: origin.location, field: "\(origin.field).link.program"))
                    continue
                }
            case .directory, .map:
                continue
            }
        }
        return diagnostics
    }

    public init(entries: [DesiredEntry], roots: [TreePath]) {
        self.init(merged: entries, positions: nil, roots: roots)
    }

    /// Sorts `merged` by path unless it already is (manifests usually list paths in order).
    private init(merged: [DesiredEntry], positions: [TreePath: Int]?, roots: [TreePath]) {
        var entries = merged
        let sorted = zip(entries, entries.dropFirst()).allSatisfy { $0.path < $1.path }
        // Sorting positions moves integers, not entries.
        if !sorted { entries = entries.indices.sorted { merged[$0].path < merged[$1].path }.map { merged[$0] } }
        self.entries = entries
        self.roots = roots
        if let positions, sorted {
            self.positions = positions
        } else {
            var positions: [TreePath: Int] = Dictionary(minimumCapacity: entries.count)
            for (index, entry) in entries.enumerated() { positions[entry.path] = index }
            self.positions = positions
        }
    }
}
