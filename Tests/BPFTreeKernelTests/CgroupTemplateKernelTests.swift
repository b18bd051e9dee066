import Foundation
import BPFTreeTestSupport
import Testing

/// `forEachCgroup` templates against real cgroup v2 directories.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct CgroupTemplateKernelTests {
    let policy = policyText("      prune: owned")

    /// The issue's odd names: a 255-byte one, one equal to another manifest's root, and `\\xff`, `\\xfe` as
    /// siblings. Only the first two miss their subtree (each with a notice); the others get theirs, under
    /// their own bytes, and the other manifest is applied too.
    @Test func oddCgroupNamesCostOnlyTheirOwnSubtrees() throws {
        let fs = try ScratchBPFFS()
        let cgroups = try ScratchCgroup()
        let long = String(repeating: "n", count: 255)
        for name in ["w1", long, "taken"] { try cgroups.make(name) }
        for octal in ["\\377", "\\376"] {
            try #require(try run(["sh", "-c", "mkdir \"$0/$(printf \"$1\")\"", cgroups.path, octal]).status == 0)
        }
        let template = cgroupTemplate(source: cgroups.relative, root: "jobs/A/{cgroup.name}")
        let fixed = manifest("    m: {map: {type: array, valueSize: 8, maxEntries: 4}}", name: "fixed", root: "jobs/A/taken")
        let files = try ManifestDirectory(["t.yaml": template, "fixed.yaml": fixed, "policy.yaml": policy])
        let args = ["-f", files.path + "/t.yaml", "-f", files.path + "/fixed.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftree(["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")
        #expect(applied.stdout.contains("cgroup '\(long)' (id \(try cgroups.id(long))) of \(cgroups.relative) gets no subtree: its path"), "\(applied.output)")
        #expect(applied.stdout.contains("cgroup 'taken' (id \(try cgroups.id("taken"))) of \(cgroups.relative) gets no subtree: 'jobs/A/taken' is also declared by manifest fixed"),
                "\(applied.output)")
        // Each raw name has its own subtree (checked by bytes, with sh), and the fixed manifest's map is there.
        for octal in ["\\377", "\\376"] {
            let found = try run(["sh", "-c", "test -f \"$0/jobs/A/$(printf \"$1\")/stats\"", fs.path, octal])
            #expect(found.status == 0, "no subtree for \(octal)")
        }
        #expect(try mapInfo(fs.at("jobs/A/w1/stats"))["type"] as? String == "array")
        #expect(try mapInfo(fs.at("jobs/A/taken/m"))["type"] as? String == "array")
        #expect(applied.stdout.contains("jobs/A/\\xff/stats") && applied.stdout.contains("jobs/A/\\xfe/stats"), "\(applied.output)")
        #expect(try bpftree(["diff", "--verify"] + args).status == 0)
    }

    @Test func eachCgroupGetsItsSubtreeAndAGoneCgroupLosesItsOwnedEntries() throws {
        let fs = try ScratchBPFFS()
        let cgroups = try ScratchCgroup()
        let w1 = try cgroups.make("w1"), w2 = try cgroups.make("w2")
        let files = try ManifestDirectory(["t.yaml": cgroupTemplate(source: cgroups.relative), "policy.yaml": policy])
        let args = ["-f", files.path + "/t.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftree(["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")
        for id in [w1, w2] {
            // Checked with bpftool: the map and its contents, at the cgroup's id.
            let info = try mapInfo(fs.at("jobs/A/\(id)/stats"))
            #expect(info["type"] as? String == "array")
            let dump = try bpftool(["map", "dump", "pinned", fs.at("jobs/A/\(id)/stats")]) as? [[String: Any]]
            #expect(bytes(dump?.first?["value"]) == [7, 0, 0, 0, 0, 0, 0, 0])
        }
        // The ids are the kernel's cgroup ids, as name_to_handle_at gives them (independently of bpftree).
        #expect(try cgroups.kernelID("w1") == w1 && cgroups.kernelID("w2") == w2)
        #expect(try fs.shape().filter { $0.hasPrefix("jobs/A/") }.count == 4)

        // Converged and stamped; a new cgroup breaks the stamp and gets its subtree at the next pass.
        let again = try bpftree(["diff", "-o", "json"] + args)
        #expect(try json(again.stdout)["stamp"] as? String == "matched", "\(again.output)")
        let w3 = try cgroups.make("w3")
        let pending = try bpftree(["diff"] + args)
        #expect(pending.status == 2)
        #expect(pending.stdout.contains("jobs/A/\(w3)/stats"), "\(pending.output)")

        // A foreign pin inside w1's subtree survives the prune of w1's owned entries.
        try pinMapWithBpftool(fs.at("jobs/A/\(w1)/mine"), type: "array", key: 4, value: 4, entries: 1, name: "mine")
        try cgroups.remove("w1")
        try cgroups.remove("w2")
        let pruned = try bpftree(["apply"] + args)
        #expect(pruned.status == 0, "\(pruned.output)")
        let shape = try fs.shape()
        #expect(!shape.contains { $0.hasPrefix("jobs/A/\(w2)") }, "\(shape)")
        #expect(!shape.contains { $0.hasPrefix("jobs/A/\(w1)/stats") }, "\(shape)")
        #expect(shape.contains { $0.hasPrefix("jobs/A/\(w1)/mine") }, "\(shape)")
        #expect(shape.contains { $0.hasPrefix("jobs/A/\(w3)/stats") }, "\(shape)")
        #expect(try bpftree(["diff"] + args).status == 0)
    }

    @Test func namesAndDepthsRenderAndADottedNameIsRefusedWithANotice() throws {
        let fs = try ScratchBPFFS()
        let cgroups = try ScratchCgroup()
        try cgroups.make("a")
        try cgroups.make("b")
        try cgroups.make("a/web")
        try cgroups.make("b/db")
        try cgroups.make("b/x.service")
        let files = try ManifestDirectory([
            "t.yaml": cgroupTemplate(source: cgroups.relative, depth: 2, root: "jobs/{cgroup.name}"), "policy.yaml": policy,
        ])
        let result = try bpftree(["apply", "-f", files.path + "/t.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdout.contains("cgroup 'b/x.service'"), "\(result.output)")
        let shape = try fs.shape()
        #expect(shape.contains("jobs/web/stats f 600") && shape.contains("jobs/db/stats f 600"), "\(shape)")
        #expect(!shape.contains { $0.contains("service") })
    }

    @Test func aSourceThatIsNotOnCgroupV2IsAClearErrorThatChangesNothing() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["t.yaml": cgroupTemplate(source: "/tmp")])
        let result = try bpftree(["apply", "-f", files.path + "/t.yaml", "--anchor", fs.path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("scan cgroups /tmp: not a cgroup v2 directory"), "\(result.output)")
        #expect(try fs.snapshot().isEmpty)
    }
}
