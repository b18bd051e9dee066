import BPFTreeCore
import BPFTreeKernel

/// A plan made from a full observation of the declared tree: validate everything (render the templates
/// for the cgroups there are, check delegation, resolve programs and links, check policies), read the
/// ledger, observe, plan; and the stamp written when the tree it leaves is converged.
extension Pipeline {
    struct Full {
        var desired: DesiredTree
        /// What loading its programs gave and what its links' targets are.
        var targets: ResolvedTargets
        var policies: PolicySet
        var observed: Observed
        /// The templates' sources, without repeats and sorted, as the stamp records them.
        var cgroupSources: [CgroupSource]
        /// About cgroups that got no subtree; part of every plan made from `desired`.
        var notices: [PlanNotice]
    }

    /// One observation of the tree and the plan made from it.
    struct Observed {
        var live: LiveTree
        var roots: [TreePath]
        var plan: Plan
        var ledger: Ledger
    }

    /// What the manifests declare, rendered for the cgroups there are now and checked (delegation, programs
    /// and links, policies).
    struct Validated {
        var desired: DesiredTree
        /// What loading its programs gave and what its links' targets are (`PinResolver`).
        var targets: ResolvedTargets
        var policies: PolicySet
        /// The templates' sources, without repeats and sorted.
        var cgroupSources: [CgroupSource]
        var scan: CgroupScan
        /// About cgroups that got no subtree.
        var notices: [PlanNotice]
        /// `TreeStamp.inputsDigest` of the files, settings and the cgroups found.
        var inputsDigest: [UInt8]
        /// The ledger records the run may prune, replace and settle.
        var scope: OwnerScope
    }

    /// Renders and checks `decoded`; nil when anything is wrong (added to `diagnostics` or `errors`).
    /// `stampScan`: the cgroups the stamp's sources hold, reused (with their digest) when the templates
    /// have the same sources.
    static func validate(_ result: Result<ManifestLoader.Decoded, ValidationFailure>, token: BPFToken?,
                                 stampScan: StampScan?, cache: ValidationCache?, filesDigest: [UInt8],
                                 images: ImageStore?, diagnostics: inout [Diagnostic],
                                 errors: inout [KernelError]) -> Validated? {
        let decoded: ManifestLoader.Decoded
        switch result {
        case .failure(let failure):
            diagnostics += failure.diagnostics
            return nil
        case .success(let value): decoded = value
        }
        do throws(KernelError) {
            let sources = Array(Set(decoded.cgroupSources)).sorted()
            let reused = stampScan.flatMap { $0.sources == sources ? $0 : nil }
            let scan = if let reused { reused.scan } else { try CgroupScanner.scan(sources) }
            let digest = reused?.digest ?? TreeStamp.inputsDigest(files: filesDigest, cgroups: scan.digestLines)
            let key = cache.map { _ in ValidationCache.key(inputs: digest, manifests: decoded.manifests, token: token) }
            if let cache, let key, let known = cache.validated(for: key) { return known }
            let (desired, notices) = DesiredTree.build(rendering: decoded.manifests, cgroups: scan.cgroups)
            guard case .success(let tree) = desired else {
                if case .failure(let failure) = desired { diagnostics += failure.diagnostics }
                return nil
            }
            let found = diagnostics.count
            let delegation = token?.delegation
            if let delegation { diagnostics += DelegationCheck.violations(tree, delegation) }
            var targets = ResolvedTargets()
            if tree.hasProgramsOrLinks, diagnostics.count == found {
                // Loads each program once (before anything changes) and finds each link's cgroup.
                diagnostics += PinResolver.resolve(tree, into: &targets, delegation: delegation, images: images)
            }
            diagnostics += PolicyCheck.violations(tree, decoded.policies, possibleCPUs: Machine.possibleCPUs,
                                                  machineMemory: Machine.physicalMemory, targets: targets)
            let validated = Validated(desired: tree, targets: targets, policies: decoded.policies, cgroupSources: sources, scan: scan,
                                      notices: notices, inputsDigest: digest, scope: decoded.scope)
            if diagnostics.count == found, let cache, let key { cache.store(validated, for: key) }
            return validated
        } catch {
            errors.append(error)
            return nil
        }
    }

    /// A reconcile service's last validation (the rendered and checked tree with its resolved targets), reused by the next
    /// full pass while its key holds: the same files, the same cgroups, the same program objects (by
    /// identity) and cgroups of fixed links, the same token.
    final class ValidationCache {
        private var key: [String] = []
        private var validated: Validated?

        func validated(for key: [String]) -> Validated? { key == self.key ? validated : nil }

        func store(_ validated: Validated, for key: [String]) {
            (self.key, self.validated) = (key, validated)
        }

        /// `inputs`: the inputs digest (files, settings and the cgroups found).
        static func key(inputs: [UInt8], manifests: [Manifest], token: BPFToken?) -> [String] {
            var key = [inputs.map { String($0, radix: 16) }.joined()]
            key.append("token \(token.map { "\($0.delegation)" } ?? "none")")
            var objects: Set<String> = [], cgroups: Set<String> = [], interfaces: Set<String> = [], namespaces: Set<String> = []
            for manifest in manifests {
                for entry in manifest.entries {
                    switch entry.kind {
                    case .program(let spec): objects.insert(spec.objectPath)
                    case .link(let spec):
                        if let cgroup = spec.cgroup, manifest.forEachCgroup == nil { cgroups.insert(cgroup) }
                        if let interface = spec.interface { interfaces.insert(interface) }
                        if let netns = spec.netns { namespaces.insert(netns) }
                    default: break
                    }
                }
            }
            for path in objects.sorted() { key.append("object \(path) \(FileBytes.identity(path))") }
            // What each link target is now: a cgroup, interface or namespace made again under its name is another.
            func identities<T>(_ kind: String, _ names: Set<String>, _ lookup: (String) -> Result<T, KernelError>) {
                for name in names.sorted() { key.append("\(kind) \(name) \((try? lookup(name).get()).map { "\($0)" } ?? "none")") }
            }
            identities("cgroup", cgroups, PinResolver.cgroupID)
            identities("interface", interfaces, PinResolver.interfaceIndex)
            identities("netns", namespaces, PinResolver.namespaceInode)
            return key
        }
    }

    /// Reads the ledger, observes the roots and plans; `notices` (about the rendering) join the plan's.
    static func observe(_ desired: DesiredTree, _ targets: ResolvedTargets, _ policies: PolicySet, scope: OwnerScope, notices: [PlanNotice], anchor: Anchor,
                        options: CommonOptions) throws(KernelError) -> Observed {
        let ledger = (try LedgerStore.open(anchor, create: false)?.read() ?? Ledger()).restricted(to: scope)
        let roots = desired.roots + ledger.extraRoots(beyond: desired.roots)
        var observer = TreeObserver(anchor: anchor)
        observer.workers = TreeObserver.availableWorkers
        if !options.verify { observer.vouched = ledger.vouchedPins(for: desired) }
        let live = try observer.observe(roots: roots, expectedEntries: desired.entries.count)
        let facts = try ProgramTable.facts(desired, live: live, policies: policies, anchor: anchor)
        var plan = Planner.plan(desired: desired, live: live, ledger: ledger, policies: policies, force: options.force,
                                facts: facts, targets: targets)
        if !notices.isEmpty {
            plan.notices += notices
            plan.notices.sort { $0.path < $1.path }
        }
        return Observed(live: live, roots: roots, plan: plan, ledger: ledger)
    }
}

extension Pipeline.Full {
    /// Records that `observed` is converged for these inputs: a plan with no actions and no problems.
    /// Returns whether a stamp was written.
    /// `observed`: the observation planned from, or the tree the plan left (`LiveTree.settle`).
    func stamp(_ observed: Pipeline.Observed, inputs: [UInt8], filesDigest: [UInt8], cgroups: [CgroupSource: [Cgroup]], owner: String,
               anchor: Anchor) throws(KernelError) -> Bool {
        let plan = observed.plan
        guard !plan.hasChanges, plan.problems.isEmpty else { return false }
        let live = observed.live, ledger = observed.ledger
        // Each link's state is kept from its inspection: a link the run just made is not inspected (the next
        // pass, planned in full, stamps the tree).
        for entry in desired.entries {
            guard case .link = entry.kind else { continue }
            guard case .link? = live[entry.path]?.kind else { return false }
        }
        var stamp = TreeStamp(inputs: inputs, live: live, desired: desired, owned: { ledger.owns($0, in: live) },
                              roots: observed.roots, notices: plan.notices)
        (stamp.cgroupSources, stamp.filesDigest, stamp.owner) = (cgroupSources, filesDigest, owner)
        let scanned = Set(cgroups.values.joined().map(\.id))
        stamp.targets = TargetIdentity.list(desired, targets, scanned: scanned, file: TargetIdentity.file)
        stamp.cgroups = cgroups.filter { cgroupSources.contains($0.key) }
        guard let store = try StampStore.open(anchor, create: true) else { return false }
        return try store.write(stamp)
    }
}
