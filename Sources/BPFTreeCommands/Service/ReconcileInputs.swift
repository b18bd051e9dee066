import BPFTreeCore
import BPFTreeKernel
import Logging

/// The manifests and policies a reconcile pass works from: read again every pass, decoded only when
/// their bytes changed, and after a bad edit the last set that loaded (the error is logged, and the
/// service goes on).
struct ReconcileInputs {
    var manifests: [String]
    var policies: [String]
    /// `--owner`, if given.
    var owner: String?
    var loader = Pipeline.loader()

    /// The last set that loaded, with the digest of its files.
    private var good: (inputs: ManifestLoader.Inputs, decoded: ManifestLoader.Decoded, digest: [UInt8])?
    /// The digest of the last set that did not, so its errors are logged once per edit.
    private var rejected: [UInt8]?

    init(manifests: [String], policies: [String], owner: String?) {
        self.manifests = manifests
        self.policies = policies
        self.owner = owner
    }

    /// What this pass should apply; `rejected` is true when the files on disk do not load and the last
    /// good set stands in. nil: they do not load and nothing has loaded before.
    mutating func current(logger: Logger) -> (inputs: ManifestLoader.Inputs, decoded: ManifestLoader.Decoded, rejected: Bool)? {
        let inputs = loader.read(manifests: manifests, policies: policies)
        let digest = TreeStamp.inputsDigest(settings: [], files: inputs.all)
        if inputs.diagnostics.isEmpty, let good, good.digest == digest { return (good.inputs, good.decoded, false) }
        switch validate(inputs) {
        case .success(let decoded):
            if good != nil { logger.info("manifests or policies changed; using the new set", metadata: ["files": "\(inputs.all.count)"]) }
            good = (inputs, decoded, digest)
            rejected = nil
            return (inputs, decoded, false)
        case .failure(let failure):
            if rejected != digest {
                rejected = digest
                for diagnostic in failure.diagnostics {
                    logger.error("\(diagnostic.location): \(diagnostic.message)", metadata: diagnostic.field.isEmpty ? [:] : ["field": "\(diagnostic.field)"])
                }
            }
            guard let good else {
                logger.error("manifests or policies do not load (\(failure.diagnostics.count) problem\(failure.diagnostics.count == 1 ? "" : "s")) and none loaded before; nothing is applied")
                return nil
            }
            logger.warning("manifests or policies do not load (\(failure.diagnostics.count) problem\(failure.diagnostics.count == 1 ? "" : "s")); keeping the last good set")
            return (good.inputs, good.decoded, true)
        }
    }

    /// Decodes `inputs` and merges them as far as they go without cgroups (templates render nothing), so
    /// that an edit that declares a path twice or breaks a policy is refused before it is used.
    private func validate(_ inputs: ManifestLoader.Inputs) -> Result<ManifestLoader.Decoded, ValidationFailure> {
        let decoded = loader.decode(inputs, policyPaths: policies, owner: owner)
        guard case .success(let value) = decoded else { return decoded }
        switch DesiredTree.build(rendering: value.manifests, cgroups: [:]).tree {
        case .failure(let failure): return .failure(failure)
        case .success(let tree):
            let violations = PolicyCheck.violations(tree, value.policies, possibleCPUs: Machine.possibleCPUs,
                                                     machineMemory: Machine.physicalMemory)
            return violations.isEmpty ? decoded : .failure(ValidationFailure(violations))
        }
    }
}
