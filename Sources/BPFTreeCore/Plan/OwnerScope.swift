/// Which ledger records a run may prune, replace and settle: those of its own manifest set. Several sets
/// share one anchor (a runtime, per-job teams, containers), each naming its owner with `--owner` or
/// `metadata.owner`; a run that names none owns, per manifest, what its manifests made. So no set prunes
/// or takes over another's entries (as kubectl's ApplySet and Terraform's state keep sets apart).
public struct OwnerScope: Hashable, Sendable {
    /// The owner every record this run writes names; nil when the run named none.
    public var owner: String?
    /// `metadata.name` of every manifest of the run.
    public var manifests: Set<String>

    public init(owner: String?, manifests: Set<String>) {
        self.owner = owner
        self.manifests = manifests
    }

    /// Whether `record` is this run's: of its owner, or named by no owner (a run without one, or a record
    /// from before owners) and made by one of its manifests, which an owner then takes over. A temporary
    /// name is anyone's to remove: only bpftree makes one, and only for the length of a run.
    public func claims(_ record: LedgerRecord) -> Bool {
        if record.state == .temporary { return true }
        return record.owner.isEmpty ? manifests.contains(record.manifest) : record.owner == owner
    }

    /// The owner of another set's record, as messages name it.
    public static func describe(_ record: LedgerRecord) -> String {
        record.owner.isEmpty ? "manifest '\(record.manifest)' (a run that named no owner)" : "owner '\(record.owner)'"
    }

    /// The scope of a run of `manifests`: its owner is `flag` (`--owner`) or the one its manifests name in
    /// `metadata.owner`. A run has one owner: a manifest that names another, or none while others name
    /// one, is an error at its place.
    public static func of(_ manifests: [Manifest], flag: String?) -> Result<OwnerScope, ValidationFailure> {
        let names = Set(manifests.map(\.name))
        let named = manifests.filter { $0.owner != nil }
        guard let owner = flag ?? named.first?.owner else { return .success(OwnerScope(owner: nil, manifests: names)) }
        var diagnostics: [Diagnostic] = []
        let source = flag != nil ? "--owner" : named.first.map { "metadata.owner at \($0.ownerLocation.map(\.description) ?? $0.name)" } ?? ""
        for manifest in manifests {
            if let other = manifest.owner, other != owner {
                diagnostics.append(Diagnostic("owner '\(other)' differs from '\(owner)' (\(source)); a run has one owner",
                                              at: manifest.ownerLocation ?? manifest.location, field: "metadata.owner"))
            } else if manifest.owner == nil && flag == nil {
                diagnostics.append(Diagnostic("names no owner, while \(source) names '\(owner)'; a run has one owner: name it here too, or give --owner",
                                              at: manifest.location, field: "metadata"))
            }
        }
        return diagnostics.isEmpty ? .success(OwnerScope(owner: owner, manifests: names)) : .failure(ValidationFailure(diagnostics))
    }

    /// What `--owner` and `metadata.owner` accept: 1 to 63 letters, digits, '-' or '_' (as `metadata.name`).
    public static func problem(withName name: String) -> String? {
        name.isEmpty || name.utf8.count > 63 || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
            ? "owner '\(name)' must be 1 to 63 letters, digits, '-' or '_'" : nil
    }
}
