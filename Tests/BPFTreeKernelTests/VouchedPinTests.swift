import Foundation
import Testing

/// A no-op pass trusts the ledger for pins whose inode is the one recorded (no BPF_OBJ_GET), and only for
/// those: anything pinned again at a path has a new inode and is inspected.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct VouchedPinTests {
    /// How many pins a diff inspected, from its JSON report.
    private func inspectedPins(_ arguments: [String]) throws -> (pins: Int, report: [String: Any]) {
        let result = try bpftree(["diff", "-o", "json"] + arguments)
        let report = try json(result.output)
        let observed = try #require(report["observed"] as? [String: Any], "\(result.output)")
        return (try #require(observed["inspectedPins"] as? Int), report)
    }

    @Test func aNoOpPassInspectsNoPinAndVerifyInspectsEvery() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        let common = ["-f", manifests.path, "--anchor", fs.path]
        // Before the first apply nothing is recorded: every pin that exists would be inspected (none does).
        #expect(try bpftree(["apply"] + common).status == 0)
        // Other bytes, same declarations: the convergence stamp no longer matches, so the tree is observed
        // and planned in full, and the ledger vouches for every pin.
        try (jobManifest + "\n# reviewed\n").write(toFile: manifests.path + "/job.yaml", atomically: true, encoding: .utf8)
        let (pins, report) = try inspectedPins(common)
        #expect(report["stamp"] == nil)
        #expect(pins == 0)
        #expect(report["changes"] as? Bool == false)
        // The manifest declares five maps; --verify inspects each of them.
        #expect(try inspectedPins(common + ["--verify"]).pins == 5)
    }

    @Test func aPinReplacedBehindBpftreesBackIsInspectedAndItsShapeReported() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        let common = ["-f", manifests.path, "--anchor", fs.path]
        #expect(try bpftree(["apply"] + common).status == 0)
        // Same path, same name, another shape (a hash where an array of 16 is declared).
        try FileManager.default.removeItem(atPath: fs.at("jobs/A/config"))
        try pinMapWithBpftool(fs.at("jobs/A/config"), type: "hash", key: 4, value: 8, entries: 32, name: "config")

        let (pins, report) = try inspectedPins(common)
        #expect(pins == 1, "only the re-pinned map has an inode the ledger does not know")
        let problems = try #require(report["problems"] as? [[String: Any]])
        #expect(problems.map { $0["path"] as? String } == ["jobs/A/config"])
        let fields = (problems.first?["differences"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }
        #expect(fields == ["type", "maxEntries"])
        #expect(try bpftree(["apply"] + common).status == 1, "a map bpftree did not create is never replaced")
    }

    /// A gone cgroup's links are bpftree's by the ledger alone (their inodes are the recorded ones), so
    /// pruning them inspects nothing; a link pinned there again by hand has a new inode, is inspected, and
    /// is not bpftree's to remove.
    @Test func linksNoLongerDeclaredArePrunedOnTheLedgersWordAndARepinnedOneIsLeftAlone() throws {
        let fs = try ScratchBPFFS()
        let cgroups = try ScratchCgroup()
        let w1 = try cgroups.make("w1"), w2 = try cgroups.make("w2"), w3 = try cgroups.make("w3")
        let files = try jobStatsFiles(source: cgroups.relative)
        let common = ["-f", files.path + "/job-stats.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftree(["apply"] + common)
        #expect(applied.status == 0, "\(applied.output)")
        // Declared: the counters map (bound to programs), two programs, two links per cgroup left.
        let declaredInspected = 1 + 2 + 2 * 2

        try cgroups.remove("w1")
        let (pins, report) = try inspectedPins(common)
        #expect(pins == declaredInspected, "w1's two links are vouched for, not inspected")
        let removals = (report["actions"] as? [[String: Any]] ?? []).filter { $0["kind"] as? String == "remove" }
        #expect(Set(removals.compactMap { $0["path"] as? String })
                == ["jobs/A/\(w1)", "jobs/A/\(w1)/egress", "jobs/A/\(w1)/stats"])

        // w2's stats link pinned again by hand (same link, new pin, new inode) once w2 is gone.
        try cgroups.remove("w2")
        let stats = fs.at("jobs/A/\(w2)/stats")
        let link = try pinned("link", stats)
        let id = try #require(link["id"] as? Int)
        #expect(try run([KernelSupport.bpftool, "link", "pin", "id", "\(id)", fs.at("jobs/A/held")]).status == 0)
        try FileManager.default.removeItem(atPath: stats)
        #expect(try run([KernelSupport.bpftool, "link", "pin", "id", "\(id)", stats]).status == 0)
        let (after, second) = try inspectedPins(common)
        #expect(after == declaredInspected - 2 + 2, "w3 alone is declared now; both pins made by hand are inspected")
        let unmanaged = (second["notices"] as? [[String: Any]] ?? []).filter { $0["category"] as? String == "unmanaged" }
        #expect(unmanaged.compactMap { $0["path"] as? String }.sorted() == ["jobs/A/\(w2)/stats", "jobs/A/held"])

        #expect(try bpftree(["apply"] + common).status == 0)
        #expect(FileManager.default.fileExists(atPath: stats), "a pin bpftree did not make is never removed")
        #expect(!FileManager.default.fileExists(atPath: fs.at("jobs/A/\(w2)/egress")))
        #expect(!FileManager.default.fileExists(atPath: fs.at("jobs/A/\(w1)")))
        #expect(FileManager.default.fileExists(atPath: fs.at("jobs/A/\(w3)/stats")))
    }
}
