import BPFTreeCore
import BPFTreeTestSupport
import Testing

/// The incremental pass plans a `PlanView` with the one planner: for the paths of its scope, the plan
/// must be the one a full plan of the same state gives, whatever drift and cgroup changes came first.
@Suite struct IncrementalPlanTests {
    static let fixed = """
        apiVersion: bpftree/v1
        kind: Tree
        metadata: {name: job}
        spec:
          root: jobs/A
          mode: "0755"
          entries:
            counters: {map: {type: lru_hash, keySize: 8, valueSize: 16, maxEntries: 64}}
            count: {program: {object: job.bpf.o, name: count_egress, type: cgroup_skb, maps: {counters: jobs/A/counters}}, onIncompatible: replace}
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
            stats: {map: {type: array, keySize: 4, valueSize: 8, maxEntries: 4}, onIncompatible: replace}
            work: {directory: {entries: {queue: {map: {type: queue, valueSize: 8, maxEntries: 8}}}}}
            egress: {link: {program: jobs/A/count, cgroup: "{cgroup.path}", attachType: cgroup_inet_egress}, onIncompatible: replace}
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
    static let policy = """
        apiVersion: bpftree/v1
        kind: Policy
        metadata: {name: p}
        spec:
          scopes:
            - paths: ["jobs/**", "other/**"]
              prune: owned
              onIncompatible: replace
        """

    static let source = CgroupSource(path: "jobs/A", depth: 1)
    static let image = ProgramImage(tag: 0xabc, type: ProgramType.cgroupSKB.kernelValue, expectedAttachType: 1,
                                    name: "count_egress", objectMaps: ["counters": ObjectMap(type: 9, keySize: 8, valueSize: 16)])

    static func manifests() throws -> [Manifest] {
        try [fixed, perCgroup, byName].enumerated().flatMap { index, text in try decode(text, file: "m\(index).yaml").get() }
    }

    static func cgroups(_ ids: some Sequence<Int>) -> [CgroupSource: [Cgroup]] {
        [source: ids.sorted().map { Cgroup(id: UInt64(1000 + $0), name: "w\($0)", path: "w\($0)") }]
    }

    /// What the kernel layer finds: the program's image, each link's cgroup id (from its path).
    static func resolve(_ tree: DesiredTree) -> ResolvedTree {
        ResolvedTree(tree, image: { _ in image }, link: { .cgroup(id: cgroupID($0)) })
    }

    static func cgroupID(_ spec: LinkSpec) -> UInt64 {
        UInt64((spec.cgroup ?? "").split(separator: "w").last.flatMap { Int($0) }.map { 1000 + $0 } ?? 0)
    }

    /// The tree as bpftree would have left it for `tree`: every entry present, as declared, owned.
    static func converged(_ tree: DesiredTree, inode: inout UInt64, live: inout LiveTree, ledger: inout Ledger) {
        var ids: [TreePath: UInt32] = [:]
        for entry in tree.entries {
            inode += 1
            let kind: LiveEntry.Kind
            switch entry.kind {
            case .directory: kind = .directory
            case .map(let spec):
                ids[entry.path] = UInt32(inode)
                kind = .map(LiveMapInfo(id: UInt32(inode), type: spec.type.kernelValue, keySize: spec.keySize, valueSize: spec.valueSize,
                                        maxEntries: spec.maxEntries, flags: spec.reportedFlags, mapExtra: spec.mapExtra))
            case .program(let spec):
                ids[entry.path] = UInt32(inode)
                kind = .program(LiveProgramInfo(id: UInt32(inode), type: image.type, tag: image.tag, name: image.name,
                                                mapIDs: spec.maps.compactMap { ids[$0.path] }))
            case .link(let spec):
                kind = .link(LiveLinkInfo(id: UInt32(inode), type: spec.kernelType, programID: ids[spec.program] ?? 0,
                                          details: .cgroup(CgroupLink.Live(attach: AttachType.cgroupInetEgress.kernelValue, cgroupID: cgroupID(spec)))))
            }
            let mode = entry.mode ?? (entry.kind == .directory ? Defaults.directoryMode : Defaults.pinMode)
            live.record(entry.path, LiveEntry(kind: kind, mode: mode, inode: inode))
            if let ledgerKind = kind.ledgerKind {
                ledger.records[entry.path] = LedgerRecord(path: entry.path, kind: ledgerKind, inode: inode, manifest: entry.manifest)
            }
        }
    }

    /// Random drift of the live tree and ledger: pins deleted, modes changed, foreign and wrong-kind
    /// entries, shapes changed, records of interrupted runs.
    static func drift(_ live: inout LiveTree, _ ledger: inout Ledger, _ random: inout SplitMix, inode: inout UInt64) {
        let paths = live.entries.keys.sorted().filter { !$0.isAnchor }
        for _ in 0..<random.int(6) {
            guard let path = paths.randomElement(using: &random), var entry = live[path] else { continue }
            inode += 1
            switch random.int(7) {
            case 0:
                live.entries[path] = nil
                for other in live.entries.keys where other.isDescendant(of: path) { live.entries[other] = nil }
            case 1: entry.mode = 0o700; live.entries[path] = entry
            case 2 where entry.kind == .directory:
                live.entries[path.appending("foreign")] = LiveEntry(kind: .map(LiveMapInfo(id: 9, type: 1, keySize: 4, valueSize: 4, maxEntries: 1, flags: 0)), mode: 0o600, inode: inode)
            case 3 where entry.kind != .directory:
                entry.inode = inode
                live.entries[path] = entry
            case 4:
                if case .map(var info) = entry.kind {
                    info.maxEntries += 1
                    entry.kind = .map(info)
                    live.entries[path] = entry
                }
            case 5 where entry.kind == .directory:
                let temporary = path.appending(Reserved.temporaryPrefix + "\(inode)_1")
                live.entries[temporary] = LiveEntry(kind: .directory, mode: 0o700, inode: inode)
                ledger.records[temporary] = LedgerRecord(path: temporary, kind: .directory, state: .temporary, manifest: "job")
            case 6:
                if var record = ledger.records[path] {
                    record.state = .creating
                    ledger.records[path] = record
                }
            default: break
            }
        }
    }

    @Test(arguments: 0..<300)
    func anIncrementalPlanIsTheFullPlanForItsScope(_ seed: Int) throws {
        var random = SplitMix(seed: UInt64(seed))
        let manifests = try Self.manifests()
        let policies = try policySet(Self.policy)
        // The cgroups the tree was last converged for, and the ones there are now.
        let before = Set((0..<8).filter { _ in random.int(2) == 0 })
        var now = before
        for _ in 0..<random.int(4) { now.formSymmetricDifference([random.int(10)]) }
        let old = try DesiredTree.build(rendering: manifests, cgroups: Self.cgroups(before)).tree.get()
        var live = LiveTree()
        live.record(.anchor, LiveEntry(kind: .directory, mode: 0o755, inode: 1))
        var ledger = Ledger()
        var inode: UInt64 = 10
        Self.converged(old, inode: &inode, live: &live, ledger: &ledger)
        Self.drift(&live, &ledger, &random, inode: &inode)
        let full = try DesiredTree.build(rendering: manifests, cgroups: Self.cgroups(now)).tree.get()

        // The scope: the instances of the cgroups that changed, and of a few that did not.
        let changed = before.symmetricDifference(now).union((0..<10).filter { _ in random.int(4) == 0 })
        let roots = changed.flatMap { id in ["jobs/A/\(1000 + id)", "other/w\(id)"].map(path) }
        let fullPlan = Self.resolve(full).plan(live, ledger, policies: policies)

        // Two sources of the view: the full tree itself, and the parts the service keeps.
        let rendered = try DesiredParts.render(manifests, cgroups: Self.cgroups(now)).parts.get()
        var parts = DesiredParts(fixed: rendered.fixed)
        for (root, entries) in rendered.instances { parts.add(root, entries) }
        for source in [DesiredParts(fixed: full), parts] {
            let view = try PlanView.make(source, roots: roots).get()
            let observed = PathScope(view.observed)
            var viewLive = LiveTree()
            for path in live.entries.keys.sorted() where path.isAnchor || observed.contains(path)
                || view.observed.contains(where: { $0.isDescendant(of: path) }) {
                viewLive.record(path, live.entries[path]!)
            }
            let wanted = view.ledgerPaths(live: viewLive)
            let viewLedger = Ledger(records: ledger.records.values.filter { wanted.contains($0.path) })
            let viewPlan = Self.resolve(view.desired).plan(viewLive, viewLedger, policies: policies)
            let expected = fullPlan.restricted(to: view.scope)
            // Records of paths neither declared nor present are forgotten by the next full pass.
            let actions = expected.actions.filter { action in
                guard case .forgetRecord = action.change else { return true }
                return wanted.contains(action.path)
            }
            #expect(viewPlan.restricted(to: view.scope).actions == actions, "seed \(seed)")
            #expect(viewPlan.restricted(to: view.scope).problems == expected.problems, "seed \(seed)")
            #expect(viewPlan.restricted(to: view.scope).notices == expected.notices, "seed \(seed)")
            // Outside its scope a view may only show what a full plan shows too (the service then plans in
            // full): never, say, the removal of a parent that other subtrees still need.
            let outside = viewPlan.actions.filter { !view.scope.contains($0.path) }
            #expect(outside.allSatisfy(fullPlan.actions.contains), "seed \(seed): \(outside.map(\.path))")
        }
    }

    @Test func aViewHoldsTheScopeItsAncestorsAndWhatItUses() throws {
        let manifests = try Self.manifests()
        let parts = try DesiredParts.render(manifests, cgroups: Self.cgroups([1, 2])).parts.get()
        let view = try PlanView.make(parts, roots: [path("jobs/A/1001"), path("other/w1")]).get()
        #expect(view.desired.entries.map(\.path.description) == [
            "jobs", "jobs/A", "jobs/A/1001", "jobs/A/1001/egress", "jobs/A/1001/stats", "jobs/A/1001/work",
            "jobs/A/1001/work/queue", "jobs/A/count", "jobs/A/counters", "other", "other/w1", "other/w1/m",
        ])
        #expect(view.observed.map(\.description).sorted() == ["jobs/A/1001", "jobs/A/count", "jobs/A/counters", "other/w1"])
        #expect(!parts.referencesAcrossInstances)
        #expect(parts.overlaps(path("jobs/A/1001")) && parts.overlaps(path("jobs")) && parts.overlaps(path("other/w2/x")))
        #expect(!parts.overlaps(path("jobs/A/1003")))
    }

    @Test func scopeMembershipIsBytewiseAndBySubtree() {
        let scope = PathScope([path("a/b"), path("a/b/c"), path("x")])
        #expect(scope.roots == [path("a/b"), path("x")])
        #expect(scope.contains(path("a/b")) && scope.contains(path("a/b/c/d")) && scope.contains(path("x/y")))
        #expect(!scope.contains(path("a")) && !scope.contains(path("a/bc")) && !scope.contains(path("a/b-c")) && !scope.contains(path("w")))
    }
}

/// A small seeded generator (SplitMix64), so that a failing seed can be run again.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func int(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}
