import ArgumentParser

/// The `bpftree` root command.
@available(macOS 10.15, macCatalyst 13, iOS 13, tvOS 13, watchOS 6, *)
public struct BPFTreeCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bpftree",
        abstract: "Keep a bpffs tree in the shape YAML manifests declare.",
        version: "0.1.0",
        subcommands: [DiffCommand.self, ApplyCommand.self, ReconcileCommand.self]
    )

    public init() {}
}
