import BPFTreeCommands
import BPFTreeKernel

/// The `bpftree` executable: runs the root command (async, for `reconcile`).
@main
struct Entry {
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        // The service must neither die of a SIGHUP nor exit 143 for a SIGTERM that comes before its
        // handlers exist (e.g. a unit's ExecReload right after start).
        if arguments.first == "reconcile" && !arguments.contains("--once") { StartupSignals.hold() }
        await BPFTreeCommand.main(FileArguments.take(from: arguments))
    }
}
