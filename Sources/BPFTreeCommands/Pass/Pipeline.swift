import BPFTreeCore
import BPFTreeKernel
import Glibc

/// Manifests and policies in, plan out, for `diff`, `apply` and every pass of `reconcile`: open the anchor,
/// then plan from the first basis that can answer (`Basis`): the stamp (`Pipeline+Stamp`), a delta from it
/// for cgroups that came or went (`Pipeline+Delta`), or a full observation (`Pipeline+Full`). Each basis
/// owns its plan and the stamp written after it. Reports every problem it finds together and returns nil
/// if there was one.
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
           let (repair, digest, scan, plan) = Repair.plan(anchor, filesDigest: filesDigest, scanned: &stampScan,
                                                          cgroupsChanged: &unchangedBut) {
            report.observed = RunReport.Observed(entries: repair.stamp.records.count, inspectedPins: repair.inspectedPins)
            report.stamp = repair.drift.isEmpty ? "matched" : "drift"
            report.add(plan)
            return Planned(anchor: anchor, plan: plan, inputs: digest, filesDigest: filesDigest, basis: .stamp(repair),
                           lock: lock, token: token, scan: scan, owner: repair.stamp.owner)
        }
        var diagnostics: [Diagnostic] = []
        var errors: [KernelError] = []
        if case .failure(let error) = anchor { errors.append(error) }
        // The decoded manifests (every entry as written) live only for this call: observing and planning need
        // not hold them (5 MiB of peak RSS at 100,000 entries).
        let decoded = known.map { .success($0) } ?? loader.decode(inputs, policyPaths: options.policies, owner: options.owner)
        // Only cgroups came or went since the stamp: plan just their subtrees.
        if let stamp = unchangedBut, let stampScan, case .success(let anchor) = anchor, case .success(let manifests) = decoded,
           let (delta, plan) = Delta.plan(stamp, scan: stampScan.scan, decoded: manifests, anchor: anchor, token: token,
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

    /// What, besides the files, decides a plan: this build of bpftree (its executable's identity, so a
    /// rebuilt binary never trusts an older one's stamp), `--force`, the page size and the possible CPUs.
    private static func settings(_ options: CommonOptions, pageSize: Int) -> [String] {
        return ["bpftree \(BPFTreeCommand.configuration.version)", "build \(Machine.executableIdentity)", "force \(options.force)",
                "owner \(options.owner ?? "")",
                "page \(pageSize)", "cpus \(Machine.possibleCPUs)"]
    }
}
