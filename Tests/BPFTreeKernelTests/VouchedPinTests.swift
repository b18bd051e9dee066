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
}
