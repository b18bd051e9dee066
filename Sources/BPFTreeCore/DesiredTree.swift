/// Every path the manifests declare, merged, with implicit parent directories added; sorted so that a
/// parent comes before its children.
public struct DesiredTree: Sendable {
    public private(set) var entries: [DesiredEntry]
    /// The manifest roots, whose subtrees must be observed.
    public private(set) var roots: [TreePath]
    /// Position of each path in `entries`.
    private var positions: [TreePath: Int]

    /// The entry declared (or implied) at `path`.
    public subscript(path: TreePath) -> DesiredEntry? { positions[path].map { entries[$0] } }
    public func declares(_ path: TreePath) -> Bool { positions[path] != nil }

    /// Merges manifests; two declarations of one path, or anything declared beneath a map, is an error.
    public static func build(_ manifests: [Manifest]) -> Result<DesiredTree, ValidationFailure> {
        var diagnostics: [Diagnostic] = []
        var byPath: [TreePath: DesiredEntry] = [:]
        var names: [String: Manifest] = [:]
        for manifest in manifests {
            if let other = names[manifest.name] {
                diagnostics.append(Diagnostic("manifest name '\(manifest.name)' is also used at \(other.location)",
                                              at: manifest.location, field: "metadata.name"))
            }
            names[manifest.name] = manifest
            for entry in manifest.entries {
                guard let origin = entry.origin else { continue }
                if let existing = byPath[entry.path], let first = existing.origin {
                    diagnostics.append(Diagnostic(
                        "path '\(entry.path)' is declared twice: here (manifest \(origin.manifest)) and at \(first.location) (manifest \(first.manifest), \(first.field))",
                        at: origin.location, field: origin.field))
                    continue
                }
                byPath[entry.path] = entry
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
        for entry in byPath.values {
            var ancestor = entry.path
            while !ancestor.isAnchor {
                ancestor = ancestor.parent
                guard let declared = byPath[ancestor] else { continue }
                if case .map = declared.kind, let origin = entry.origin, let parentOrigin = declared.origin {
                    diagnostics.append(Diagnostic(
                        "'\(entry.path)' lies beneath '\(ancestor)', which is declared as a map at \(parentOrigin.location)",
                        at: origin.location, field: origin.field))
                }
                break
            }
        }
        guard diagnostics.isEmpty else { return .failure(ValidationFailure(diagnostics)) }
        // Implicit parents, in manifest order (each manifest lists a parent before its children).
        for manifest in manifests {
            for entry in manifest.entries where !entry.path.isAnchor && byPath[entry.path.parent] == nil {
                for ancestor in entry.path.ancestors where byPath[ancestor] == nil {
                    var parent = DesiredEntry(path: ancestor, kind: .directory, mode: nil, origin: nil)
                    parent.implicitFor = entry.manifest
                    byPath[ancestor] = parent
                }
            }
        }
        let sorted = byPath.values.sorted { $0.path < $1.path }
        let roots = Set(manifests.map(\.root)).sorted()
        return .success(DesiredTree(sorted: sorted, roots: roots))
    }

    public init(entries: [DesiredEntry], roots: [TreePath]) {
        self.init(sorted: entries.sorted { $0.path < $1.path }, roots: roots)
    }

    private init(sorted: [DesiredEntry], roots: [TreePath]) {
        self.entries = sorted
        self.roots = roots
        positions = Dictionary(uniqueKeysWithValues: sorted.enumerated().map { ($1.path, $0) })
    }
}
