import BPFTreeCore
import BPFTreeTestSupport
import Testing

func path(_ text: String) -> TreePath { TreePath(text.split(separator: "/").map(String.init)) }

@Suite struct PlannerTests {
    static let text = manifest("""
            config:
              map: {type: array, valueSize: 8, maxEntries: 16, freeze: true}
              mode: "0640"
              uid: 1000
            stats:
              directory: {mode: "0750"}
        """)

    static let configSpec = MapSpec(type: .array, keySize: 4, valueSize: 8, maxEntries: 16, name: "config", freeze: true)
    static let configInfo = LiveMapInfo(id: 7, type: 2, keySize: 4, valueSize: 8, maxEntries: 16, flags: 0)

    /// A live tree that matches `text` exactly.
    static func converged() -> LiveTree {
        LiveTree(entries: [
            .anchor: LiveEntry(kind: .directory, mode: 0o1777, inode: 1),
            path("jobs"): LiveEntry(kind: .directory, mode: 0o700, inode: 2),
            path("jobs/A"): LiveEntry(kind: .directory, mode: 0o755, inode: 3),
            path("jobs/A/config"): LiveEntry(kind: .map(configInfo), mode: 0o640, uid: 1000, inode: 4),
            path("jobs/A/stats"): LiveEntry(kind: .directory, mode: 0o750, inode: 5),
        ])
    }

    /// A ledger in which bpftree owns every entry of `live` but the anchor.
    static func owning(_ live: LiveTree, manifest: String = "job-a") -> Ledger {
        Ledger(records: live.entries.compactMap { path, entry in
            guard !path.isAnchor, let kind = entry.kind.ledgerKind else { return nil }
            return LedgerRecord(path: path, kind: kind, inode: entry.inode, manifest: manifest)
        })
    }

    static func plan(_ live: LiveTree, text: String = text, ledger: Ledger? = nil) throws -> Plan {
        Planner.plan(desired: try desired(text), live: live, ledger: ledger ?? owning(live))
    }

    @Test func createsEverythingOnAnEmptyTreeParentsFirst() throws {
        let plan = Planner.plan(desired: try desired(Self.text), live: LiveTree(entries: [.anchor: LiveEntry(kind: .directory, mode: 0o1777)]))
        #expect(plan.problems.isEmpty)
        #expect(plan.actions.map(\.path.description) == ["jobs", "jobs/A", "jobs/A/config", "jobs/A/stats"])
        #expect(plan.actions[0].change == .createDirectory(mode: 0o755, owner: .unmanaged))
        #expect(plan.actions[2].change == .createMap(Self.configSpec, mode: 0o640, owner: Owner(uid: 1000)))
        #expect(plan.creates == 4 && plan.updates == 0)
    }

    @Test func aConvergedTreeNeedsNothingAndImplicitParentsKeepTheirMode() throws {
        let plan = try Self.plan(Self.converged())
        #expect(!plan.hasChanges)
        #expect(plan.problems.isEmpty)
    }

    @Test func modeAndOwnerDriftBecomeUpdates() throws {
        var live = Self.converged()
        live.entries[path("jobs/A/stats")]?.mode = 0o700
        live.entries[path("jobs/A/config")]?.uid = 0
        let plan = try Self.plan(live)
        #expect(plan.actions.map(\.change) == [
            .setOwner(from: Owner(uid: 0, gid: 0), to: Owner(uid: 1000, gid: 0)),
            .setMode(from: 0o700, to: 0o750),
        ])
        #expect(plan.actions[1].reason == "mode is 0700, declared 0750")
    }

    @Test func anIncompatibleMapIsAProblemNamingEachField() throws {
        var live = Self.converged()
        var info = Self.configInfo
        info.valueSize = 16
        info.flags = MapFlag.mmapable.bit
        live.entries[path("jobs/A/config")]?.kind = .map(info)
        let plan = try Self.plan(live)
        let problem = try #require(plan.problems.first)
        #expect(problem.path.description == "jobs/A/config")
        #expect(problem.differences.map(\.field) == ["valueSize", "flags"])
        #expect(problem.message.contains("valueSize: declared 8, live 16"))
        #expect(problem.origin?.location.line == 7)
    }

    @Test(arguments: [LiveEntry.Kind.symlink, .map(configInfo), .program(LiveProgramInfo(id: 1, type: 8, tag: 1, name: "p"))])
    func aNonDirectoryWhereADirectoryIsDeclaredBlocksItsSubtree(_ kind: LiveEntry.Kind) throws {
        var live = Self.converged()
        live.entries[TreePath(["jobs", "A"])] = LiveEntry(kind: kind, mode: 0o777)
        for path in live.entries.keys where path.isDescendant(of: TreePath(["jobs", "A"])) { live.entries[path] = nil }
        let plan = try Self.plan(live)
        #expect(plan.actions.isEmpty)
        #expect(plan.problems.map(\.path.description) == ["jobs/A"])
        #expect(plan.problems[0].message.contains(kind == .symlink ? "never follows symlinks" : "where a directory is declared"))
    }

    @Test func flagNormalisationFollowsTheKernel() {
        let devmap = MapSpec(type: .devmap, keySize: 4, valueSize: 4, maxEntries: 1, flags: MapFlag.rdonly.bit)
        let live = LiveMapInfo(id: 1, type: 14, keySize: 4, valueSize: 4, maxEntries: 1, flags: MapFlag.rdonlyProg.bit)
        #expect(devmap.differences(from: live).isEmpty)
        let hash = MapSpec(type: .hash, keySize: 4, valueSize: 4, maxEntries: 1, flags: MapFlag.wronly.bit | MapFlag.noPrealloc.bit)
        let hashLive = LiveMapInfo(id: 1, type: 1, keySize: 4, valueSize: 4, maxEntries: 1, flags: MapFlag.noPrealloc.bit)
        #expect(hash.differences(from: hashLive).isEmpty)
    }

    @Test func undeclaredSymlinksAreNoticedNotFollowed() throws {
        var live = Self.converged()
        let ledger = Self.owning(live)
        live.entries[path("jobs/A/stats/escape")] = LiveEntry(kind: .symlink, mode: 0o777)
        let plan = try Self.plan(live, ledger: ledger)
        #expect(plan.notices.map(\.path.description) == ["jobs/A/stats/escape"])
        #expect(!plan.hasChanges)
    }
}
