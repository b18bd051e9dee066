import BPFTreeCore
import BPFTreeTestSupport
import Testing

/// Planning with the ledger and policies: unmanaged entries, adoption, replace/migrate, prune, and settling
/// what an interrupted run left behind.
@Suite struct OwnershipPlannerTests {
    static let text = PlannerTests.text
    static let config = path("jobs/A/config")

    static func policies(_ yaml: String) throws -> PolicySet { try policySet(yaml) }

    static func scope(_ fields: String) -> String {
        """
        apiVersion: bpftree/v1
        kind: Policy
        metadata: {name: p}
        spec:
          scopes:
            - paths: ["jobs/**"]
        \(fields)
        """
    }

    /// The converged tree with `config` grown from 16 to 32 entries in the manifest.
    static func grown(_ onIncompatible: String? = nil) -> String {
        text.replacingOccurrences(of: "maxEntries: 16", with: "maxEntries: 32")
            .replacingOccurrences(of: "uid: 1000", with: "uid: 1000" + (onIncompatible.map { "\n      onIncompatible: \($0)" } ?? ""))
    }

    @Test func aDeclaredEntryBpftreeDidNotCreateIsLeftAloneAndNoticed() throws {
        var live = PlannerTests.converged()
        live.entries[Self.config]?.mode = 0o644
        let plan = try PlannerTests.plan(live, ledger: Ledger())
        #expect(!plan.hasChanges)
        #expect(plan.problems.isEmpty)
        let notices = plan.notices.filter { $0.category == .unmanaged }.map(\.path.description)
        #expect(notices == ["jobs/A", "jobs/A/config", "jobs/A/stats"])
    }

    @Test func adoptRecordsOwnershipThenFixesAttributes() throws {
        var live = PlannerTests.converged()
        live.entries[Self.config]?.mode = 0o644
        let text = Self.text.replacingOccurrences(of: "      mode: \"0640\"", with: "      mode: \"0640\"\n      adopt: true")
        let plan = try PlannerTests.plan(live, text: text, ledger: Ledger())
        #expect(plan.actions.map(\.change) == [.recordOwnership(.map, inode: 4, why: "adopted (adopt: true)"),
                                               .setMode(from: 0o644, to: 0o640)])
        #expect(plan.actions.allSatisfy { $0.manifest == "job-a" })
    }

    @Test func anIncompatibleMapBpftreeDidNotCreateIsNeverReplaced() throws {
        let live = PlannerTests.converged()
        let plan = Planner.plan(desired: try desired(Self.grown("replace")), live: live, ledger: Ledger(),
                                policies: try Self.policies(Self.scope("      allowOnIncompatible: [replace]")))
        #expect(plan.actions.isEmpty)
        #expect(plan.problems.first?.message.contains("it was not created by bpftree") == true)
    }

    @Test(arguments: [("fail", nil), ("replace", "replaceMap"), ("migrate", "migrateMap")])
    func theScopeDecidesWhatHappensToAnIncompatibleOwnedMap(_ choice: String, _ kind: String?) throws {
        let live = PlannerTests.converged()
        let plan = Planner.plan(desired: try desired(Self.grown()), live: live, ledger: PlannerTests.owning(live),
                                policies: try Self.policies(Self.scope("      onIncompatible: \(choice)")))
        if let kind {
            #expect(plan.problems.isEmpty)
            #expect(plan.actions.map(\.kind) == [kind])
            #expect(plan.actions[0].reason == "maxEntries: declared 32, live 16")
        } else {
            #expect(plan.actions.isEmpty)
            #expect(plan.problems.first?.message.contains("is fail") == true)
        }
    }

    @Test func migrationIsRefusedWhenEntriesCannotBeCopied() throws {
        let live = PlannerTests.converged()
        let policies = try Self.policies(Self.scope("      onIncompatible: migrate"))
        let shrunk = Self.text.replacingOccurrences(of: "maxEntries: 16", with: "maxEntries: 8")
        let resized = Self.text.replacingOccurrences(of: "valueSize: 8", with: "valueSize: 16")
        for (text, reason) in [(shrunk, "the array shrinks from 16 to 8 entries"), (resized, "key/value sizes change")] {
            let plan = Planner.plan(desired: try desired(text), live: live, ledger: PlannerTests.owning(live), policies: policies)
            #expect(plan.actions.isEmpty)
            #expect(plan.problems.first?.message.contains(reason) == true, "\(plan.problems)")
        }
    }

    /// The kernel's facts (`KernelFacts`) decide with the planner: a migration must fit the entries the map
    /// holds, and the programs that keep using a replaced map are named, except those loaded again.
    @Test func kernelFactsDecideMigrationsAndNameTheProgramsOfReplacedMaps() throws {
        let text = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: job-a}
            spec:
              root: jobs/A
              entries:
                table: {map: {type: hash, keySize: 4, valueSize: 8, maxEntries: 8}}
            """
        let info = LiveMapInfo(id: 41, type: 1, keySize: 4, valueSize: 8, maxEntries: 16, flags: MapFlag.noPrealloc.bit)
        var live = PlannerTests.converged()
        live.entries[path("jobs/A/table")] = LiveEntry(kind: .map(info), mode: 0o600, inode: 40)
        let ledger = PlannerTests.owning(live)
        let policies = try Self.policies(Self.scope("      onIncompatible: migrate"))
        let tree = try desired(text)
        #expect(tree.differingMaps(in: live, policies).map(\.path) == [path("jobs/A/table")])
        #expect(tree.differingMaps(in: live, policies).map(\.migrates) == [true])
        let full = Planner.plan(desired: tree, live: live, ledger: ledger, policies: policies,
                                facts: KernelFacts(entryCounts: [path("jobs/A/table"): 12]))
        #expect(full.actions.allSatisfy { $0.kind != "migrateMap" })
        #expect(full.problems.map(\.message) == ["cannot migrate: the map holds 12 entries and the new maxEntries is 8"])
        let users = [41: [LoadedProgram(id: 7, name: "holder")]] as [UInt32: [LoadedProgram]]
        let fits = Planner.plan(desired: tree, live: live, ledger: ledger, policies: policies,
                                facts: KernelFacts(entryCounts: [path("jobs/A/table"): 5], mapUsers: users))
        #expect(fits.problems.isEmpty)
        #expect(fits.actions.map(\.kind).contains("migrateMap"))
        #expect(fits.notices.filter { $0.category == .programs }.map(\.description)
                == ["jobs/A/table: map id 41 is used by program id 7 (holder); it keeps using the old map after the replacement"])
    }

    @Test func protectedMapsAreReplacedOnlyWithForce() throws {
        let live = PlannerTests.converged()
        let policies = try Self.policies(Self.scope("      onIncompatible: replace\n      protect: [\"jobs/*/config\"]"))
        let desired = try desired(Self.grown())
        let refused = Planner.plan(desired: desired, live: live, ledger: PlannerTests.owning(live), policies: policies)
        #expect(refused.problems.first?.message.contains("needs --force") == true)
        let forced = Planner.plan(desired: desired, live: live, ledger: PlannerTests.owning(live), policies: policies, force: true)
        #expect(forced.actions.map(\.kind) == ["replaceMap"])
    }

    /// The converged tree plus owned entries no manifest declares and one entry bpftree did not create.
    static func withLeftovers() -> (LiveTree, Ledger) {
        var live = PlannerTests.converged()
        live.entries[path("jobs/B")] = LiveEntry(kind: .directory, mode: 0o755, inode: 10)
        live.entries[path("jobs/B/x")] = LiveEntry(kind: .map(PlannerTests.configInfo), mode: 0o600, inode: 11)
        live.entries[path("jobs/C")] = LiveEntry(kind: .directory, mode: 0o755, inode: 12)
        live.entries[path("jobs/C/y")] = LiveEntry(kind: .map(PlannerTests.configInfo), mode: 0o600, inode: 13)
        live.entries[path("jobs/C/foreign")] = LiveEntry(kind: .map(PlannerTests.configInfo), mode: 0o600, inode: 14)
        var ledger = PlannerTests.owning(live)
        ledger.records[path("jobs/C/foreign")] = nil
        return (live, ledger)
    }

    @Test func pruneRemovesOwnedUndeclaredEntriesChildrenFirstAndNothingElse() throws {
        let (live, ledger) = Self.withLeftovers()
        let plan = Planner.plan(desired: try desired(Self.text), live: live, ledger: ledger,
                                policies: try Self.policies(Self.scope("      prune: owned")))
        #expect(plan.actions.map { "\($0.kind) \($0.path)" } == ["remove jobs/C/y", "remove jobs/B/x", "remove jobs/B"])
        #expect(plan.notices.map(\.description).contains("jobs/C: no longer declared; kept: it holds entries bpftree does not remove"))
        #expect(plan.notices.map(\.description).contains("jobs/C/foreign: unmanaged map: not created by bpftree; left alone"))
    }

    @Test func pruneNoneAndProtectKeepOwnedEntries() throws {
        let (live, ledger) = Self.withLeftovers()
        let none = Planner.plan(desired: try desired(Self.text), live: live, ledger: ledger, policies: .builtin)
        #expect(none.actions.isEmpty)
        #expect(none.notices.filter { $0.category == .kept }.count == 4)
        let protected = Planner.plan(desired: try desired(Self.text), live: live, ledger: ledger,
                                     policies: try Self.policies(Self.scope("      prune: owned\n      protect: [\"jobs/B\"]")))
        #expect(protected.actions.map { "\($0.kind) \($0.path)" } == ["remove jobs/C/y"])
    }

    @Test func recordsOfAnInterruptedRunAreSettledFromTheTree() throws {
        var live = PlannerTests.converged()
        live.entries[path("jobs/A/bpftree_tmp_9_1")] = LiveEntry(kind: .map(PlannerTests.configInfo), mode: 0o600, inode: 20)
        var ledger = PlannerTests.owning(PlannerTests.converged())
        // Killed after the temporary pin of a replacement was made.
        ledger.records[path("jobs/A/bpftree_tmp_9_1")] = LedgerRecord(path: path("jobs/A/bpftree_tmp_9_1"), kind: .map,
                                                                        state: .temporary, manifest: "job-a")
        // Killed after the exchange: the path holds the new object (inode 4 here).
        ledger.records[Self.config] = LedgerRecord(path: Self.config, kind: .map, state: .replacing, inode: 30,
                                                   pendingInode: 4, manifest: "job-a")
        // Recorded with its inode before it was renamed into place, killed before the record was settled.
        ledger.records[path("jobs/A/stats")] = LedgerRecord(path: path("jobs/A/stats"), kind: .directory, state: .creating,
                                                           inode: live[path("jobs/A/stats")]?.inode ?? 0, manifest: "job-a")
        // An older version's intent without an inode claims nothing: what is there now may be anyone's.
        ledger.records[path("jobs/A/config2")] = LedgerRecord(path: path("jobs/A/config2"), kind: .map, state: .creating,
                                                             manifest: "job-a")
        live.entries[path("jobs/A/config2")] = LiveEntry(kind: .map(PlannerTests.configInfo), mode: 0o600, inode: 77)
        // Killed before a map was created.
        ledger.records[path("jobs/A/gone")] = LedgerRecord(path: path("jobs/A/gone"), kind: .map, state: .creating,
                                                          manifest: "job-a")
        let plan = Planner.plan(desired: try desired(Self.text), live: live, ledger: ledger)
        #expect(plan.actions.map { "\($0.kind) \($0.path)" } == [
            "recordOwnership jobs/A/config", "forgetRecord jobs/A/config2", "forgetRecord jobs/A/gone",
            "recordOwnership jobs/A/stats", "removeTemporary jobs/A/bpftree_tmp_9_1",
        ].sorted { $0.split(separator: " ")[1] < $1.split(separator: " ")[1] })
        #expect(plan.actions.first { $0.path == Self.config }?.change == .recordOwnership(.map, inode: 4, why: "settled after an interrupted replace"))
        #expect(plan.problems.isEmpty)
    }

    @Test func aTemporaryRecordClaimsOnlyATemporaryNameHoldingWhatItRecorded() throws {
        var live = PlannerTests.converged()
        var ledger = PlannerTests.owning(live)
        // A record made temporary on a real directory (its tenant's pins inside), and one on a temporary name
        // that now holds another kind of entry than the one recorded.
        ledger.records[path("jobs/A/stats")]?.state = .temporary
        live.entries[path("jobs/A/bpftree_tmp_9_2")] = LiveEntry(kind: .directory, mode: 0o700, inode: 21)
        ledger.records[path("jobs/A/bpftree_tmp_9_2")] = LedgerRecord(path: path("jobs/A/bpftree_tmp_9_2"), kind: .map,
                                                                        state: .temporary, manifest: "job-a")
        let plan = Planner.plan(desired: try desired(Self.text), live: live, ledger: ledger)
        #expect(plan.actions.map { "\($0.kind) \($0.path)" } == ["forgetRecord jobs/A/bpftree_tmp_9_2", "forgetRecord jobs/A/stats"])
        #expect(plan.actions.map(\.change) == [
            .forgetRecord(why: "what is there now is a directory, not the map bpftree made"),
            .forgetRecord(why: "a temporary record, but 'stats' is not a temporary name bpftree makes"),
        ])
        #expect(["bpftree_tmp_9_2", "bpftree_tmp_4294967295_1"].allSatisfy(Reserved.isTemporaryName))
        #expect(!["bpftree_tmp_", "bpftree_tmp_9", "bpftree_tmp_9_", "bpftree_tmp_x_1", "bpftree_tmp_1_2_3", "sub"].contains(where: Reserved.isTemporaryName))
    }

    @Test func aRecordWhoseEntryWasReplacedBySomeoneElseIsForgotten() throws {
        var live = PlannerTests.converged()
        let ledger = PlannerTests.owning(live)
        live.entries[Self.config]?.inode = 99
        let plan = try PlannerTests.plan(live, ledger: ledger)
        #expect(plan.actions.map(\.kind) == ["forgetRecord"])
        #expect(plan.notices.map(\.description) == ["jobs/A/config: exists but was not created by bpftree; left alone (declare adopt: true to manage it)"])
    }

    @Test func recordsOutsideTheDeclaredRootsBecomeExtraRootsToObserve() {
        let ledger = Ledger(records: ["jobs", "jobs/B", "jobs/B/x", "jobs/A/y", "other/z"].map {
            LedgerRecord(path: path($0), kind: .map, manifest: "m")
        })
        #expect(ledger.extraRoots(beyond: [path("jobs/A")]).map(\.description) == ["jobs/B", "other/z"])
    }
}
