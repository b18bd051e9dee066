import ArgumentParser
import BPFTreeCore
import BPFTreeKernel

/// One converging pass, as `apply` runs it and `reconcile` repeats it: plan under the writers' lock,
/// execute and stamp. The lock is held for the pass only.
struct ApplyPass {
    var options: CommonOptions
    var lockTimeout: Double
    var console: Console

    /// What a pass leaves for the caller besides its report.
    struct Outcome {
        var succeeded: Bool
        /// The cgroups its templates were rendered for (with the directories to watch); nil when it
        /// did not get that far.
        var scan: CgroupScan?
        /// The inputs digest the pass planned for (files, settings, cgroups).
        var inputs: [UInt8] = []
    }

    /// One pass as a command runs it (`apply`, `reconcile --once`): the files `options` names, output
    /// on the terminal or as one JSON document; throws `ExitCode(1)` when the pass fails.
    static func runCommand(_ command: String, options: CommonOptions, lockTimeout: Seconds) throws {
        let console = Console(format: options.output)
        var report = RunReport(command: command, anchor: options.anchorDisplayName, keepsRecords: options.output == .json)
        defer { console.finish(report) }
        let inputs = Pipeline.loader().read(manifests: options.files, policies: options.policies)
        let pass = ApplyPass(options: options, lockTimeout: lockTimeout.value, console: console)
        guard pass.run(inputs: inputs, report: &report).succeeded else { throw ExitCode(1) }
    }

    /// `decoded`: what `inputs` declare, when the caller decoded them already.
    /// `cache`: a service's last validation (`Pipeline.ValidationCache`).
    func run(inputs: consuming ManifestLoader.Inputs, decoded: ManifestLoader.Decoded? = nil, cache: Pipeline.ValidationCache? = nil,
             report: inout RunReport) -> Outcome {
        guard var planned = Pipeline.plan(options, inputs: inputs, decoded: decoded, lockTimeout: lockTimeout, cache: cache,
                                          report: &report, console: console)
        else { return Outcome(succeeded: false) }
        let outcome = Outcome(succeeded: true, scan: planned.scan, inputs: planned.inputs)
        console.out(console.text.notices(planned.plan))
        guard planned.plan.hasChanges else {
            planned.images?.save()
            switch planned.basis {
            case .full(let full): writeStamp(&report) { () throws(KernelError) in try stamp(full.observed, full, planned) }
            case .stamp(let repair) where !repair.drift.isEmpty:
                writeStamp(&report) { () throws(KernelError) in try repair.restamp(inputs: planned.inputs, anchor: planned.anchor) }
            case .stamp: break
            case .delta(let delta):
                writeStamp(&report) { () throws(KernelError) in try restamp(delta, live: delta.live, ledger: delta.ledger, planned) }
            }
            console.out("No changes. The tree under \(options.anchorDisplayName) matches the manifests.")
            return outcome
        }
        // What the kernel would refuse for want of a capability is refused here, before anything changes.
        // (The observation is only borrowed here: a copy held on would make its settling below copy it.)
        let missing = Machine.missing {
            guard case .full(let full) = planned.basis else { return planned.plan.capabilityNeeds(of: Machine.user) }
            return planned.plan.capabilityNeeds(of: Machine.user) { full.observed.live[$0]?.uid }
        }
        guard missing.isEmpty else {
            let error = "apply needs \(missing.map(\.capability.description).joined(separator: ", ")), which this process does not have"
            report.errors.append(error)
            console.fail(error, missing.map { "  \($0)" } + ["Nothing was changed (see Capabilities in bpftree's README)."])
            return Outcome(succeeded: false, scan: planned.scan)
        }
        // The executor's lines are printed on their own thread while the tree is stamped; all is out on return.
        let lines = ProgressLines(showing: console)
        defer { lines?.finish() }
        guard var execution = execute(planned.plan, anchor: planned.anchor, owner: planned.owner, &report, lines: lines) else {
            return Outcome(succeeded: false, scan: planned.scan)
        }
        // What loading the programs gave is kept once the pass went through (a failed one creates nothing).
        planned.images?.save()
        switch planned.basis {
        case .stamp(let repair):
            writeStamp(&report, lines: lines) { () throws(KernelError) in try repair.restamp(inputs: planned.inputs, anchor: planned.anchor) }
            return outcome
        case .delta(let delta):
            var live = delta.live, ledger = delta.ledger
            live.settle(planned.plan.actions, made: execution.made)
            ledger.settle(planned.plan.actions, made: execution.made)
            writeStamp(&report, lines: lines) { () throws(KernelError) in try restamp(delta, live: live, ledger: ledger, planned) }
            return outcome
        case .full:
            break
        }
        // The tree now is what the plan was made from with the plan done: the executor reports the inode,
        // mode and owner of everything it made, so the converged tree is stamped without walking it again.
        guard let (full, observed) = planned.takeObservation() else { return outcome }
        // The plan and the executor's report are let go first (at 100,000 entries they are tens of MiB of
        // peak RSS): the entries made carry their paths, and only the other actions are kept.
        var plan = planned.plan
        planned.plan = Plan()
        let notices = plan.notices, others = plan.actions.filter { $0.madeKind == nil }
        plan = Plan()
        var live = observed.live, ledger = observed.ledger
        _ = consume observed
        do {
            let made = execution.made
            execution = ExecutionReport()
            Machine.releaseFreeMemory()
            live.settle(others, made: made)
            ledger.settle(others, made: made)
        }
        Machine.releaseFreeMemory()
        let roots = full.desired.roots + ledger.extraRoots(beyond: full.desired.roots)
        let settled = Pipeline.Observed(live: live, roots: roots, plan: Plan(notices: notices), ledger: ledger)
        writeStamp(&report, lines: lines) { () throws(KernelError) in try stamp(settled, full, planned) }
        return outcome
    }

    /// Voids the stamp and runs the plan; nil when anything failed. `lines`: where the per-action lines and
    /// the summary go (they may still be printing on return; without it, none are shown).
    /// `owner`: what the records it writes name (`OwnerScope.owner`; empty: none).
    func execute(_ plan: Plan, anchor: Anchor, owner: String, _ report: inout RunReport, lines: ProgressLines?) -> ExecutionReport? {
        let ledger: LedgerStore
        do {
            // Whatever happens next, the stamp no longer describes the tree.
            try StampStore.open(anchor, create: false)?.void()
            guard let opened = try LedgerStore.open(anchor, create: true) else { return nil }
            ledger = opened
            ledger.owner = owner
        } catch {
            report.errors.append(error.description)
            console.fail("\(error)", ["Nothing was changed."])
            return nil
        }
        let executor = Executor(anchor: anchor, ledger: ledger, maxMapsPerBatch: options.batchSize)
        let execution = executor.execute(plan, keepResults: report.keepsRecords) { result in lines?.add(result) }
        report.add(execution)
        if execution.failure != nil {
            lines?.finish()
            console.err([console.text.applySummary(execution, anchor: options.anchorDisplayName)])
            return nil
        }
        let summary = console.text.applySummary(execution, anchor: options.anchorDisplayName)
        if let lines { lines.add(line: summary) } else { console.out(summary) }
        return execution
    }

    /// The warning a stamp that could not be written gets, after the lines printed before it.
    private func stampNotWritten(_ error: KernelError, after lines: ProgressLines?) {
        lines?.finish()
        console.warn("could not write the convergence stamp: \(error)")
    }

    /// Writes the stamp the plan's basis gives (`write`); failing to is only a warning (the next pass plans
    /// in full).
    private func writeStamp(_ report: inout RunReport, lines: ProgressLines? = nil, _ write: () throws(KernelError) -> Bool) {
        do throws(KernelError) {
            if try write() { report.stamp = "written" }
        } catch {
            stampNotWritten(error, after: lines)
        }
    }

    private func stamp(_ observed: Pipeline.Observed, _ full: Pipeline.Full, _ planned: Pipeline.Planned) throws(KernelError) -> Bool {
        try full.stamp(observed, inputs: planned.inputs, filesDigest: planned.filesDigest, cgroups: planned.scan.cgroups,
                       owner: planned.owner, anchor: planned.anchor)
    }

    private func restamp(_ delta: Pipeline.Delta, live: LiveTree, ledger: Ledger, _ planned: Pipeline.Planned) throws(KernelError) -> Bool {
        try delta.restamp(live: live, ledger: ledger, notices: planned.plan.notices, inputs: planned.inputs, anchor: planned.anchor)
    }
}
