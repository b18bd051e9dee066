import BPFTreeTestSupport
import Foundation
import Glibc
import Testing

/// A seeded mutation fuzzer of the shipped examples and policies, run against the real binary and kernel:
/// every run exits 0, 1 or 2 within a time bound, never by a signal; an apply that exits 1 leaves the tree
/// as it was; every error about a file names a line and column. The node is hostile too: some trials find
/// bpftree's ledger or stamp symlinked to another anchor's or owned by another user (every command must
/// refuse, and the other anchor's ledger stay as it was), FIFOs among the values, and a template over
/// cgroups with odd names (255 bytes, not UTF-8, equal to another root). `BPFTREE_FUZZ_COUNT` (default 200) and
/// `BPFTREE_FUZZ_SEED` (default 16) choose how many mutations and which.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct FuzzTests {
    static let manifests = ["examples/job-a.yaml", "examples/platform.yaml", "examples/cgroups/job-a-cgroups.yaml",
                            "examples/job-stats/job-stats.yaml", "examples/containers/tenant.yaml",
                            "examples/xdp-count/xdp-count.yaml", "examples/task-iter/task-iter.yaml",
                            "examples/sk-lookup-count/sk-lookup-count.yaml", "examples/tcx-filter/tcx-filter.yaml"]
    static let policies = ["policies/platform.yaml", "policies/default.yaml", "policies/network.yaml", "policies/tracing.yaml"]

    /// Tokens that have broken parsers and validators elsewhere.
    static let tokens = ["4294967295", "4294967296", "-1", "0", "1e300", "0x", "~", "null", "[]", "{}", "*a", "&a x", "!!binary x",
                         "..", "/", "a.b", "\"\\u0000\"", "\"\\e[2J\"", "\"\\xff\"", String(repeating: "a", count: 300),
                         String(repeating: "[", count: 600), "{cgroup.id}", "bpftree_ledger", "bpftree_tmp_1", "'", "\"", ":", "- ",
                         "\t", "? x", "<<: *a", "\"0777777\"", "ringbuf", "percpu_hash", "migrate", "1.5", "yes", "0o17",
                         fifo, fifo + "/x", "/proc/self/ns/net", "/dev/zero"]
    /// A FIFO the tokens name (as a namespace, a binary, an object): opening it for reading would block.
    static let fifo = NSTemporaryDirectory() + "bpftree-fuzz-fifo"

    /// A small deterministic generator (SplitMix64), so that a failure can be replayed from its seed.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func mutate(_ text: String, _ random: inout Generator) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            guard !lines.isEmpty else { break }
            let at = Int.random(in: 0..<lines.count, using: &random)
            switch Int.random(in: 0..<7, using: &random) {
            case 0: lines.remove(at: at)
            case 1: lines.insert(lines[at], at: at)
            case 2: lines.swapAt(at, Int.random(in: 0..<lines.count, using: &random))
            case 3:
                // Replace a value after a colon with a token.
                if let colon = lines[at].lastIndex(of: ":") {
                    lines[at] = String(lines[at][...colon]) + " " + tokens.randomElement(using: &random)!
                }
            case 4:
                var bytes = Array(lines[at].utf8)
                if !bytes.isEmpty { bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random) }
                lines[at] = String(decoding: bytes, as: UTF8.self)
            case 5: lines[at] = String(lines[at].prefix(Int.random(in: 0...lines[at].count, using: &random)))
            default: lines.insert(String(repeating: " ", count: Int.random(in: 0...8, using: &random)) + tokens.randomElement(using: &random)!, at: at)
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Lines of `stderr` that are errors about a file but name no line and column.
    static func errorsWithoutLocation(_ stderr: String, files: [String]) -> [String] {
        stderr.split(separator: "\n").map(String.init).filter { line in
            guard line.hasPrefix("error: "), files.contains(where: { line.contains($0) }) else { return false }
            return line.range(of: #"\.yaml:\d+:\d+: "#, options: .regularExpression) == nil
        }
    }

    @Test func mutatedExamplesAndPoliciesAreRefusedCleanlyOrApplied() throws {
        let environment = ProcessInfo.processInfo.environment
        let count = environment["BPFTREE_FUZZ_COUNT"].flatMap(Int.init) ?? 200
        let seed = environment["BPFTREE_FUZZ_SEED"].flatMap(UInt64.init) ?? 16
        var random = Generator(state: seed)
        let fs = try ScratchBPFFS()
        let work = try ManifestDirectory([:])
        unlink(Self.fifo)
        try #require(mkfifo(Self.fifo, 0o600) == 0)
        defer { unlink(Self.fifo) }
        // Another anchor beside the fuzzed one, whose ledger a symlink may lead to.
        let victim = try ManifestDirectory(["v.yaml": manifest("    v: {map: {type: array, valueSize: 8, maxEntries: 4}}", name: "victim", root: "v")])
        try FileManager.default.createDirectory(atPath: fs.at("victim"), withIntermediateDirectories: false)
        try #require(try run([bpftreeExecutable, "apply", "-f", victim.path + "/v.yaml", "--anchor", fs.at("victim")]).status == 0)
        let victimLedger = try run([KernelSupport.bpftool, "map", "dump", "pinned", fs.at("victim/bpftree_ledger")]).stdout
        // Cgroups with odd names for a template to render.
        let cgroups = try ScratchCgroup()
        for name in ["w1", String(repeating: "n", count: 255), "config", "stats"] { try cgroups.make(name) }
        for octal in ["\\377", "\\376"] { _ = try run(["sh", "-c", "mkdir \"$0/$(printf \"$1\")\"", cgroups.path, octal]) }
        let odd = cgroupTemplate(source: cgroups.relative, root: "jobs/A/{cgroup.name}", name: "odd")
        try odd.write(toFile: work.path + "/odd.yaml", atomically: true, encoding: .utf8)
        // Objects the job-stats example names, so that its programs can load.
        try buildBPF([repositoryRoot + "/bpf/job_stats.bpf.c"], into: work.path)
        var outcomes: [String: Int] = [:]
        for trial in 0..<count {
            let mutatePolicy = Int.random(in: 0..<4, using: &random) == 0
            let manifestSource = (Self.manifests + [work.path + "/odd.yaml"]).randomElement(using: &random)!
            let policySource = Self.policies.randomElement(using: &random)!
            var manifest = try String(contentsOfFile: manifestSource.hasPrefix("/") ? manifestSource : repositoryRoot + "/" + manifestSource,
                                      encoding: .utf8)
            var policy = try String(contentsOfFile: repositoryRoot + "/" + policySource, encoding: .utf8)
            if mutatePolicy { policy = Self.mutate(policy, &random) } else { manifest = Self.mutate(manifest, &random) }
            let manifestFile = work.path + "/m.yaml", policyFile = work.path + "/p.yaml"
            try manifest.write(toFile: manifestFile, atomically: true, encoding: .utf8)
            try policy.write(toFile: policyFile, atomically: true, encoding: .utf8)
            let command = Int.random(in: 0..<2, using: &random) == 0 ? "diff" : "apply"
            // One trial in eight finds its bookkeeping tampered with: a symlink to the victim's ledger, or a
            // stamp or ledger another user owns.
            var tampered: (name: String, expected: String, undo: [String])?
            switch Int.random(in: 0..<16, using: &random) {
            case 0:
                let moved = FileManager.default.fileExists(atPath: fs.at("bpftree_ledger")) && rename(fs.at("bpftree_ledger"), fs.at("bpftree_kept")) == 0
                try FileManager.default.createSymbolicLink(atPath: fs.at("bpftree_ledger"), withDestinationPath: "victim/bpftree_ledger")
                tampered = ("bpftree_ledger", "it is a symlink", moved ? ["mv", "-T", fs.at("bpftree_kept"), fs.at("bpftree_ledger")] : ["true"])
            case 1 where FileManager.default.fileExists(atPath: fs.at("bpftree_stamp")):
                tampered = ("bpftree_stamp", "the pin is owned by uid 1000", ["chown", "0", fs.at("bpftree_stamp")])
                try #require(try run(["chown", "1000", fs.at("bpftree_stamp")]).status == 0)
            default:
                break
            }
            let before = try listing(fs.path, format: "%P %y %m %U %G %i", hiding: [])
            let started = ContinuousClock.now
            let result = try run(["timeout", "-s", "KILL", "20", bpftreeExecutable, command, "-f", manifestFile, "--policy", policyFile,
                                  "--anchor", fs.path], environment: ["NO_COLOR": "1"])
            let elapsed = ContinuousClock.now - started
            let what = "trial \(trial) (seed \(seed)): \(command) of \(mutatePolicy ? policySource : manifestSource) mutated, exit \(result.status)"
            outcomes["\(command) \(result.status)", default: 0] += 1
            if environment["BPFTREE_FUZZ_VERBOSE"] != nil { print("\(what)\n\(result.output.prefix(1000))") }
            let allowed: Set<Int32> = command == "diff" ? [0, 1, 2] : [0, 1]
            #expect(allowed.contains(result.status), "\(what): \(result.output.prefix(2000))\n--- input:\n\(mutatePolicy ? policy : manifest)")
            #expect(elapsed < .seconds(15), "\(what) took \(elapsed)")
            #expect(Self.errorsWithoutLocation(result.stderr, files: [manifestFile, policyFile]).isEmpty, "\(what): \(result.stderr)")
            if result.status != 0 && command == "apply" || command == "diff" {
                let after = try listing(fs.path, format: "%P %y %m %U %G %i", hiding: [])
                // A failed apply may only have settled bpftree's own ledger; diff never writes.
                let ours = { (lines: [String]) in lines.filter { !$0.hasPrefix("bpftree_") } }
                #expect(command == "diff" ? after == before : ours(after) == ours(before), "\(what): the tree changed\n\(result.output.prefix(2000))")
            }
            if let tampered {
                #expect(result.status == 1 && result.stderr.contains("\(tampered.name): \(tampered.expected)"), "\(what): \(result.output.prefix(2000))")
                if tampered.name == "bpftree_ledger" { unlink(fs.at("bpftree_ledger")) }
                try #require(try run(tampered.undo).status == 0)
                let now = try run([KernelSupport.bpftool, "map", "dump", "pinned", fs.at("victim/bpftree_ledger")]).stdout
                #expect(now == victimLedger, "\(what): the other anchor's ledger changed")
            }
        }
        print("fuzz (seed \(seed), \(count) mutations): \(outcomes.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", "))")
    }
}
