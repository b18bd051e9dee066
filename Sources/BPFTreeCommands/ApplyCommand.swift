import ArgumentParser
import BPFTreeCore
import BPFTreeKernel

/// `bpftree apply`: converges the tree on the manifests. Exit 0 success (also when nothing changed), 1 error.
struct ApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Converge the tree on the manifests.",
        discussion: "Exit status: 0 success (including no changes), 1 error."
    )

    @OptionGroup var options: CommonOptions

    @Option(name: .customLong("lock-timeout"),
            help: "How long to wait for another writer's lock on the anchor (e.g. 10s, 500ms, 0 to try once).")
    var lockTimeout = Seconds(10)

    func run() throws {
        let console = Console(format: options.output)
        var report = RunReport(command: "apply", anchor: options.anchorDisplayName, keepsRecords: options.output == .json)
        defer { console.finish(report) }
        guard var planned = Pipeline.plan(options, lockTimeout: lockTimeout.value, report: &report, console: console)
        else { throw ExitCode(1) }
        console.out(console.text.notices(planned.plan))
        guard planned.plan.hasChanges else {
            if let full = planned.full { stamp(full.observed, full.desired, planned, &report, console) }
            if let repair = planned.repair { restamp(repair, planned, &report, console) }
            console.out("No changes. The tree under \(options.anchorDisplayName) matches the manifests.")
            return
        }
        try execute(planned.plan, anchor: planned.anchor, &report, console)
        if let repair = planned.repair {
            restamp(repair, planned, &report, console)
            return
        }
        // Observe again: a converged tree is stamped, so the next pass with these inputs is a walk. The
        // first observation and plan are let go first (at 100,000 entries they are tens of MiB).
        guard let full = planned.full else { return }
        planned.full = nil
        planned.plan = Plan()
        // Hand what was freed back to the kernel before the tree is read again (peak RSS at 100,000 entries).
        Machine.releaseFreeMemory()
        do {
            let after = try Pipeline.observe(full.desired, full.policies, anchor: planned.anchor, options: options)
            if after.plan.hasChanges || !after.plan.problems.isEmpty {
                console.err(["warning: the tree still differs from the manifests after apply (\(after.plan.actions.count) change\(after.plan.actions.count == 1 ? "" : "s"), \(after.plan.problems.count) conflict\(after.plan.problems.count == 1 ? "" : "s")); was it changed meanwhile? Run apply again."])
                return
            }
            stamp(after, full.desired, planned, &report, console)
        } catch {
            console.err(["warning: could not observe the tree after apply: \(error)"])
        }
    }

    /// Voids the stamp and runs the plan; throws `ExitCode(1)` when anything failed.
    private func execute(_ plan: Plan, anchor: Anchor, _ report: inout RunReport, _ console: Console) throws {
        let ledger: LedgerStore
        do {
            guard let opened = try LedgerStore.open(anchor, create: true) else { throw ExitCode(1) }
            ledger = opened
            // Whatever happens next, the stamp no longer describes the tree.
            try StampStore.open(anchor, create: false)?.void()
        } catch let error as KernelError {
            report.errors.append(error.description)
            console.err(["error: \(error)", "Nothing was changed."])
            throw ExitCode(1)
        }
        let executor = Executor(anchor: anchor, ledger: ledger, maxMapsPerBatch: options.batchSize)
        let execution = executor.execute(plan, keepResults: report.keepsRecords) { result in console.out(console.text.progress(result)) }
        report.add(execution)
        if execution.failure != nil {
            console.err([console.text.applySummary(execution, anchor: options.anchorDisplayName)])
            throw ExitCode(1)
        }
        console.out(console.text.applySummary(execution, anchor: options.anchorDisplayName))
    }

    /// Writes the stamp; failing to is only a warning (the next pass plans in full).
    private func stamp(_ observed: Pipeline.Observed, _ desired: DesiredTree, _ planned: Pipeline.Planned,
                       _ report: inout RunReport, _ console: Console) {
        do {
            if try Pipeline.stamp(observed, desired: desired, inputs: planned.inputs, anchor: planned.anchor) {
                report.stamp = "written"
            }
        } catch {
            console.err(["warning: could not write the convergence stamp: \(error)"])
        }
    }

    /// Updates the stamp after a repair made from it; failing to is only a warning.
    private func restamp(_ repair: Pipeline.Repair, _ planned: Pipeline.Planned, _ report: inout RunReport, _ console: Console) {
        do {
            if try Pipeline.restamp(repair, inputs: planned.inputs, anchor: planned.anchor) { report.stamp = "written" }
        } catch {
            console.err(["warning: could not write the convergence stamp: \(error)"])
        }
    }
}
