/// Every path the manifests declare, merged, with implicit parent directories added; sorted so that a
/// parent comes before its children.
public struct DesiredTree: Sendable {
    public private(set) var entries: [DesiredEntry]
    /// The manifest roots, whose subtrees must be observed.
    public private(set) var roots: [TreePath]

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
                let length = entry.path.components.joined(separator: "/").utf8.count
                if length > Reserved.maxPathBytes {
                    diagnostics.append(Diagnostic(
                        "path '\(entry.path)' is \(length) bytes long; the ownership ledger holds anchor-relative paths of up to \(Reserved.maxPathBytes) bytes",
                        at: origin.location, field: origin.field))
                }
            }
        }
        // Nothing may be declared beneath a map.
        for entry in byPath.values {
            for ancestor in entry.path.ancestors {
                if let parent = byPath[ancestor], case .map = parent.kind, let origin = entry.origin,
                   let parentOrigin = parent.origin {
                    diagnostics.append(Diagnostic(
                        "'\(entry.path)' lies beneath '\(ancestor)', which is declared as a map at \(parentOrigin.location)",
                        at: origin.location, field: origin.field))
                }
            }
        }
        guard diagnostics.isEmpty else { return .failure(ValidationFailure(diagnostics)) }
        for entry in byPath.values.sorted(by: { $0.path < $1.path }) {
            for ancestor in entry.path.ancestors where byPath[ancestor] == nil {
                var parent = DesiredEntry(path: ancestor, kind: .directory, mode: nil, origin: nil)
                parent.implicitFor = entry.manifest
                byPath[ancestor] = parent
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
    }
}
