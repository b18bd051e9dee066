import BPFTreeCore
import BPFTreeYAML

/// Decodes manifest text as `file`, the way `bpftree` does, without touching any file.
func decode(_ text: String, file: String = "m.yaml") -> Result<[Manifest], ValidationFailure> {
    do {
        return ManifestDecoder(pageSize: 4096).decode(try YAMLParser.parse(text, file: file))
    } catch {
        return .failure(ValidationFailure([Diagnostic(error.message, at: error.location, field: "")]))
    }
}

/// The diagnostics of text that must not decode.
func diagnostics(_ text: String, file: String = "m.yaml") -> [Diagnostic] {
    switch decode(text, file: file) {
    case .success: []
    case .failure(let failure): failure.diagnostics
    }
}

/// A manifest with `entries` (YAML, indented for `spec.entries`) under root `jobs/A`.
func manifest(_ entries: String, name: String = "job-a", root: String = "jobs/A") -> String {
    """
    apiVersion: bpftree/v1
    kind: Tree
    metadata: {name: \(name)}
    spec:
      root: \(root)
      entries:
    \(entries)
    """
}

func desired(_ texts: String...) throws -> DesiredTree {
    var manifests: [Manifest] = []
    for (index, text) in texts.enumerated() {
        manifests += try decode(text, file: "m\(index).yaml").get()
    }
    return try DesiredTree.build(manifests).get()
}
