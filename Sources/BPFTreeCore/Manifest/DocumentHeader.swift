import BPFTreeYAML

/// The envelope every bpftree document shares: `apiVersion`, `kind`, `metadata.name`, `spec`.
struct DocumentHeader {
    var name: String?
    var spec: YAMLNode?
    /// `metadata.owner` (a manifest's only), with where it is written.
    var owner: (name: String, location: SourceLocation)?

    static let apiVersion = "bpftree/v1"
    /// Which option loads each kind, for the message when a document is given to the wrong one.
    static let loaders = ["Tree": "-f/--file", "Policy": "--policy"]

    /// Decodes every non-empty document with `decode`; on any problem returns nothing and every diagnostic.
    static func decodeAll<Decoded>(_ documents: [YAMLDocument], _ decode: (YAMLNode, NodeReader) -> Decoded?)
        -> Result<[Decoded], ValidationFailure> {
        let reader = NodeReader()
        var decoded: [Decoded] = []
        for document in documents {
            guard let root = document.root, !root.isNull else { continue }
            if let value = decode(root, reader) { decoded.append(value) }
        }
        return reader.diagnostics.isEmpty ? .success(decoded) : .failure(ValidationFailure(reader.diagnostics))
    }

    /// Reads the envelope of a document that must be of `kind`; reports every problem.
    static func read(_ node: YAMLNode, kind expected: String, _ reader: NodeReader) -> DocumentHeader? {
        let metadataFields = expected == "Tree" ? ["name", "owner"] : ["name"]
        guard let top = reader.object(node, "", known: ["apiVersion", "kind", "metadata", "spec"],
                                      required: ["apiVersion", "kind", "metadata", "spec"]) else { return nil }
        if let versionNode = top["apiVersion"], let version = reader.string(versionNode, "apiVersion"),
           version != apiVersion {
            reader.error("unsupported apiVersion '\(version)'; expected '\(apiVersion)'", at: versionNode, "apiVersion")
        }
        if let kindNode = top["kind"], let kind = reader.string(kindNode, "kind"), kind != expected {
            var message = "unknown kind '\(kind)'; expected '\(expected)'"
            if kind.lowercased() == expected.lowercased() {
                message += " (kinds are case-sensitive)"
            } else if let option = loaders[kind] {
                message = "a '\(kind)' document here; \(kind) documents are loaded with \(option), this option takes '\(expected)'"
            }
            reader.error(message, at: kindNode, "kind")
        }
        var header = DocumentHeader(name: nil, spec: top["spec"])
        if let metadataNode = top["metadata"],
           let metadata = reader.object(metadataNode, "metadata", known: metadataFields, required: ["name"]),
           let nameNode = metadata["name"], let text = reader.string(nameNode, "metadata.name") {
            if text.isEmpty || text.count > 63 || !text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
                reader.error("name '\(text)' must be 1 to 63 letters, digits, '-' or '_'", at: nameNode, "metadata.name")
            } else {
                header.name = text
            }
            if let ownerNode = metadata["owner"], let owner = reader.string(ownerNode, "metadata.owner") {
                if let problem = OwnerScope.problem(withName: owner) {
                    reader.error(problem, at: ownerNode, "metadata.owner")
                } else {
                    header.owner = (owner, ownerNode.location)
                }
            }
        }
        return header
    }
}
