import BPFTreeCore
import BPFTreeTestSupport
import Testing

/// Manifest sets on one anchor, planned with plain values: which records a run claims, another set's entry
/// as a conflict, a shared directory, records taken on by an owner, and one owner per run.
@Suite struct OwnerScopeTests {
    static let config = path("jobs/A/config")

    /// The converged tree's records, made by manifest job-a of owner `owner` ("" for none).
    static func ledger(owner: String, manifest: String = "job-a") -> Ledger {
        var ledger = PlannerTests.owning(PlannerTests.converged(), manifest: manifest)
        for key in ledger.records.keys { ledger.records[key]?.owner = owner }
        return ledger
    }

    @Test(arguments: [
        (nil, "", "job-a", true), (nil, "", "job-b", false), (nil, "team", "job-a", false),
        ("team", "team", "job-b", true), ("team", "", "job-a", true), ("team", "", "job-b", false), ("team", "other", "job-a", false),
    ] as [(String?, String, String, Bool)])
    func aRunClaimsItsOwnersRecordsAndUnnamedOnesOfItsManifests(run: String?, owner: String, manifest: String, claimed: Bool) {
        let scope = OwnerScope(owner: run, manifests: ["job-a"])
        let record = LedgerRecord(path: Self.config, kind: .map, inode: 4, manifest: manifest, owner: owner)
        #expect(scope.claims(record) == claimed)
        var temporary = record
        temporary.state = .temporary
        #expect(scope.claims(temporary), "a temporary name is anyone's to remove")
    }

    @Test func anotherSetsMapIsAConflictAndItsDirectoryIsShared() throws {
        let ledger = Self.ledger(owner: "team-b").restricted(to: OwnerScope(owner: "team-a", manifests: ["job-a"]))
        #expect(ledger.records.isEmpty && ledger.others.count == 4)
        // Declared with adopt: true, which takes over nothing another set made.
        let desired = try desired(PlannerTests.text.replacingOccurrences(of: "      uid: 1000", with: "      uid: 1000\n      adopt: true"))
        let plan = Planner.plan(desired: desired, live: PlannerTests.converged(), ledger: ledger)
        #expect(plan.problems.map(\.description) == [
            "m0.yaml:7:5: spec.entries.config: jobs/A/config: is owner 'team-b''s map: a manifest set never takes over another's entry; declare it in one set only",
        ])
        #expect(!plan.actions.contains { if case .recordOwnership = $0.change { true } else { false } }, "adopted: \(plan.actions)")
        #expect(plan.notices.map(\.description).contains("jobs/A/stats: directory of owner 'team-b'; shared, and left as that set keeps it"))
    }

    @Test func anOwnerTakesOnItsManifestsUnnamedRecordsAndPrunesOnlyItsOwn() throws {
        var live = PlannerTests.converged()
        var ledger = Self.ledger(owner: "")
        // Undeclared: one of job-a's (pruned), one of job-b's (kept, and told), one of another owner's.
        for (name, manifest, owner) in [("gone", "job-a", ""), ("theirs", "job-b", ""), ("named", "job-c", "team-c")] {
            let at = path("jobs/A/\(name)")
            live.entries[at] = LiveEntry(kind: .map(PlannerTests.configInfo), mode: 0o600, inode: UInt64(40 + name.count))
            ledger.records[at] = LedgerRecord(path: at, kind: .map, inode: UInt64(40 + name.count), manifest: manifest, owner: owner)
        }
        let scope = OwnerScope(owner: "team-a", manifests: ["job-a"])
        let policies = try policySet(OwnershipPlannerTests.scope("      prune: owned"))
        let plan = Planner.plan(desired: try desired(PlannerTests.text), live: live, ledger: ledger.restricted(to: scope), policies: policies)
        #expect(plan.actions.map { "\($0.kind) \($0.path)" } == [
            "recordOwnership jobs", "recordOwnership jobs/A", "recordOwnership jobs/A/config", "recordOwnership jobs/A/stats", "remove jobs/A/gone",
        ])
        #expect(plan.actions.first?.change == .recordOwnership(.directory, inode: 2, why: "recorded for owner team-a (the record named none)"))
        #expect(plan.notices.map(\.description).contains {
            $0.hasPrefix("jobs/A/theirs: 1 entry of manifest 'job-b', which this run does not include, kept")
        })
        #expect(plan.notices.map(\.description).contains("jobs/A/named: map of owner 'team-c'; left alone"))
    }

    @Test func aRunHasOneOwner() throws {
        let named = try decode(manifest("    m: {directory: {}}").replacingOccurrences(of: "{name: job-a}", with: "{name: job-a, owner: x}"),
                               file: "a.yaml").get()
        let other = try decode(manifest("    m: {directory: {}}", name: "job-b", root: "jobs/B")
            .replacingOccurrences(of: "{name: job-b}", with: "{name: job-b, owner: y}"), file: "b.yaml").get()
        let none = try decode(manifest("    m: {directory: {}}", name: "job-c", root: "jobs/C"), file: "c.yaml").get()
        #expect(try OwnerScope.of(named + named, flag: nil).get() == OwnerScope(owner: "x", manifests: ["job-a"]))
        #expect(try OwnerScope.of(none, flag: "z").get() == OwnerScope(owner: "z", manifests: ["job-c"]))
        #expect(try OwnerScope.of(none, flag: nil).get() == OwnerScope(owner: nil, manifests: ["job-c"]))
        for (manifests, flag, message) in [(named + other, nil, "b.yaml:3:32: metadata.owner: owner 'y' differs from 'x' (metadata.owner at a.yaml:3:32); a run has one owner"),
                                           (named + none, nil, "c.yaml:1:1: metadata: names no owner, while metadata.owner at a.yaml:3:32 names 'x'"),
                                           (named, "y", "a.yaml:3:32: metadata.owner: owner 'x' differs from 'y' (--owner); a run has one owner")] as [([Manifest], String?, String)] {
            guard case .failure(let failure) = OwnerScope.of(manifests, flag: flag) else {
                Issue.record("accepted: \(message)")
                continue
            }
            #expect(failure.diagnostics.map(\.description).contains { $0.hasPrefix(message) }, "\(failure.diagnostics)")
        }
        #expect(OwnerScope.problem(withName: "team a") != nil && OwnerScope.problem(withName: String(repeating: "a", count: 64)) != nil)
        #expect(OwnerScope.problem(withName: "team-a_1") == nil)
        guard case .failure(let bad) = decode(manifest("    m: {directory: {}}").replacingOccurrences(of: "{name: job-a}", with: "{name: job-a, owner: \"a b\"}")) else {
            Issue.record("metadata.owner 'a b' accepted")
            return
        }
        #expect(bad.diagnostics.map(\.description) == ["m.yaml:3:32: metadata.owner: owner 'a b' must be 1 to 63 letters, digits, '-' or '_'"])
    }
}
