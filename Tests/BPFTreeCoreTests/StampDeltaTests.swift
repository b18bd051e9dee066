import BPFTreeCore
import BPFTreeYAML
import Testing

/// The CLI's delta pass plans the view `TreeStamp.delta` cuts from the stamp after cgroups came or went:
/// for random cgroup changes, its plan must be the full plan of the same state, and the full plan must
/// change nothing outside the view's scope.
@Suite struct StampDeltaTests {
    static let fixed = """
        apiVersion: bpftree/v1
        kind: Tree
        metadata: {name: job}
        spec:
          root: jobs/A
          mode: "0755"
          entries:
            counters: {map: {type: lru_hash, keySize: 8, valueSize: 16, maxEntries: 64}}
        """
    static let perCgroup = """
        apiVersion: bpftree/v1
        kind: Tree
        metadata: {name: job-cgroups}
        spec:
          forEachCgroup: {path: jobs/A, depth: 1}
          root: jobs/A/{cgroup.id}
          mode: "0750"
          entries:
            stats: {map: {type: array, keySize: 4, valueSize: 8, maxEntries: 4}}
            work: {directory: {entries: {queue: {map: {type: queue, valueSize: 8, maxEntries: 8}}}}}
        """
    static let byName = """
        apiVersion: bpftree/v1
        kind: Tree
        metadata: {name: job-names}
        spec:
          forEachCgroup: {path: jobs/A, depth: 1}
          root: other/{cgroup.name}
          entries:
            m: {map: {type: hash, keySize: 4, valueSize: 8, maxEntries: 8}}
        """
    static let policies = PolicySet(scopes: [PolicyScope(policy: "p", location: BPFTreeYAML.SourceLocation(file: "p.yaml", line: 1, column: 1),
                                                          paths: [PathPattern.parse("jobs/**"), PathPattern.parse("other/**")].compactMap { try? $0.get() },
                                                          prune: .owned)])

    static func tree(_ manifests: [Manifest], _ ids: Set<Int>) throws -> DesiredTree {
        try DesiredTree.build(rendering: manifests, cgroups: IncrementalPlanTests.cgroups(ids)).tree.get()
    }

    static func described(_ plan: Plan) -> [String] { plan.actions.map { "\($0.path) \($0.change)" } }

    @Test(arguments: 0..<200) func aDeltaPlanIsTheFullPlanAndTheFullPlanStaysInItsScope(seed: Int) throws {
        var random = SplitMix(seed: UInt64(seed) &* 7919)
        let manifests = try [Self.fixed, Self.perCgroup, Self.byName].enumerated().flatMap { index, text in
            try decode(text, file: "m\(index).yaml").get()
        }
        let before = Set((0..<12).filter { _ in random.int(2) == 0 })
        let desired = try Self.tree(manifests, before)
        var inode: UInt64 = 10
        var live = LiveTree(entries: [.anchor: LiveEntry(kind: .directory, mode: 0o755, inode: 1)])
        var ledger = Ledger()
        IncrementalPlanTests.converged(desired, inode: &inode, live: &live, ledger: &ledger)
        let converged = Planner.plan(desired: desired, live: live, ledger: ledger, policies: Self.policies)
        #expect(!converged.hasChanges && converged.problems.isEmpty)
        var stamp = TreeStamp(inputs: [1], live: live, desired: desired, owned: { ledger.owns($0, in: live) },
                              roots: desired.roots, notices: converged.notices)
        stamp.cgroupSources = [IncrementalPlanTests.source]
        stamp.cgroups = IncrementalPlanTests.cgroups(before)
        // Cgroups come and go.
        var after = before
        for _ in 0..<(1 + random.int(3)) {
            let id = random.int(14)
            if after.contains(id) { after.remove(id) } else { after.insert(id) }
        }
        guard after != before else { return }
        let cut = stamp.delta(manifests: manifests, policies: Self.policies, cgroups: IncrementalPlanTests.cgroups(after),
                              possibleCPUs: 2)
        // Only a full plan can tell when the first cgroup comes (no parent for its subtree yet) or the last
        // goes (its implicit parent `other` has nothing left to hold); any other change is a delta.
        #expect((cut != nil) == (!before.isEmpty && !after.isEmpty), "seed \(seed)")
        guard let delta = cut else { return }
        let full = Planner.plan(desired: try Self.tree(manifests, after), live: live, ledger: ledger, policies: Self.policies)
        // What the kernel layer would observe and look up for the view.
        var view = LiveTree()
        for (path, entry) in live.entries where delta.scope.contains(path) || delta.scope.roots.contains(where: { $0.ancestors.contains(path) })
            || path.isAnchor {
            view.record(path, entry)
        }
        let records = ledger.records.values.filter { view[$0.path] != nil || delta.desired[$0.path] != nil }
        let planned = Planner.plan(desired: delta.desired, live: view, ledger: Ledger(records: Array(records)), policies: Self.policies)
        #expect(planned.problems.isEmpty && full.problems.isEmpty)
        #expect(planned.lies(within: delta.scope), "\(Self.described(planned))")
        #expect(full.lies(within: delta.scope), "\(Self.described(full))")
        #expect(Self.described(planned) == Self.described(full.restricted(to: delta.scope)), "seed \(seed)")
    }

    @Test func oneCgroupGoneAndOneNewAreOneDeltaOfTheirSubtrees() throws {
        let manifests = try [Self.fixed, Self.perCgroup].enumerated().flatMap { index, text in try decode(text, file: "m\(index).yaml").get() }
        let desired = try Self.tree(manifests, [1, 2, 3])
        var inode: UInt64 = 10
        var live = LiveTree(entries: [.anchor: LiveEntry(kind: .directory, mode: 0o755, inode: 1)])
        var ledger = Ledger()
        IncrementalPlanTests.converged(desired, inode: &inode, live: &live, ledger: &ledger)
        var stamp = TreeStamp(inputs: [1], live: live, desired: desired, owned: { _ in true }, roots: desired.roots, notices: [])
        stamp.cgroupSources = [IncrementalPlanTests.source]
        stamp.cgroups = IncrementalPlanTests.cgroups([1, 2, 3])
        let delta = try #require(stamp.delta(manifests: manifests, policies: Self.policies,
                                             cgroups: IncrementalPlanTests.cgroups([2, 3, 4]), possibleCPUs: 2))
        #expect(delta.addedRoots == [TreePath(joined: "jobs/A/1004")])
        #expect(delta.removedRoots == [TreePath(joined: "jobs/A/1001")])
        #expect(delta.desired.entries.map { $0.path.text } == ["jobs", "jobs/A", "jobs/A/1004", "jobs/A/1004/stats", "jobs/A/1004/work",
                                                           "jobs/A/1004/work/queue"])
        // Nothing changed: nothing to cut.
        #expect(stamp.delta(manifests: manifests, policies: Self.policies, cgroups: IncrementalPlanTests.cgroups([1, 2, 3]),
                            possibleCPUs: 2) == nil)
    }
}
