import BPFTreeCore
import Testing

@Suite struct TreeStampTests {
    let live = LiveTree(entries: [
        .anchor: LiveEntry(kind: .directory, mode: 0o755, inode: 1),
        TreePath(joined: "jobs"): LiveEntry(kind: .directory, mode: 0o755, inode: 2),
        TreePath(joined: "jobs/m"): LiveEntry(kind: .recordedMap(fingerprint: 7), mode: 0o600, inode: 3),
        TreePath(joined: "jobs-x"): LiveEntry(kind: .other("fifo"), mode: 0o644, inode: 4),
    ])

    func stamp(_ tree: LiveTree) -> TreeStamp {
        TreeStamp(inputs: Array(repeating: 1, count: 32), live: tree, roots: [.anchor, TreePath(joined: "jobs/A")],
                  notices: [PlanNotice(path: TreePath(joined: "jobs/x"), message: "left alone", category: .unmanaged)])
    }

    @Test func roundTripsThroughItsEncoding() throws {
        let original = stamp(live)
        #expect(original.records.map(\.path.text) == ["", "jobs", "jobs/m", "jobs-x"], "path order: '/' sorts first")
        let bytes = original.encoded
        #expect(TreeStamp.encodedLength(bytes + [0, 0, 0]) == bytes.count)
        #expect(TreeStamp(decoding: bytes + [0, 0, 0]) == original)
        #expect(TreeStamp(decoding: [UInt8](repeating: 0, count: 4096)) == nil, "a voided stamp decodes to nothing")
        #expect(TreeStamp(decoding: Array(bytes.dropLast())) == nil, "a cut stamp decodes to nothing")
    }

    /// The identities of a program tree's objects, and whether drift may be repaired, survive the encoding;
    /// a stamp that may not repair plans nothing from its declarations.
    @Test func objectIdentitiesAndRepairsRoundTrip() {
        var original = stamp(live)
        original.targets = [TargetIdentity(.object, "/obj/a.bpf.o", "8:12:4096:1.5"), TargetIdentity(.object, "/obj/b.bpf.o", "absent")]
        original.repairs = false
        #expect(TreeStamp(decoding: original.encoded) == original)
        var drifted = live
        drifted.entries[TreePath(joined: "jobs/m")] = nil
        #expect(original.repairPlan(drift: [TreePath(joined: "jobs/m")], live: drifted) == nil)
    }

    /// What a tree's programs and links depend on outside the bpffs: each object, and each link target by
    /// its declared name but a template's own cgroup (the scan holds it); in kind and name order, once.
    @Test func targetIdentitiesAreListedOnceInOrder() throws {
        let tree = try desired("""
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: t}
            spec:
              root: net
              entries:
                p: {program: {object: p.o, name: p}}
                a: {link: {program: net/p, cgroup: /job/a, attachType: cgroup_inet_egress}}
                b: {link: {program: net/p, cgroup: /job/b, attachType: cgroup_inet_egress}}
                x: {link: {program: net/p, attachType: xdp, interface: eth0}}
                u: {link: {program: net/p, uprobe: {binary: /bin/app, symbol: f}}}
            """)
        var targets = ResolvedTargets(links: [path("net/a"): .cgroup(id: 7), path("net/b"): .cgroup(id: 8),
                                              path("net/x"): .interface(index: 3),
                                              path("net/u"): .uprobe(file: "/usr/bin/app", offset: 16, identity: "8:9")])
        targets.objects = ["/m/p.o": "1:2:3:4.5"]
        let listed = TargetIdentity.list(tree, targets, scanned: [8], file: { _ in "?" })
        #expect(listed == [TargetIdentity(.object, "/m/p.o", "1:2:3:4.5"), TargetIdentity(.cgroup, "/job/a", "7"),
                           TargetIdentity(.interface, "eth0", "3"), TargetIdentity(.file, "/usr/bin/app", "8:9")])
    }

    /// A link moved to another program in place is settled as a pin whose link info is unknown: the
    /// observation it came from has its old program, which a stamp must not record.
    @Test func aLinkUpdatedInPlaceIsSettledUninspected() {
        var link = LiveLinkInfo(id: 4, type: 3, programID: 9, details: .cgroup(CgroupLink.Live(attach: 1, cgroupID: 77)))
        link.state = 0x5eed
        var tree = live
        tree.entries[path("jobs/l")] = LiveEntry(kind: .link(link), mode: 0o600, inode: 5)
        let spec = LinkSpec(program: path("jobs/p"), target: .cgroup(CgroupLink(attach: .cgroupInetEgress, cgroup: "/job")))
        tree.settle([Action(path: path("jobs/l"), change: .updateLink(ResolvedLink(spec), from: 9, differences: []))], made: [])
        #expect(tree[path("jobs/l")]?.kind == .pin && tree[path("jobs/l")]?.inode == 5)
    }

    /// A link's state is part of its record: a walk that finds the same inode but another `bpf_link_info`
    /// (detached, another program) is drift.
    @Test func aLinksStateIsComparedWithItsInspection() {
        var link = LiveLinkInfo(id: 4, type: 3, programID: 9, details: .cgroup(CgroupLink.Live(attach: 1, cgroupID: 77)))
        link.state = 0x5eed
        var tree = live
        tree.entries[path("jobs/l")] = LiveEntry(kind: .link(link), mode: 0o600, inode: 5)
        let original = stamp(tree)
        #expect(original.record(at: path("jobs/l"))?.state == link.state)
        #expect(TreeStamp(decoding: original.encoded) == original)
        #expect(original.drift(tree).isEmpty)
        var detached = link
        (detached.details, detached.state) = (.cgroup(CgroupLink.Live(attach: 1, cgroupID: 0)), 0x5eef)
        tree.entries[path("jobs/l")] = LiveEntry(kind: .link(detached), mode: 0o600, inode: 5)
        #expect(original.drift(tree) == [path("jobs/l")])
        tree.entries[path("jobs/l")] = LiveEntry(kind: .pin, mode: 0o600, inode: 5)
        #expect(original.drift(tree) == [path("jobs/l")], "a link the walk did not inspect is never taken as unchanged")
    }

    @Test func driftNamesEveryPathWhoseStatChangedAppearedOrWentAway() {
        let original = stamp(live)
        #expect(original.drift(live).isEmpty)
        let m = TreePath(joined: "jobs/m")
        for change in [{ (e: inout LiveEntry) in e.mode = 0o644 }, { $0.uid = 1 }, { $0.gid = 1 }, { $0.inode = 9 },
                       { $0.kind = .directory }] {
            var copy = live
            change(&copy.entries[m]!)
            #expect(original.drift(copy) == [m])
        }
        var changed = live
        changed.entries[m] = nil
        changed.entries[TreePath(joined: "jobs/n")] = LiveEntry(kind: .pin, mode: 0o600, inode: 5)
        #expect(original.drift(changed).map(\.text) == ["jobs/m", "jobs/n"])
        // A stat-only walk sees `.pin` where planning saw a vouched or inspected map: no drift.
        var statOnly = live
        statOnly.entries[m]?.kind = .pin
        #expect(original.drift(statOnly).isEmpty)
    }

    /// `jobs` (mode 0750) holding map `jobs/m` (mode 0640).
    static let declared = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: job}
            spec:
              root: jobs
              mode: "0750"
              entries:
                m: {map: {type: hash, keySize: 4, valueSize: 8, maxEntries: 2, contents: [{key: 1, value: 2}]}, mode: "0640"}
            """

    /// A stamp of `declared`: `jobs` and `jobs/m` owned unless `owned` is false.
    func declaredStamp(owned: Bool = true) throws -> (TreeStamp, LiveTree) {
        let tree = try desired(Self.declared)
        let converged = LiveTree(entries: [
            .anchor: LiveEntry(kind: .directory, mode: 0o755, inode: 1),
            TreePath(joined: "jobs"): LiveEntry(kind: .directory, mode: 0o750, inode: 2),
            TreePath(joined: "jobs/m"): LiveEntry(kind: .recordedMap(fingerprint: 7), mode: 0o640, inode: 3),
        ])
        let stamp = TreeStamp(inputs: Array(repeating: 1, count: 32), live: converged, desired: tree,
                              owned: { _ in owned }, roots: [TreePath(joined: "jobs")], notices: [])
        #expect(TreeStamp(decoding: stamp.encoded) == stamp, "declarations survive the encoding")
        return (stamp, converged)
    }

    @Test func repairsSimpleDriftFromTheStampAlone() throws {
        let (stamp, converged) = try declaredStamp()
        let jobs = TreePath(joined: "jobs"), m = TreePath(joined: "jobs/m")
        var drifted = converged
        drifted.entries[jobs]?.mode = 0o700
        drifted.entries[m] = nil
        let plan = try #require(stamp.repairPlan(drift: stamp.drift(drifted), live: drifted))
        #expect(plan.actions.map(\.kind) == ["setMode", "createMap"])
        #expect(plan.actions.map(\.path) == [jobs, m])
        guard case .createMap(let spec, let mode, _) = plan.actions[1].change else { return }
        #expect(spec.maxEntries == 2 && spec.contents == [MapEntry(key: [1, 0, 0, 0], value: [2, 0, 0, 0, 0, 0, 0, 0])])
        #expect(mode == 0o640)
        #expect(plan.actions[1].origin?.location.description == "m0.yaml:8:5")
    }

    /// The stamp only picks the paths; the plan is the planner's, and the one a full plan makes.
    @Test func aRepairIsTheFullPlanOfTheDriftedPaths() throws {
        let (stamp, converged) = try declaredStamp()
        let tree = try desired(Self.declared)
        let jobs = TreePath(joined: "jobs"), m = TreePath(joined: "jobs/m")
        let ledger = Ledger(records: [LedgerRecord(path: jobs, kind: .directory, inode: 2, manifest: "job"),
                                      LedgerRecord(path: m, kind: .map, inode: 3, fingerprint: 7, manifest: "job")])
        let drifts: [(String, (inout LiveTree) -> Void)] = [
            ("directory mode", { $0.entries[jobs]?.mode = 0o700 }),
            ("map mode", { $0.entries[m]?.mode = 0o600 }),
            ("map owner", { $0.entries[m]?.uid = 1000 }),
            ("map gone", { $0.entries[m] = nil }),
            ("directory mode, map gone", { $0.entries[jobs]?.mode = 0o777; $0.entries[m] = nil }),
        ]
        for (name, drift) in drifts {
            var full = converged
            full.entries[m]?.kind = .recordedMap(fingerprint: try #require(tree[m].flatMap { entry -> UInt64? in
                if case .map(let spec) = entry.kind { spec.fingerprint } else { nil } }))
            drift(&full)
            var walked = full
            if walked.entries[m] != nil { walked.entries[m]?.kind = .pin }
            let repair = try #require(stamp.repairPlan(drift: stamp.drift(walked), live: walked), "\(name)")
            let planned = Planner.plan(desired: tree, live: full, ledger: ledger)
            #expect(planned.problems.isEmpty, "\(name)")
            #expect(repair.actions.map { "\($0.path) \($0.change)" } == planned.actions.map { "\($0.path) \($0.change)" }, "\(name)")
        }
    }

    @Test func plansInFullForAnythingButSimpleDrift() throws {
        let (stamp, converged) = try declaredStamp()
        let jobs = TreePath(joined: "jobs"), m = TreePath(joined: "jobs/m")
        var changes: [(String, LiveTree)] = []
        var repinned = converged
        repinned.entries[m]?.inode = 9
        changes.append(("pinned again", repinned))
        var added = converged
        added.entries[TreePath(joined: "jobs/new")] = LiveEntry(kind: .pin, mode: 0o600, inode: 8)
        changes.append(("new entry", added))
        var gone = converged
        gone.entries[jobs] = nil
        gone.entries[m] = nil
        changes.append(("directory gone", gone))
        var anchor = converged
        anchor.entries[.anchor]?.mode = 0o700
        changes.append(("undeclared anchor", anchor))
        for (name, live) in changes { #expect(stamp.repairPlan(drift: stamp.drift(live), live: live) == nil, "\(name)") }
        // Mode drift of an entry bpftree does not own is for full planning to judge.
        let (unowned, _) = try declaredStamp(owned: false)
        var chmod = converged
        chmod.entries[jobs]?.mode = 0o700
        #expect(unowned.repairPlan(drift: unowned.drift(chmod), live: chmod) == nil)
    }

    @Test func theInputsDigestCoversSettingsNamesAndBytes() {
        let file = SourceFile(role: "manifest", file: "a.yaml", bytes: Array("x: 1".utf8))
        let base = TreeStamp.inputsDigest(settings: ["force false"], files: [file])
        var renamed = file
        renamed.file = "b.yaml"
        var edited = file
        edited.bytes = Array("x: 2".utf8)
        var policy = file
        policy.role = "policy"
        #expect(TreeStamp.inputsDigest(settings: ["force true"], files: [file]) != base)
        for other in [renamed, edited, policy] { #expect(TreeStamp.inputsDigest(settings: ["force false"], files: [other]) != base) }
        #expect(TreeStamp.inputsDigest(settings: ["force false"], files: [file]) == base)
    }
}
