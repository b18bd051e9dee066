import ArgumentParser
import BPFTreeKernel

/// Output formats.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// Options shared by `diff` and `apply`.
struct CommonOptions: ParsableArguments {
    @Option(name: [.short, .customLong("file")], help: "Manifest file or directory (every *.yaml/*.yml in it). Repeatable.")
    var files: [String] = []

    @Option(name: .customLong("policy"), help: "Policy file or directory (every *.yaml/*.yml in it). Repeatable. Default: the built-in policy (policies/default.yaml).")
    var policies: [String] = []

    @Flag(help: "Also delete or replace entries that a policy protects.")
    var force = false

    @Flag(help: "Inspect every pin (BPF_OBJ_GET) even where the ledger vouches that it is unchanged.")
    var verify = false

    @Option(help: "Anchor directory on a bpffs; every path is relative to it.")
    var anchor: String?

    @Option(name: .customLong("anchor-fd"), help: "Use an inherited directory descriptor as the anchor.")
    var anchorFD: Int32?

    @Option(name: [.short, .long], help: "Output format: text or json.")
    var output: OutputFormat = .text

    @Option(name: .customLong("batch-size"), help: ArgumentHelp("Maps per batch-program run.", visibility: .hidden))
    var batchSize: Int = 1024

    static let defaultAnchor = "/sys/fs/bpf"

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one manifest with -f PATH") }
        if anchor != nil && anchorFD != nil { throw ValidationError("give --anchor or --anchor-fd, not both") }
        if let anchorFD, anchorFD < 0 { throw ValidationError("--anchor-fd must be a descriptor number") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
    }

    var anchorDisplayName: String { anchorFD.map { "fd \($0)" } ?? anchor ?? Self.defaultAnchor }

    func openAnchor() throws(KernelError) -> Anchor {
        if let anchorFD { return try Anchor.inherited(fd: anchorFD) }
        return try Anchor.open(path: anchor ?? Self.defaultAnchor)
    }
}
