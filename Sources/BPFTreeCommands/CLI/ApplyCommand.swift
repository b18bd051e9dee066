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

    func validate() throws { try lockTimeout.check("--lock-timeout") }

    func run() throws {
        try ApplyPass.runCommand("apply", options: options, lockTimeout: lockTimeout)
    }
}
