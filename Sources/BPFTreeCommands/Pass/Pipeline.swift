import BPFTreeCore
import BPFTreeKernel
import Glibc

/// Manifests and policies in, plan out: validate everything, open the anchor, read the ledger, observe,
/// plan, and check what only the kernel can tell (whether migrated entries fit, which programs hold a
/// replaced map). Reports every problem it finds together and returns nil if there was one.
enum Pipeline {
    struct Planned {
        var anchor: Anchor
        var plan: Plan
        /// SHA-256 of the inputs (`TreeStamp.inputsDigest`), and of the settings and files alone.
        var inputs: [UInt8]
        var filesDigest: [UInt8]
        var basis: Basis
        /// A writer's lock on the anchor, held until the run ends.
        var lock: WriterLock?
        /// The BPF token every map creation and program load of the run carries, if any: held here so that
        /// it stays open (and active) until the run ends.
        var token: BPFToken?
        /// The cgroups the templates were rendered for, and the directories to watch for more.
        var scan = CgroupScan()
        /// The anchor's cache of program images, with what this plan learnt (a writer saves it).
        var images: ImageStore?
        /// The owner the records this run writes name (`OwnerScope.owner`; empty: none).
        var owner = ""

        /// Takes a full plan's observation out, so that the caller can settle it in place (at 100,000
        /// entries it is tens of MiB); nil when the plan came from the stamp.
        mutating func takeObservation() -> (Full, Observed)? {
            guard case .full(var full) = basis else { return nil }
            let observed = full.observed
            full.observed = Observed(live: LiveTree(), roots: [], plan: Plan(), ledger: Ledger())
            basis = .full(full)
            return (full, observed)
        }
    }

    /// What a plan was made from.
    enum Basis {
        /// A full observation of the declared tree.
        case full(Full)
        /// The stamp, and the paths that drifted from it (none: the tree matched it).
        case stamp(Repair)
        /// The stamp, and the subtrees of the cgroups that came or went since.
        case delta(Delta)
    }

    struct Repair {
        var stamp: TreeStamp
        var drift: [TreePath]
    }

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

    static func loader() -> ManifestLoader {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        return ManifestLoader(pageSize: pageSize > 0 ? pageSize : 4096)
    }

    /// Reads the files `options` names and plans; see `plan(_:inputs:decoded:lockTimeout:report:console:)`.
    static func plan(_ options: CommonOptions, lockTimeout: Double? = nil, report: inout RunReport,
                     console: Console) -> Planned? {
        let inputs = loader().read(manifests: options.files, policies: options.policies)
        return plan(options, inputs: inputs, lockTimeout: lockTimeout, report: &report, console: console)
    }

    /// `inputs`: the files' bytes; `decoded`: what they declare, when the caller already decoded them
    /// (otherwise they are decoded here, and only when the stamp does not answer). `lockTimeout`: take
    /// the writers' lock (waiting that many seconds) before reading anything from the tree; nil for a
    /// reader.
    /// `cache`: a service's last validation, reused when nothing it depends on changed.
    static func plan(_ options: CommonOptions, inputs: consuming ManifestLoader.Inputs, decoded known: ManifestLoader.Decoded? = nil,
                     lockTimeout: Double? = nil, cache: ValidationCache? = nil, report: inout RunReport, console: Console) -> Planned? {
        let loader = loader()
        let settings = settings(options, pageSize: loader.pageSize)
        var lock: WriterLock?
        var token: BPFToken?
        let anchor: Result<Anchor, KernelError> = Result { () throws(KernelError) in
            let anchor = try options.openAnchor()
            token = try options.openToken(anchor)
            if let lockTimeout { lock = try WriterLock.acquire(anchor, timeout: lockTimeout) }
            // Bookkeeping that is not bpftree's own refuses the pass before anything is read from it.
            _ = try LedgerStore.open(anchor, create: false)
            _ = try StampStore.open(anchor, create: false)
            return anchor
        }
        // The cgroups the stamp's sources hold, when it was read: the full plan below reuses the scan when its
        // templates have the same sources (a new or removed cgroup is exactly what makes the stamp miss).
        var stampScan: StampScan?
        let filesDigest = TreeStamp.inputsDigest(settings: settings, files: inputs.all)
        var unchangedBut: TreeStamp?
        if inputs.diagnostics.isEmpty, !options.verify, case .success(let anchor) = anchor,
           let (stamp, digest, scan, drift, plan) = fromStamp(anchor, filesDigest: filesDigest, scanned: &stampScan,
                                                              cgroupsChanged: &unchangedBut) {
            report.observed = RunReport.Observed(entries: stamp.records.count, inspectedPins: 0)
            report.stamp = drift.isEmpty ? "matched" : "drift"
            report.add(plan)
            return Planned(anchor: anchor, plan: plan, inputs: digest, filesDigest: filesDigest,
                           basis: .stamp(Repair(stamp: stamp, drift: drift)), lock: lock, token: token, scan: scan,
                           owner: stamp.owner)
        }
        var diagnostics: [Diagnostic] = []
        var errors: [KernelError] = []
        if case .failure(let error) = anchor { errors.append(error) }
        // The decoded manifests (every entry as written) live only for this call: observing and planning need
        // not hold them (5 MiB of peak RSS at 100,000 entries).
        let decoded = known.map { .success($0) } ?? loader.decode(inputs, policyPaths: options.policies, owner: options.owner)
        // Only cgroups came or went since the stamp: plan just their subtrees.
        if let stamp = unchangedBut, let stampScan, case .success(let anchor) = anchor, case .success(let manifests) = decoded,
           let (delta, plan) = planDelta(stamp, scan: stampScan.scan, decoded: manifests, anchor: anchor, token: token,
                                         options: options) {
            report.observed = RunReport.Observed(entries: delta.live.entries.count, inspectedPins: delta.live.inspectedPins)
            report.stamp = "delta"
            report.add(plan)
            return Planned(anchor: anchor, plan: plan, inputs: stampScan.digest, filesDigest: filesDigest, basis: .delta(delta),
                           lock: lock, token: token, scan: stampScan.scan, owner: manifests.scope.owner ?? "")
        }
        let images = (try? anchor.get()).map(ImageStore.init)
        let validated = validate(decoded, token: token, stampScan: stampScan, cache: cache, filesDigest: filesDigest,
                                 images: images, diagnostics: &diagnostics, errors: &errors)
        if !diagnostics.isEmpty {
            let failure = ValidationFailure(diagnostics)
            report.add(failure)
            console.err(console.text.diagnostics(failure))
        }
        for error in errors {
            report.errors.append(error.description)
            console.fail("\(error)")
        }
        guard diagnostics.isEmpty, errors.isEmpty, let validated, case .success(let anchor) = anchor else { return nil }
        let (desired, targets, policies) = (validated.desired, validated.targets, validated.policies)
        let (scan, digest) = (validated.scan, validated.inputsDigest)
        // The files' bytes are not needed past here (11 MB for the 100,000-map bench manifest): a command's only
        // copy goes before observing and planning (the service keeps its own for the next pass).
        _ = consume inputs
        var observed: Observed
        do {
            observed = try observe(desired, targets, policies, scope: validated.scope, notices: validated.notices, anchor: anchor,
                                   options: options)
            report.observed = RunReport.Observed(entries: observed.live.entries.count, inspectedPins: observed.live.inspectedPins)
        } catch {
            report.errors.append(error.description)
            console.fail("\(error)")
            return nil
        }
        let plan = observed.plan
        report.add(plan)
        if !plan.problems.isEmpty {
            console.out(console.text.notices(plan))
            console.err(console.text.problems(plan)
                        + ["\(plan.problems.count) conflict\(plan.problems.count == 1 ? "" : "s") with the live tree; nothing was changed."])
            return nil
        }
        return Planned(anchor: anchor, plan: plan, inputs: digest, filesDigest: filesDigest,
                       basis: .full(Full(desired: desired, targets: targets, policies: policies, observed: observed,
                                         cgroupSources: validated.cgroupSources, notices: validated.notices)),
                       lock: lock, token: token, scan: scan, images: images, owner: validated.scope.owner ?? "")
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
    /// The cgroups the stamp's sources hold, as `fromStamp` scanned them, and the inputs digest with them.
    struct StampScan {
        var sources: [CgroupSource]
        var scan: CgroupScan
        var digest: [UInt8]
    }

    /// `stampScan`: the cgroups the stamp's sources hold, reused (with their digest) when the templates
    /// have the same sources.
    private static func validate(_ result: Result<ManifestLoader.Decoded, ValidationFailure>, token: BPFToken?,
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

    /// The plan the stamp gives, when it was made from these inputs and the cgroups its templates were
    /// rendered for still are the ones there: none when a walk of its roots finds the tree it recorded,
    /// or its repair of the paths that drifted (`TreeStamp.repairPlan`). nil: plan in full. Any error
    /// here only means planning in full, which reports it.
    /// `cgroupsChanged`: the stamp, when only the cgroups differ from it and the tree does not.
    private static func fromStamp(_ anchor: Anchor, filesDigest: [UInt8], scanned: inout StampScan?,
                                  cgroupsChanged: inout TreeStamp?)
        -> (TreeStamp, [UInt8], CgroupScan, [TreePath], Plan)? {
        guard let store = try? StampStore.open(anchor, create: false), let stamp = try? store.read(),
              let scan = try? CgroupScanner.scan(stamp.cgroupSources) else { return nil }
        let inputs = TreeStamp.inputsDigest(files: filesDigest, cgroups: scan.digestLines)
        scanned = StampScan(sources: stamp.cgroupSources, scan: scan, digest: inputs)
        guard stamp.inputs == inputs || stamp.filesDigest == filesDigest else { return nil }
        // A rebuilt object is no change the walk sees, nor one a delta plans.
        guard TargetIdentity.hold(stamp.targets) else { return nil }
        var observer = TreeObserver(anchor: anchor)
        observer.inspectsPins = false
        guard let live = try? observer.observe(roots: stamp.roots, expectedEntries: stamp.records.count) else { return nil }
        let drift = stamp.drift(live)
        guard stamp.inputs == inputs else {
            if drift.isEmpty { cgroupsChanged = stamp }
            return nil
        }
        if drift.isEmpty { return (stamp, inputs, scan, [], Plan(notices: stamp.notices)) }
        return stamp.repairPlan(drift: drift, live: live).map { (stamp, inputs, scan, drift, $0) }
    }

    /// Records that `observed` is converged for these inputs: a plan with no actions and no problems.
    /// Returns whether a stamp was written.
    /// `targets`: what the plan's programs were resolved to (the stamp keeps the identity of their objects).
    static func stamp(_ observed: Observed, desired: DesiredTree, targets: ResolvedTargets, cgroupSources: [CgroupSource],
                      inputs: [UInt8], filesDigest: [UInt8], cgroups: [CgroupSource: [Cgroup]], owner: String,
                      anchor: Anchor) throws(KernelError) -> Bool {
        let plan = observed.plan
        // A link's state is more than its pin: another tool may detach it, or move it to another program,
        // through the pin. A stat-only walk cannot see that, so trees with links are planned in full every
        // time. (A program pinned under the same inode is the same program, maps included.)
        guard !plan.hasChanges, plan.problems.isEmpty, !desired.hasLinks else { return false }
        let live = observed.live, ledger = observed.ledger
        var stamp = TreeStamp(inputs: inputs, live: live, desired: desired, owned: { ledger.owns($0, in: live) },
                              roots: observed.roots, notices: plan.notices)
        (stamp.cgroupSources, stamp.filesDigest, stamp.owner) = (cgroupSources, filesDigest, owner)
        stamp.targets = TargetIdentity.list(targets)
        stamp.cgroups = cgroups.filter { cgroupSources.contains($0.key) }
        guard let store = try StampStore.open(anchor, create: true) else { return false }
        return try store.write(stamp)
    }

    /// After a repair from the stamp: the stamp with the drifted paths as they are now, written when each
    /// is as declared (and a map created again is the ledger's). Returns whether it was written.
    static func restamp(_ repair: Repair, inputs: [UInt8], anchor: Anchor) throws(KernelError) -> Bool {
        var stamp = repair.stamp
        var observer = TreeObserver(anchor: anchor)
        observer.inspectsPins = false
        let ledger = try LedgerStore.open(anchor, create: false)
        for path in repair.drift {
            guard let current = try observer.entry(at: path) else { return false }
            // A stat-only entry cannot tell a map from another pin; the recorded inode names the object.
            let record = current.inode == stamp.record(at: path)?.inode ? nil : try ledger?.record(at: path)
            let ownedNow = record.map { $0.state == .owned && $0.inode == current.inode } ?? false
            guard stamp.settle(path, as: current, ownedNow: ownedNow) else { return false }
        }
        guard let store = try StampStore.open(anchor, create: true) else { return false }
        return try store.write(stamp)
    }

    /// What, besides the files, decides a plan: this build of bpftree (its executable's identity, so a
    /// rebuilt binary never trusts an older one's stamp), `--force`, the page size and the possible CPUs.
    private static func settings(_ options: CommonOptions, pageSize: Int) -> [String] {
        return ["bpftree \(BPFTreeCommand.configuration.version)", "build \(Machine.executableIdentity)", "force \(options.force)",
                "owner \(options.owner ?? "")",
                "page \(pageSize)", "cpus \(Machine.possibleCPUs)"]
    }
}
