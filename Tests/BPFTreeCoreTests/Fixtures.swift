import BPFTreeCore
import BPFTreeTestSupport
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

func desired(_ texts: String...) throws -> DesiredTree {
    var manifests: [Manifest] = []
    for (index, text) in texts.enumerated() {
        manifests += try decode(text, file: "m\(index).yaml").get()
    }
    return try DesiredTree.build(manifests).get()
}

/// Decodes policy texts (as p0.yaml, p1.yaml, ...) and merges them.
func policyResult(_ texts: [String]) -> Result<PolicySet, ValidationFailure> {
    var policies: [Policy] = []
    var diagnostics: [Diagnostic] = []
    for (index, text) in texts.enumerated() {
        do {
            switch PolicyDecoder().decode(try YAMLParser.parse(text, file: "p\(index).yaml")) {
            case .success(let decoded): policies += decoded
            case .failure(let failure): diagnostics += failure.diagnostics
            }
        } catch {
            diagnostics.append(Diagnostic(error.message, at: error.location, field: ""))
        }
    }
    return diagnostics.isEmpty ? PolicySet.build(policies) : .failure(ValidationFailure(diagnostics))
}

func policySet(_ texts: String...) throws -> PolicySet { try policyResult(texts).get() }

/// One scope over `paths` (a path pattern) that allows replacing and prunes what bpftree owns.
func replacingPolicy(_ paths: String) throws -> PolicySet {
    try policySet("""
        apiVersion: bpftree/v1
        kind: Policy
        metadata: {name: p}
        spec:
          scopes:
            - paths: ["\(paths)"]
              allowOnIncompatible: [replace]
              prune: owned
        """)
}

func policyDiagnostics(_ texts: String...) -> [Diagnostic] {
    switch policyResult(texts) {
    case .success: []
    case .failure(let failure): failure.diagnostics
    }
}
