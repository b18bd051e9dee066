import Foundation
import Glibc
import Testing

/// The repository's root (for scripts/ and bpf/).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// Compiles BPF C sources with scripts/build-bpf.sh into `directory`; returns the objects' paths.
@discardableResult
func buildBPF(_ sources: [String], into directory: String) throws -> [String] {
    let result = try run([repositoryRoot + "/scripts/build-bpf.sh", directory] + sources)
    guard result.status == 0 else { throw HarnessError(description: "build-bpf.sh: \(result.output)") }
    return result.stdout.split(separator: "\n").map(String.init)
}

/// The job-stats example (examples/job-stats/job-stats.yaml) for cgroups below `source`, with the object
/// built from bpf/job_stats.bpf.c into the manifest's directory.
func jobStatsFiles(source: String, policyFields: String = "      prune: owned\n      allowOnIncompatible: [replace, migrate]") throws -> ManifestDirectory {
    let example = try String(contentsOfFile: repositoryRoot + "/examples/job-stats/job-stats.yaml", encoding: .utf8)
    let manifest = example.replacingOccurrences(of: "forEachCgroup: {path: jobs/A,", with: "forEachCgroup: {path: \(source),")
    let files = try ManifestDirectory(["job-stats.yaml": manifest, "policy.yaml": policyText(policyFields)])
    try buildBPF([repositoryRoot + "/bpf/job_stats.bpf.c"], into: files.path)
    return files
}

/// A cgroup_skb egress program `gate` returning `verdict` (C), to build with `buildBPF`: another
/// verdict is another tag.
func gateSource(_ verdict: String) -> String {
    """
    #include <linux/bpf.h>
    #include <bpf/bpf_helpers.h>
    char LICENSE[] SEC("license") = "GPL";
    SEC("cgroup_skb/egress")
    int gate(struct __sk_buff *skb) { return \(verdict); }
    """
}

/// Runs a process in cgroup `directory` that sends `count` UDP datagrams of `size` bytes to 127.0.0.1.
func sendUDP(from directory: String, count: Int, size: Int) throws {
    let script = """
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(\(count)):
            s.sendto(b"x" * \(size), ("127.0.0.1", 9))
        """
    // The socket is made after the process joined the cgroup, so its packets are the cgroup's.
    let result = try run(["sh", "-c", "echo $$ > \"$1/cgroup.procs\" && exec python3 -c \"$2\"", "sh", directory, script])
    guard result.status == 0 else { throw HarnessError(description: "send from \(directory): \(result.output)") }
}

/// `key value` lines of a stats pin, read by opening it (which runs the iterator).
func stats(_ path: String) throws -> [String: UInt64] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    var values: [String: UInt64] = [:]
    for line in text.split(separator: "\n") {
        let parts = line.split(separator: " ")
        if parts.count == 2, let value = UInt64(parts[1]) { values[String(parts[0])] = value }
    }
    return values
}

func pinned(_ kind: String, _ path: String) throws -> [String: Any] {
    try #require(try bpftool([kind, "show", "pinned", path]) as? [String: Any])
}

/// Programs and links from manifests, against the real kernel and real cgroup v2 cgroups.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct ProgramLinkTests {
    @Test func eachCgroupsStatsPinCountsItsOwnPacketsAndAGoneCgroupLosesItsLinks() throws {
        let fs = try ScratchBPFFS()
        let cgroups = try ScratchCgroup()
        let w1 = try cgroups.make("w1"), w2 = try cgroups.make("w2")
        let files = try jobStatsFiles(source: cgroups.relative)
        let args = ["-f", files.path + "/job-stats.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftree(["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")

        // What is pinned, as bpftool sees it.
        let counters = try mapInfo(fs.at("jobs/A/counters"))
        let egress = try pinned("prog", fs.at("jobs/A/count_egress"))
        #expect(egress["type"] as? String == "cgroup_skb" && egress["name"] as? String == "count_egress")
        #expect((egress["map_ids"] as? [Int])?.contains(counters["id"] as? Int ?? -1) == true, "\(egress)")
        let iterator = try pinned("prog", fs.at("jobs/A/cgroup_stats"))
        #expect(iterator["type"] as? String == "tracing")
        #expect((iterator["map_ids"] as? [Int])?.contains(counters["id"] as? Int ?? -1) == true, "\(iterator)")
        for id in [w1, w2] {
            let link = try pinned("link", fs.at("jobs/A/\(id)/egress"))
            #expect(link["type"] as? String == "cgroup" && link["attach_type"] as? String == "cgroup_inet_egress")
            #expect(link["cgroup_id"] as? UInt64 == id && link["prog_id"] as? Int == egress["id"] as? Int, "\(link)")
            let stats = try pinned("link", fs.at("jobs/A/\(id)/stats"))
            #expect(stats["type"] as? String == "iter" && stats["target_name"] as? String == "cgroup")
            #expect(stats["cgroup_id"] as? UInt64 == id && stats["order"] as? String == "self_only", "\(stats)")
            #expect(stats["prog_id"] as? Int == iterator["id"] as? Int)
        }
        #expect(try fs.shape().contains("jobs/A/\(w1)/stats f 444"))

        // Each cgroup's pin prints its own traffic, not the other's.
        try sendUDP(from: cgroups.path + "/w1", count: 5, size: 10)
        try sendUDP(from: cgroups.path + "/w2", count: 9, size: 100)
        let first = try stats(fs.at("jobs/A/\(w1)/stats")), second = try stats(fs.at("jobs/A/\(w2)/stats"))
        #expect(first == ["cgroup_id": w1, "packets": 5, "bytes": 5 * (20 + 8 + 10)], "\(first)")
        #expect(second == ["cgroup_id": w2, "packets": 9, "bytes": 9 * (20 + 8 + 100)], "\(second)")
        #expect(try bpftree(["diff"] + args).status == 0)

        // The shared map grows (migrated): both programs are loaded again on the new map, their links
        // made again on them, and the counts carry over.
        let manifest = files.path + "/job-stats.yaml"
        let grown = try String(contentsOfFile: manifest, encoding: .utf8)
            .replacingOccurrences(of: "maxEntries: 4096}", with: "maxEntries: 8192}\n      onIncompatible: migrate")
        try grown.write(toFile: manifest, atomically: true, encoding: .utf8)
        let migrated = try bpftree(["apply"] + args)
        #expect(migrated.status == 0, "\(migrated.output)")
        #expect(!migrated.stdout.contains("keeps using the old map"), "\(migrated.output)")
        let newCounters = try mapInfo(fs.at("jobs/A/counters"))
        #expect(newCounters["max_entries"] as? Int == 8192)
        let reloaded = try pinned("prog", fs.at("jobs/A/count_egress"))
        #expect((reloaded["map_ids"] as? [Int])?.contains(newCounters["id"] as? Int ?? -1) == true, "\(reloaded)")
        #expect(try pinned("link", fs.at("jobs/A/\(w1)/egress"))["prog_id"] as? Int == reloaded["id"] as? Int)
        try sendUDP(from: cgroups.path + "/w1", count: 1, size: 10)
        #expect(try stats(fs.at("jobs/A/\(w1)/stats"))["packets"] == 6)
        #expect(try stats(fs.at("jobs/A/\(w2)/stats"))["packets"] == 9)
        #expect(try bpftree(["diff"] + args).status == 0)

        // A removed cgroup loses its links and its subtree on the next pass; the other keeps counting.
        let oldLink = try pinned("link", fs.at("jobs/A/\(w2)/egress"))["id"] as? Int ?? -1
        try cgroups.remove("w2")
        let pruned = try bpftree(["apply"] + args)
        #expect(pruned.status == 0, "\(pruned.output)")
        #expect(pruned.stdout.contains("jobs/A/\(w2)/egress: remove link"), "\(pruned.output)")
        #expect(!(try fs.shape().contains { $0.hasPrefix("jobs/A/\(w2)") }))
        let links = try #require(try bpftool(["link", "show"]) as? [[String: Any]])
        #expect(!links.contains { $0["id"] as? Int == oldLink }, "the removed cgroup's link is gone from the kernel")
        try sendUDP(from: cgroups.path + "/w1", count: 2, size: 10)
        #expect(try stats(fs.at("jobs/A/\(w1)/stats"))["packets"] == 8)
        #expect(try bpftree(["diff"] + args).status == 0)
    }

    @Test func aChangedProgramIsLoadedAgainWithItsLinksAndTheLedgerRecordsItsTag() throws {
        let fs = try ScratchBPFFS()
        let cgroups = try ScratchCgroup()
        let w1 = try cgroups.make("w1")
        let source = gateSource
        let manifest = { (rule: String) in
            """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: gate}
            spec:
              root: jobs
              entries:
                gate: {program: {object: gate.bpf.o, name: gate, type: cgroup_skb}, onIncompatible: \(rule)}
                w1: {link: {program: jobs/gate, cgroup: \(cgroups.relative)/w1, attachType: cgroup_inet_egress}, onIncompatible: \(rule)}
            """
        }
        let files = try ManifestDirectory(["t.yaml": manifest("replace"), "policy.yaml": policyText("      allowOnIncompatible: [replace]"),
                                           "gate.bpf.c": source("1")])
        try buildBPF([files.path + "/gate.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/t.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        #expect(try bpftree(["apply"] + args).status == 0)
        let before = try pinned("prog", fs.at("jobs/gate"))
        let tag = try #require(before["tag"] as? String)
        #expect(try ledgerFingerprint(fs, "jobs/gate") == UInt64(tag, radix: 16), "the ledger records the loaded program's tag")

        // The object is rebuilt with other code: its tag differs from the pinned program's.
        try source("skb->len < 1000").write(toFile: files.path + "/gate.bpf.c", atomically: true, encoding: .utf8)
        try buildBPF([files.path + "/gate.bpf.c"], into: files.path)
        let diff = try bpftree(["diff"] + args)
        #expect(diff.status == 2)
        #expect(diff.stdout.contains("jobs/gate") && diff.stdout.contains("tag: declared"), "\(diff.output)")
        #expect(diff.stdout.contains("live \(tag)"), "\(diff.output)")

        // With onIncompatible fail it is a conflict that changes nothing.
        try manifest("fail").write(toFile: files.path + "/t.yaml", atomically: true, encoding: .utf8)
        let refused = try bpftree(["apply"] + args)
        #expect(refused.status == 1 && refused.stderr.contains("is fail"), "\(refused.output)")
        #expect(try pinned("prog", fs.at("jobs/gate"))["id"] as? Int == before["id"] as? Int)

        try manifest("replace").write(toFile: files.path + "/t.yaml", atomically: true, encoding: .utf8)
        let replaced = try bpftree(["apply"] + args)
        #expect(replaced.status == 0, "\(replaced.output)")
        let after = try pinned("prog", fs.at("jobs/gate"))
        let newTag = try #require(after["tag"] as? String)
        #expect(newTag != tag && diff.stdout.contains("declared \(newTag)"), "\(diff.output)")
        #expect(try ledgerFingerprint(fs, "jobs/gate") == UInt64(newTag, radix: 16))
        let link = try pinned("link", fs.at("jobs/w1"))
        #expect(link["prog_id"] as? Int == after["id"] as? Int && link["cgroup_id"] as? UInt64 == w1, "\(link)")
        #expect(try bpftree(["diff"] + args).status == 0)

        // Someone deletes the program pin: it is loaded again and the link moves to it in place.
        try FileManager.default.removeItem(atPath: fs.at("jobs/gate"))
        let repaired = try bpftree(["apply"] + args)
        #expect(repaired.status == 0, "\(repaired.output)")
        #expect(repaired.stdout.contains("jobs/gate: created program") && repaired.stdout.contains("jobs/w1: link update program: program id ") && repaired.stdout.contains("-> jobs/gate, in place"), "\(repaired.output)")
        #expect(try pinned("link", fs.at("jobs/w1"))["prog_id"] as? Int == pinned("prog", fs.at("jobs/gate"))["id"] as? Int)
        #expect(try bpftree(["diff"] + args).status == 0)
    }

    @Test(arguments: [
        ("object: missing.bpf.o, name: count_egress", "cannot read BPF object", "program.object"),
        ("object: job_stats.bpf.o, name: nope", "no program named 'nope' in job_stats.bpf.o; it has: count_egress, cgroup_stats", "program.name"),
        ("object: job_stats.bpf.o, name: count_egress, type: xdp", "is a cgroup_skb program (by its section name), declared xdp", "program.type"),
        ("object: job-stats.yaml, name: count_egress", "cannot open BPF object job-stats.yaml", "program.object"),
        ("object: job_stats.bpf.o, name: count_egress, maps: {counters: jobs/A/small}", "does not match 'jobs/A/small': valueSize 16 in the object, 8 declared", "program.maps.counters"),
        ("object: job_stats.bpf.o, name: count_egress, maps: {counters: jobs/A/none}", "is not declared", "program.maps.counters"),
    ])
    func aProgramThatCannotBeLoadedIsAClearErrorThatChangesNothing(program: String, message: String, field: String) throws {
        let fs = try ScratchBPFFS()
        let manifest = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: bad}
            spec:
              root: jobs/A
              entries:
                small: {map: {type: lru_hash, keySize: 8, valueSize: 8, maxEntries: 16}}
                prog: {program: {\(program)}}
            """
        let files = try ManifestDirectory(["job-stats.yaml": manifest])
        try buildBPF([repositoryRoot + "/bpf/job_stats.bpf.c"], into: files.path)
        for command in ["diff", "apply"] {
            let result = try bpftree([command, "-f", files.path + "/job-stats.yaml", "--anchor", fs.path])
            #expect(result.status == 1, "\(result.output)")
            #expect(result.stderr.contains(message), "\(result.output)")
            #expect(result.stderr.contains("job-stats.yaml:8:"), "the error names the entry's line: \(result.output)")
            #expect(result.stderr.contains("spec.entries.prog.\(field)"), "\(result.output)")
        }
        #expect(try fs.snapshot().isEmpty)
    }

    @Test func aLinkToAMissingCgroupOrAnUndeclaredProgramIsRefused() throws {
        let fs = try ScratchBPFFS()
        let manifest = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: bad}
            spec:
              root: jobs
              entries:
                gone: {link: {program: jobs/p, cgroup: /sys/fs/cgroup/no-such-cgroup, attachType: cgroup_inet_egress}}
            """
        let files = try ManifestDirectory(["t.yaml": manifest])
        let result = try bpftree(["apply", "-f", files.path + "/t.yaml", "--anchor", fs.path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("t.yaml:7:") && result.stderr.contains("the link's program 'jobs/p' is not declared"), "\(result.output)")
        let withProgram = manifest + "\n    p: {program: {object: job_stats.bpf.o, name: count_egress}}\n"
        try withProgram.write(toFile: files.path + "/t.yaml", atomically: true, encoding: .utf8)
        try buildBPF([repositoryRoot + "/bpf/job_stats.bpf.c"], into: files.path)
        let missing = try bpftree(["apply", "-f", files.path + "/t.yaml", "--anchor", fs.path])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("cgroup '/sys/fs/cgroup/no-such-cgroup': no such cgroup directory"), "\(missing.output)")
        #expect(missing.stderr.contains("spec.entries.gone.link.cgroup"), "\(missing.output)")
        #expect(try fs.snapshot().isEmpty)
    }
}

/// The fingerprint field of `path`'s ledger record (for a program: its tag), read with bpftool.
func ledgerFingerprint(_ fs: ScratchBPFFS, _ path: String) throws -> UInt64? {
    let dump = try #require(try bpftool(["map", "dump", "pinned", fs.at("bpftree_ledger")]) as? [[String: Any]])
    for entry in dump {
        let key = bytes(entry["key"])
        guard String(decoding: key.prefix { $0 != 0 }, as: UTF8.self) == path else { continue }
        // struct bt_ledger_value: inode u64, pending_inode u64, fingerprint u64, ...
        let value = bytes(entry["value"])
        return value[16..<24].reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
    return nil
}
