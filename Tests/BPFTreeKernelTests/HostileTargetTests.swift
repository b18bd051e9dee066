import BPFTreeTestSupport
import Foundation
import Glibc
import Testing

/// Link targets outside the bpffs that other users and tools act on at the worst moment: a FIFO given as a
/// namespace or a binary, and a binary replaced between planning and the link.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct HostileTargetTests {
    private var tracing: String {
        get throws { try String(contentsOfFile: repositoryRoot + "/policies/tracing.yaml", encoding: .utf8) }
    }

    /// `bpftree ARGS` under timeout(1): a run that blocks is killed and shows as status 124.
    private func bounded(_ arguments: [String], seconds: Int = 60) throws -> RunResult {
        try run(["timeout", String(seconds), bpftreeExecutable] + arguments, environment: ["NO_COLOR": "1"])
    }

    /// `bpftree apply ARGS` with its first mkdirat held back 3 s by strace's fault injection: `meanwhile`
    /// runs once the pass has planned and begun to change the tree (its ledger exists). Returns the exit
    /// status and the output (stdout and stderr in one: the failed action's line and the summary).
    private func applyHeldBack(_ args: [String], anchor fs: ScratchBPFFS, meanwhile: () throws -> Void) throws -> (Int32, String) {
        let apply = Process()
        apply.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        apply.arguments = ["strace", "-f", "-o", "/dev/null", "-e", "trace=mkdirat", "-e", "inject=mkdirat:delay_enter=3000000:when=1",
                           bpftreeExecutable, "apply"] + args
        apply.environment = ProcessInfo.processInfo.environment.merging(["NO_COLOR": "1"]) { $1 }
        let output = Pipe()
        (apply.standardOutput, apply.standardError) = (output, output)
        try apply.run()
        var waited = 0
        while waited < 200, !(try listing(fs.path, format: "%P", hiding: []).contains("bpftree_ledger")) {
            usleep(50_000)
            waited += 1
        }
        usleep(300_000)
        try meanwhile()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        apply.waitUntilExit()
        return (apply.terminationStatus, text)
    }

    @Test func aFIFOGivenAsANamespaceOrABinaryIsRefusedWithoutWaitingForAWriter() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory([
            "network.yaml": try String(contentsOfFile: repositoryRoot + "/policies/network.yaml", encoding: .utf8),
            "tracing.yaml": try tracing,
        ])
        let fifo = files.path + "/fifo"
        try #require(mkfifo(fifo, 0o600) == 0)
        try buildBPF([repositoryRoot + "/bpf/sk_lookup_count.bpf.c", repositoryRoot + "/bpf/uprobe_count.bpf.c"], into: files.path)
        let lookups = try String(contentsOfFile: repositoryRoot + "/examples/sk-lookup-count/sk-lookup-count.yaml", encoding: .utf8)
            .replacingOccurrences(of: "netns: /run/netns/blue}", with: "netns: \(fifo)}")
        let uprobes = try String(contentsOfFile: repositoryRoot + "/examples/uprobe-count/uprobe-count.yaml", encoding: .utf8)
            .replacingOccurrences(of: "binary: /bin/bash, symbol: readline", with: "binary: \(fifo), symbol: main")
        try lookups.write(toFile: files.path + "/lookups.yaml", atomically: true, encoding: .utf8)
        try uprobes.write(toFile: files.path + "/uprobes.yaml", atomically: true, encoding: .utf8)
        for (manifest, policy, message) in [("lookups.yaml", "network.yaml", "fifo': not a namespace file"),
                                            ("uprobes.yaml", "tracing.yaml", "not a regular file")] {
            for command in ["diff", "apply"] {
                let result = try bounded([command, "-f", files.path + "/" + manifest, "--policy", files.path + "/" + policy, "--anchor", fs.path])
                #expect(result.status == 1, "\(manifest) \(command) (124: it blocked): \(result.output)")
                #expect(result.stderr.contains(message), "\(manifest) \(command): \(result.output)")
            }
        }
        #expect(try listing(fs.path, format: "%P", hiding: []).isEmpty)
    }

    /// An interface renamed between planning and the link (the first mkdirat held back, as above): the link
    /// is refused instead of landing on the device now under another name, and nothing is attached.
    @Test func anInterfaceRenamedAfterPlanningIsRefusedBeforeTheLinkIsMade() throws {
        let fs = try ScratchBPFFS()
        let veth = try ScratchVeth()
        let example = try String(contentsOfFile: repositoryRoot + "/examples/xdp-count/xdp-count.yaml", encoding: .utf8)
        let files = try ManifestDirectory(["xdp.yaml": example.replacingOccurrences(of: "interface: veth0}", with: "interface: \(veth.host)}"),
                                           "policy.yaml": try String(contentsOfFile: repositoryRoot + "/policies/network.yaml", encoding: .utf8)])
        try buildBPF([repositoryRoot + "/bpf/xdp_count.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/xdp.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let renamed = veth.host + "r"
        let (status, text) = try applyHeldBack(args, anchor: fs) {
            for command in [["ip", "link", "set", veth.host, "down"], ["ip", "link", "set", veth.host, "name", renamed],
                            ["ip", "link", "set", renamed, "up"]] {
                try #require(try run(command).status == 0, "\(command)")
            }
        }
        #expect(status == 1, "\(text)")
        #expect(text.contains("no such network interface") || text.contains("is index"), "\(text)")
        #expect(try listing(fs.path, format: "%P").isEmpty, "the tree is as it was")
        let shown = try run(["ip", "link", "show", "dev", renamed])
        #expect(shown.status == 0 && !shown.stdout.contains("xdp"), "\(shown.output)")
    }

    /// A cgroup link's cgroup reached through a symlink (an ancestor of the cgroup directory): refused at
    /// its place, never followed.
    @Test func aCgroupBehindASymlinkIsRefusedAtItsPlace() throws {
        let fs = try ScratchBPFFS()
        let cgroups = try ScratchCgroup()
        try cgroups.make("w1")
        let files = try ManifestDirectory(["policy.yaml": policyText("      prune: owned")])
        try FileManager.default.createSymbolicLink(atPath: files.path + "/tree", withDestinationPath: cgroups.path)
        let example = try String(contentsOfFile: repositoryRoot + "/examples/job-stats/job-stats.yaml", encoding: .utf8)
        let fixed = example.components(separatedBy: "\n").filter { !$0.contains("forEachCgroup") }.joined(separator: "\n")
            .replacingOccurrences(of: "\"{cgroup.path}\"", with: files.path + "/tree/w1")
            .replacingOccurrences(of: "{cgroup.id}", with: "w1")
        try fixed.write(toFile: files.path + "/stats.yaml", atomically: true, encoding: .utf8)
        try buildBPF([repositoryRoot + "/bpf/job_stats.bpf.c"], into: files.path)
        let result = try bpftree(["apply", "-f", files.path + "/stats.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path])
        #expect(result.status == 1, "\(result.output)")
        #expect(result.stderr.contains("a symlink is in the way; a cgroup is opened by its own path, never through a symlink"), "\(result.output)")
        #expect(result.stderr.contains("stats.yaml:") && result.stderr.contains(".link.cgroup"), "\(result.output)")
        #expect(try listing(fs.path, format: "%P").isEmpty)
    }

    /// The repro: the first mkdirat of the apply is held back (strace's fault injection) while a
    /// rebuilt binary is moved over the one whose function offset was planned.
    @Test func aBinaryReplacedAfterPlanningIsRefusedBeforeAProbeIsMade() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["policy.yaml": try tracing])
        let adder = try buildAdder(into: files.path)
        let example = try String(contentsOfFile: repositoryRoot + "/examples/uprobe-count/uprobe-count.yaml", encoding: .utf8)
        try example.replacingOccurrences(of: "binary: /bin/bash, symbol: readline", with: "binary: \(adder), symbol: bt_traced_add")
            .write(toFile: files.path + "/uprobe.yaml", atomically: true, encoding: .utf8)
        try buildBPF([repositoryRoot + "/bpf/uprobe_count.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/uprobe.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        // Planned (the offset read) well before the first mkdirat; the binary is rebuilt while it waits.
        let (status, text) = try applyHeldBack(args, anchor: fs) { _ = try buildAdder(into: files.path, padding: true) }
        #expect(status == 1, "\(text)")
        #expect(text.contains("was replaced since the uprobe's offset was read from it"), "\(text)")
        #expect(try listing(fs.path, format: "%P").isEmpty, "the tree is as it was")

        // The next apply reads the new binary and counts its calls right.
        let again = try bpftree(["apply"] + args)
        #expect(again.status == 0, "\(again.output)")
        #expect(try run([adder, "6"]).status == 0)
        #expect(try slots(fs.at("tracing/readline/calls")) == [6, 6])
    }
}
