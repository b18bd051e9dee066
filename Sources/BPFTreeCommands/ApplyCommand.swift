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

    func run() throws {
        let console = Console(format: options.output)
        var report = RunReport(command: "apply", anchor: options.anchorDisplayName)
        defer { console.finish(report) }
        guard let planned = Pipeline.plan(options, report: &report, console: console) else { throw ExitCode(1) }
        console.out(console.text.notices(planned.plan))
        guard planned.plan.hasChanges else {
            console.out("No changes. The tree under \(options.anchorDisplayName) matches the manifests.")
            return
        }
        let ledger: LedgerStore
        do {
            guard let opened = try LedgerStore.open(planned.anchor, create: true) else { throw ExitCode(1) }
            ledger = opened
        } catch let error as KernelError {
            report.errors.append(error.description)
            console.err(["error: \(error)", "Nothing was changed."])
            throw ExitCode(1)
        }
        let executor = Executor(anchor: planned.anchor, ledger: ledger, maxMapsPerBatch: options.batchSize)
        let execution = executor.execute(planned.plan) { result in console.out(console.text.progress(result)) }
        report.add(execution)
        if execution.failure != nil {
            console.err([console.text.applySummary(execution, anchor: options.anchorDisplayName)])
            throw ExitCode(1)
        }
        console.out(console.text.applySummary(execution, anchor: options.anchorDisplayName))
    }
}
