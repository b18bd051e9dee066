import ArgumentParser

/// The `bpftree` root command.
public struct BPFTreeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bpftree",
        abstract: "Keep a bpffs tree in the shape YAML manifests declare.",
        version: "0.1.0",
        subcommands: [DiffCommand.self, ApplyCommand.self]
    )

    public init() {}
}
