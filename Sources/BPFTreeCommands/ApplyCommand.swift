import ArgumentParser
import BPFTreeCore

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
        let inputs = Pipeline.loader().read(manifests: options.files, policies: options.policies)
        let pass = ApplyPass(options: options, lockTimeout: lockTimeout.value, console: console)
        guard pass.run(inputs: inputs, report: &report).succeeded else { throw ExitCode(1) }
    }
}
