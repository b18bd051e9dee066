import ArgumentParser
import BPFTreeCore
import BPFTreeKernel
import SystemPackage

/// Output formats.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// When to use a BPF token.
enum TokenMode: String, ExpressibleByArgument, CaseIterable {
    /// When the anchor's bpffs delegates and this process is in a user namespace other than the initial one.
    case auto
    /// Always: fail when no token can be made from the anchor's bpffs.
    case require
    /// Never.
    case off
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

    @Option(name: .customLong("anchor-pid"), help: "Resolve --anchor as this process sees it (e.g. a container's bpffs, from the host), inside its root.")
    var anchorPID: Int32?

    @Option(help: "BPF token from the anchor's delegated bpffs (Linux 6.9): auto (when it delegates and this process is in a user namespace), require, or off.")
    var token: TokenMode = .auto

    @Option(help: "The manifest set this run is (also metadata.owner): it prunes and replaces only what runs of this owner made. Default: each manifest owns what it made.")
    var owner: String?

    @Option(name: [.short, .long], help: "Output format: text or json.")
    var output: OutputFormat = .text

    @Option(name: .customLong("batch-size"), help: ArgumentHelp("Maps per batch-program run.", visibility: .hidden))
    var batchSize: Int = 1024

    static let defaultAnchor = "/sys/fs/bpf"

    mutating func validate() throws {
        files = FileArguments.claim() + files
        if files.isEmpty { throw ValidationError("give at least one manifest with -f PATH") }
        if anchor != nil && anchorFD != nil { throw ValidationError("give --anchor or --anchor-fd, not both") }
        if let anchorFD, anchorFD < 0 { throw ValidationError("--anchor-fd must be a descriptor number") }
        if anchorPID != nil && anchorFD != nil { throw ValidationError("give --anchor-pid (with --anchor) or --anchor-fd, not both") }
        if let anchorPID, anchorPID <= 0 { throw ValidationError("--anchor-pid must be a process id") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if let owner, let problem = OwnerScope.problem(withName: owner) { throw ValidationError("--owner: \(problem)") }
    }

    var anchorDisplayName: String {
        if let anchorFD { return "fd \(anchorFD)" }
        let path = anchor ?? Self.defaultAnchor
        return anchorPID.map { "\(path) in the root of pid \($0)" } ?? path
    }

    func openAnchor() throws(KernelError) -> Anchor {
        if let anchorFD { return try Anchor.inherited(fd: FileDescriptor(rawValue: anchorFD)) }
        if let anchorPID { return try Anchor.open(inRootOf: anchorPID, path: anchor ?? Self.defaultAnchor) }
        return try Anchor.open(path: anchor ?? Self.defaultAnchor)
    }

    /// The BPF token this run uses, already activated; nil when it uses none (see `TokenMode`).
    func openToken(_ anchor: Anchor) throws(KernelError) -> BPFToken? {
        if token == .off || token == .auto && Machine.inInitialUserNamespace { return nil }
        if let missing = KernelFeatures.missing("BPF_TOKEN_CREATE", what: "BPF tokens", since: "Linux 6.9") {
            if token == .auto { return nil }
            throw KernelError(.step(.useToken), path: anchor.displayName, detail: missing)
        }
        let delegation = try BPFToken.delegation(of: anchor)
        if token == .auto, let delegation, !delegation.isDelegated { return nil }
        // A mount this process cannot see (an anchor descriptor from another mount namespace): ask the kernel.
        let token = try BPFToken.create(for: anchor, delegation: delegation ?? .unknown)
        let missing = DelegationCheck.missingBPFTreeNeeds(token.delegation)
        guard missing.isEmpty else {
            throw KernelError(.step(.useToken), path: anchor.displayName, detail: missing.joined(separator: "; "))
        }
        token.activate()
        return token
    }
}
