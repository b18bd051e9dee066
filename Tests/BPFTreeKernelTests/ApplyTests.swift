import Foundation
import Testing

/// A manifest exercising directories, owners and several map types with contents.
let jobManifest = """
    apiVersion: bpftree/v1
    kind: Tree
    metadata: {name: job-a}
    spec:
      root: jobs/A
      mode: "0755"
      entries:
        config:
          map: {type: array, keySize: 4, valueSize: 8, maxEntries: 16, freeze: true,
                contents: [{key: 0, value: 100}, {key: 3, value: "de ad be ef"}]}
          mode: "0640"
        lookup:
          map: {type: hash, keySize: 2, valueSize: 4, maxEntries: 8, name: lookup_tbl,
                contents: [{key: 0x0102, value: -1}]}
        perCPU:
          map: {type: percpu_array, valueSize: 4, maxEntries: 2, contents: [{key: 1, value: 9}]}
        work:
          map: {type: queue, valueSize: 4, maxEntries: 4, contents: [{value: 11}, {value: 12}]}
        stats:
          directory:
            mode: "0750"
            uid: 1000
            gid: 1001
            entries:
              events: {map: {type: ringbuf, maxEntries: 65536}}
    """

@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct ApplyTests {
    @Test func applyCreatesExactlyTheDeclaredTree() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        let result = try bpftree(["apply", "-f", manifests.path, "--anchor", fs.path])
        #expect(result.status == 0, "\(result.output)")

        #expect(try fs.shape() == [
            "jobs d 755", "jobs/A d 755", "jobs/A/config f 640", "jobs/A/lookup f 600", "jobs/A/perCPU f 600",
            "jobs/A/stats d 750", "jobs/A/stats/events f 600", "jobs/A/work f 600",
        ])
        let stats = try fs.snapshot().first { $0.hasPrefix("jobs/A/stats ") } ?? ""
        #expect(stats.split(separator: " ")[3...4] == ["1000", "1001"])

        let config = try mapInfo(fs.at("jobs/A/config"))
        #expect(config["type"] as? String == "array")
        #expect(config["bytes_key"] as? Int == 4 && config["bytes_value"] as? Int == 8 && config["max_entries"] as? Int == 16)
        #expect(config["name"] as? String == "config")
        #expect(config["frozen"] as? Int == 1)
        let lookup = try mapInfo(fs.at("jobs/A/lookup"))
        #expect(lookup["type"] as? String == "hash" && lookup["name"] as? String == "lookup_tbl" && lookup["frozen"] as? Int == 0)
        let events = try mapInfo(fs.at("jobs/A/stats/events"))
        #expect(events["type"] as? String == "ringbuf" && events["max_entries"] as? Int == 65536)

        // Contents, read back by bpftool.
        let configDump = try #require(try bpftool(["map", "dump", "pinned", fs.at("jobs/A/config")]) as? [[String: Any]])
        let values = Dictionary(uniqueKeysWithValues: configDump.map { (bytes($0["key"]), bytes($0["value"])) })
        #expect(values[[0, 0, 0, 0]] == [100, 0, 0, 0, 0, 0, 0, 0])
        #expect(values[[3, 0, 0, 0]] == [0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0])
        #expect(values[[1, 0, 0, 0]] == [0, 0, 0, 0, 0, 0, 0, 0])
        let lookupDump = try #require(try bpftool(["map", "dump", "pinned", fs.at("jobs/A/lookup")]) as? [[String: Any]])
        #expect(lookupDump.count == 1)
        #expect(bytes(lookupDump.first?["key"]) == [0x02, 0x01])
        #expect(bytes(lookupDump.first?["value"]) == [0xff, 0xff, 0xff, 0xff])
        let perCPU = try #require(try bpftool(["map", "lookup", "pinned", fs.at("jobs/A/perCPU"), "key", "1", "0", "0", "0"]) as? [String: Any])
        let perCPUValues = try #require(perCPU["values"] as? [[String: Any]])
        #expect(!perCPUValues.isEmpty)
        #expect(perCPUValues.allSatisfy { bytes($0["value"]) == [9, 0, 0, 0] })
        let head = try #require(try bpftool(["map", "peek", "pinned", fs.at("jobs/A/work")]) as? [String: Any])
        #expect(bytes(head["value"]) == [11, 0, 0, 0])
    }

    @Test func frozenMapsRefuseWritesAndOthersAccept() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        try bpftree(["apply", "-f", manifests.path, "--anchor", fs.path])
        let frozen = try run([KernelSupport.bpftool, "map", "update", "pinned", fs.at("jobs/A/config"),
                              "key", "1", "0", "0", "0", "value", "1", "0", "0", "0", "0", "0", "0", "0"])
        #expect(frozen.status != 0)
        #expect(frozen.output.contains("Operation not permitted"))
        let open = try run([KernelSupport.bpftool, "map", "update", "pinned", fs.at("jobs/A/lookup"),
                            "key", "9", "9", "value", "1", "0", "0", "0"])
        #expect(open.status == 0, "\(open.output)")
    }

    @Test func aSecondApplyWritesNothing() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        #expect(try bpftree(["apply", "-f", manifests.path, "--anchor", fs.path]).status == 0)
        let before = try fs.snapshot()
        let mapIDs = try mapInfo(fs.at("jobs/A/config"))["id"] as? Int
        let again = try bpftree(["apply", "-f", manifests.path, "--anchor", fs.path])
        #expect(again.status == 0)
        #expect(again.stdout.contains("No changes"))
        #expect(try fs.snapshot() == before)
        #expect(try mapInfo(fs.at("jobs/A/config"))["id"] as? Int == mapIDs)
        let diff = try bpftree(["diff", "-f", manifests.path, "--anchor", fs.path])
        #expect(diff.status == 0)
        #expect(diff.stdout.contains("No changes"))
    }

    @Test func driftIsFoundByDiffAndRepairedByApply() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        try bpftree(["apply", "-f", manifests.path, "--anchor", fs.path])
        try FileManager.default.removeItem(atPath: fs.at("jobs/A/lookup"))
        #expect(chmod(fs.at("jobs/A/stats"), 0o700) == 0)
        #expect(chown(fs.at("jobs/A/stats"), 0, 1001) == 0)

        let before = try fs.snapshot()
        let diff = try bpftree(["diff", "-f", manifests.path, "--anchor", fs.path])
        #expect(diff.status == 2)
        #expect(diff.stdout.contains("+ jobs/A/lookup"))
        #expect(diff.stdout.contains("~ jobs/A/stats") && diff.stdout.contains("mode 0700 -> 0750"))
        #expect(diff.stdout.contains("owner 0:1001 -> 1000:1001"))
        #expect(diff.stdout.contains("Plan: 1 to create, 2 to update."))
        #expect(try fs.snapshot() == before, "diff changed the tree")

        let apply = try bpftree(["apply", "-f", manifests.path, "--anchor", fs.path])
        #expect(apply.status == 0, "\(apply.output)")
        #expect(try mapInfo(fs.at("jobs/A/lookup"))["type"] as? String == "hash")
        #expect(try fs.shape().contains("jobs/A/stats d 750"))
        #expect(try bpftree(["diff", "-f", manifests.path, "--anchor", fs.path]).status == 0)
    }

    @Test func anIncompatibleMapIsRefusedNamingEachFieldAndChangesNothing() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        try FileManager.default.createDirectory(atPath: fs.at("jobs/A"), withIntermediateDirectories: true)
        try pinMapWithBpftool(fs.at("jobs/A/config"), type: "hash", key: 4, value: 16, entries: 16, name: "config")
        let before = try fs.snapshot()

        let diff = try bpftree(["diff", "-f", manifests.path, "--anchor", fs.path])
        #expect(diff.status == 1)
        #expect(diff.stderr.contains("job.yaml:8:5"))
        #expect(diff.stderr.contains("type: declared array, live hash"))
        #expect(diff.stderr.contains("valueSize: declared 8, live 16"))
        let apply = try bpftree(["apply", "-f", manifests.path, "--anchor", fs.path, "-o", "json"])
        #expect(apply.status == 1)
        let report = try json(apply.stdout)
        let problems = try #require(report["problems"] as? [[String: Any]])
        let fields = (problems.first?["differences"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }
        #expect(fields == ["type", "valueSize"])
        #expect(try fs.snapshot() == before)
    }

    @Test func theAnchorCanBeAnInheritedDescriptor() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        try FileManager.default.createDirectory(atPath: fs.at("tenant"), withIntermediateDirectories: false)
        let result = try run(["bash", "-c", "exec 7<\"$1\" && exec \"$2\" apply --anchor-fd 7 -f \"$3\"", "sh",
                              fs.at("tenant"), bpftreeExecutable, manifests.path], environment: ["NO_COLOR": "1"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdout.contains("under fd 7"))
        #expect(try mapInfo(fs.at("tenant/jobs/A/config"))["frozen"] as? Int == 1)
        #expect(try fs.shape().filter { $0.hasPrefix("jobs") }.isEmpty, "nothing may land outside the anchor")
    }

    /// Files `bpftree ARGS` opens, as strace sees them.
    private func filesOpened(_ arguments: [String]) throws -> (result: RunResult, files: [String]) {
        let trace = NSTemporaryDirectory() + "bpftree-open-\(UUID().uuidString)"
        defer { unlink(trace) }
        let result = try run(["strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", trace, bpftreeExecutable] + arguments)
        let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
        return (result, lines.compactMap { $0.split(separator: "\"").dropFirst().first.map(String.init) })
    }

    @Test func neitherCreatingMapsNorListingCgroupsReadsTheKernelsBTF() throws {
        // A kfunc in the batch program would make libbpf parse all of /sys/kernel/btf/vmlinux at load;
        // cgroups are listed with getdents alone.
        let fs = try ScratchBPFFS()
        let maps = try ManifestDirectory(["m.yaml": """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: plain}
            spec:
              entries:
                config: {map: {type: array, keySize: 4, valueSize: 8, maxEntries: 4}}
            """])
        let plain = try filesOpened(["apply", "-f", maps.path, "--anchor", fs.path])
        #expect(plain.result.status == 0 && plain.result.stdout.contains("1 batch-program run"), "\(plain.result.output)")
        #expect(!plain.files.contains("/sys/kernel/btf/vmlinux"), "\(plain.files)")

        let cgroups = try ScratchCgroup()
        let id = try cgroups.make("w1")
        let template = try ManifestDirectory(["t.yaml": cgroupTemplate(source: cgroups.relative)])
        let templated = try filesOpened(["apply", "-f", template.path, "--anchor", fs.path])
        #expect(templated.result.status == 0, "\(templated.result.output)")
        #expect(!templated.files.contains("/sys/kernel/btf/vmlinux"), "\(templated.files)")
        #expect(try mapInfo(fs.at("jobs/A/\(id)/stats"))["max_entries"] as? Int == 4)
    }

    @Test func theBatchProgramRunsOncePerBatch() throws {
        let fs = try ScratchBPFFS()
        let entries = (0..<10).map { "    m\($0): {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 4, contents: [{key: \($0), value: \($0)}]}}" }
        let text = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: many}
            spec:
              root: many
              entries:
            \(entries.joined(separator: "\n"))
            """
        let manifests = try ManifestDirectory(["many.yaml": text])
        let result = try bpftree(["apply", "-f", manifests.path, "--anchor", fs.path, "--batch-size", "3", "-o", "json"])
        #expect(result.status == 0, "\(result.output)")
        let counts = try #require(try json(result.stdout)["counts"] as? [String: Int])
        #expect(counts["batchRuns"] == 4)
        #expect(counts["done"] == 11)
        for index in 0..<10 {
            let dump = try #require(try bpftool(["map", "dump", "pinned", fs.at("many/m\(index)")]) as? [[String: Any]])
            #expect(dump.count == 1 && bytes(dump.first?["value"]) == [UInt8(index), 0, 0, 0])
        }
        try FileManager.default.removeItem(atPath: fs.at("many/m4"))
        let repair = try bpftree(["apply", "-f", manifests.path, "--anchor", fs.path, "-o", "json"])
        #expect(try json(repair.stdout)["counts"] as? [String: Int] == ["create": 1, "update": 0, "replace": 0, "remove": 0, "ledger": 0, "done": 1, "failed": 0, "notDone": 0, "batchRuns": 1])
    }

    @Test func aFailedApplyReportsWhatWasAndWasNotDoneAndARerunConverges() throws {
        let fs = try ScratchBPFFS()
        func text(numaNode: Int) -> String {
            """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: partial}
            spec:
              root: p
              entries:
                a: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 4}}
                b: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 4, numaNode: \(numaNode)}}
                c: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 4}}
            """
        }
        let bad = try ManifestDirectory(["p.yaml": text(numaNode: 4000)])
        let failed = try bpftree(["apply", "-f", bad.path, "--anchor", fs.path])
        #expect(failed.status == 1)
        // Nothing is made until every object exists: the refusal leaves the tree as it was.
        #expect(failed.stdout.contains("- p/a: not done"), "\(failed.output)")
        #expect(failed.stdout.contains("! p/b: FAILED: BPF_MAP_CREATE (batch program) p/b"))
        #expect(failed.stdout.contains("- p/c: not done"))
        #expect(failed.stderr.contains("0 of 4 actions done, 1 failed, 3 not done"), "\(failed.output)")
        #expect(try fs.shape() == [])

        let good = try ManifestDirectory(["p.yaml": text(numaNode: 0)])
        let rerun = try bpftree(["apply", "-f", good.path, "--anchor", fs.path])
        #expect(rerun.status == 0, "\(rerun.output)")
        #expect(try fs.shape() == ["p d 755", "p/a f 600", "p/b f 600", "p/c f 600"])
    }

    @Test func diffPrintsTheVersionedJSONSchema() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        let result = try bpftree(["diff", "-f", manifests.path, "--anchor", fs.path, "--output", "json"])
        #expect(result.status == 2)
        let report = try json(result.stdout)
        #expect(report["schemaVersion"] as? Int == 1)
        #expect(report["command"] as? String == "diff")
        #expect(report["changes"] as? Bool == true)
        let actions = try #require(report["actions"] as? [[String: Any]])
        #expect(actions.count == 8)
        let config = try #require(actions.first { $0["path"] as? String == "jobs/A/config" })
        #expect(config["kind"] as? String == "createMap")
        #expect(config["reason"] as? String == "missing")
        #expect(config["status"] as? String == "planned")
        #expect(config["location"] as? String == "\(manifests.path)/job.yaml:8:5")
        #expect((report["counts"] as? [String: Int])?["create"] == 8)
        #expect(try fs.shape().isEmpty)
    }
}
