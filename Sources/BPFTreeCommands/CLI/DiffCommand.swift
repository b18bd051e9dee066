import ArgumentParser
import BPFTreeCore

/// `bpftree diff`: prints the plan and changes nothing. Exit 0 no changes, 2 changes pending, 1 error.
struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show what apply would change, and change nothing.",
        discussion: "Exit status: 0 no changes, 2 changes pending, 1 error."
    )

    @OptionGroup var options: CommonOptions

    func run() throws {
        let console = Console(format: options.output)
        var report = RunReport(command: "diff", anchor: options.anchorDisplayName, keepsRecords: options.output == .json)
        defer { console.finish(report) }
        guard let planned = Pipeline.plan(options, report: &report, console: console) else { throw ExitCode(1) }
        console.out(console.text.plan(planned.plan, anchor: options.anchorDisplayName))
        if planned.plan.hasChanges { throw ExitCode(2) }
    }
}
