import Foundation
import Glibc
import Testing

/// How many BPF_PROG_LOAD calls `bpftree ARGS` makes of the job-stats programs, counted by strace (every
/// verifier run is one; bpftree's own batch program and libbpf's feature probes are not counted).
func programLoads(_ arguments: [String]) throws -> (loads: Int, result: RunResult, lines: [String]) {
    let trace = FileManager.default.temporaryDirectory.appendingPathComponent("bpftree-trace-\(UUID().uuidString)").path
    defer { unlink(trace) }
    let result = try run(["strace", "-f", "-qq", "-e", "trace=bpf", "-o", trace, bpftreeExecutable] + arguments,
                         environment: ["NO_COLOR": "1"])
    let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
    let loads = lines.filter { line in
        line.contains("BPF_PROG_LOAD") && ["count_egress", "cgroup_stats"].contains { line.contains("prog_name=\"\($0)\"") }
    }.map(String.init)
    return (loads.count, result, loads)
}

/// The CLI keeps what loading each declared program gave (`bpftree_images` at the anchor), so that a
/// pass over unchanged objects runs no verifier; strace counts the loads.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct ProgramImageCacheTests {
    @Test func anUnchangedObjectIsNotLoadedAgainAndAChangedOneIs() throws {
        let fs = try ScratchBPFFS()
        let cgroups = try ScratchCgroup()
        try cgroups.make("w1")
        let files = try jobStatsFiles(source: cgroups.relative)
        let object = files.path + "/job_stats.bpf.o"
        let args = ["-f", files.path + "/job-stats.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]

        // A reader leaves no cache behind; the first apply loads each program to learn it, then to pin it.
        let diff = try programLoads(["diff"] + args)
        #expect(diff.result.status == 2, "\(diff.result.output)")
        #expect(diff.loads >= 2, "\(diff.loads)")
        #expect(!FileManager.default.fileExists(atPath: fs.at("bpftree_images")))
        let first = try programLoads(["apply"] + args)
        #expect(first.result.status == 0, "\(first.result.output)")
        #expect(first.loads >= 4, "\(first.loads)")
        let cache = try mapInfo(fs.at("bpftree_images"))
        #expect(cache["type"] as? String == "hash" && cache["bytes_key"] as? Int == 32, "\(cache)")
        let entries = try #require(try bpftool(["map", "dump", "pinned", fs.at("bpftree_images")]) as? [Any])
        #expect(entries.count == 2, "one image per program (count_egress, cgroup_stats): \(entries.count)")

        // The same bytes, even with a new mtime: no verifier run, and the tree is found converged.
        let noop = try programLoads(["apply"] + args)
        #expect(noop.result.status == 0 && noop.result.stdout.contains("No changes"), "\(noop.result.output)")
        #expect(noop.loads == 0, "\(noop.lines)")
        #expect(utimes(object, nil) == 0)
        let touched = try programLoads(["diff"] + args)
        #expect(touched.result.status == 0, "\(touched.result.output)")
        #expect(touched.loads == 0, "\(touched.loads)")

        // Other bytes (the same program, so the same tag): loaded again, and still nothing to change.
        let handle = try #require(FileHandle(forWritingAtPath: object))
        handle.seekToEndOfFile()
        handle.write(Data(repeating: 0, count: 8))
        try handle.close()
        let changed = try programLoads(["apply"] + args)
        #expect(changed.result.status == 0 && changed.result.stdout.contains("No changes"), "\(changed.result.output)")
        #expect(changed.loads >= 2, "\(changed.loads)")
        let again = try programLoads(["apply"] + args)
        #expect(again.loads == 0, "\(again.loads)")
    }

    @Test func aForgedOrForeignCacheIsOnlyACacheMiss() throws {
        let fs = try ScratchBPFFS()
        let cgroups = try ScratchCgroup()
        try cgroups.make("w1")
        let files = try jobStatsFiles(source: cgroups.relative)
        let args = ["-f", files.path + "/job-stats.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        // Something else pinned under the cache's name: the run loads the programs and leaves it alone.
        try pinMapWithBpftool(fs.at("bpftree_images"), type: "array", key: 4, value: 4, entries: 1, name: "squatter")
        let applied = try programLoads(["apply"] + args)
        #expect(applied.result.status == 0, "\(applied.result.output)")
        #expect(try mapInfo(fs.at("bpftree_images"))["name"] as? String == "squatter")
        let again = try programLoads(["apply"] + args)
        #expect(again.result.status == 0 && again.loads >= 2, "\(again.loads) \(again.result.output)")

        // A cache whose entries are garbage: every image is loaded again, and the tree stays converged. (The
        // tree is stamped by now: --verify plans in full, so that the programs are resolved.)
        try FileManager.default.removeItem(atPath: fs.at("bpftree_images"))
        #expect(try bpftree(["apply", "--verify"] + args).status == 0)
        let keys = try #require(try bpftool(["map", "dump", "pinned", fs.at("bpftree_images")]) as? [[String: Any]])
        for entry in keys {
            let key = try #require(entry["key"] as? [String]).map { $0 }
            let value = [String](repeating: "0xff", count: 4096)
            let result = try run([KernelSupport.bpftool, "map", "update", "pinned", fs.at("bpftree_images"), "key"] + key
                                 + ["value"] + value)
            #expect(result.status == 0, "\(result.output)")
        }
        let forged = try programLoads(["apply", "--verify"] + args)
        #expect(forged.result.status == 0 && forged.result.stdout.contains("No changes"), "\(forged.result.output)")
        #expect(forged.loads >= 2, "\(forged.loads)")
    }
}
