import BPFTreeCore
import BPFTreeTestSupport
import BPFTreeYAML
import Testing

/// `program:` and `link:` entries: decoding, templates, references, and planning against live state.
@Suite struct ProgramLinkPlanningTests {
    static let text = """
        apiVersion: bpftree/v1
        kind: Tree
        metadata: {name: job}
        spec:
          root: jobs/A
          entries:
            counters: {map: {type: lru_hash, keySize: 8, valueSize: 16, maxEntries: 64}}
            count: {program: {object: obj/job.bpf.o, name: count_egress, type: cgroup_skb, maps: {counters: jobs/A/counters}}, onIncompatible: replace}
            egress: {link: {program: jobs/A/count, cgroup: jobs/A/w1, attachType: cgroup_inet_egress}, mode: "0400", onIncompatible: replace}
            stats: {link: {program: jobs/A/count, iter: cgroup, order: descendants_pre, cgroup: /sys/fs/cgroup/x}, onIncompatible: replace}
        """

    static let image = ProgramImage(tag: 0x0102_0304_0506_0708, type: ProgramType.cgroupSKB.kernelValue, expectedAttachType: 1,
                                    name: "count_egress", objectMaps: ["counters": ObjectMap(type: 9, keySize: 8, valueSize: 16)])

    /// The desired tree of `text` as the kernel layer resolves it: the program's image and cgroup ids.
    static func resolved(_ text: String = text, image: ProgramImage = image) throws -> ResolvedTree {
        ResolvedTree(try desired(text), image: { _ in image }, link: { _ in .cgroup(id: 77) })
    }

    static let mapInfo = LiveMapInfo(id: 5, type: 9, keySize: 8, valueSize: 16, maxEntries: 64, flags: 0)
    static let programInfo = LiveProgramInfo(id: 20, type: 8, tag: 0x0102_0304_0506_0708, name: "count_egress", mapIDs: [5])
    static let egressInfo = LiveLinkInfo(id: 30, type: 3, programID: 20, details: .cgroup(CgroupLink.Live(attach: 1, cgroupID: 77)))
    static let statsInfo = LiveLinkInfo(id: 31, type: 4, programID: 20, details: .iterator(IteratorLink.Live(target: "cgroup", order: 2, cgroupID: 77)))

    /// The converged live tree, every entry owned by the ledger.
    static func converged() -> (LiveTree, Ledger) {
        let entries: [(String, LiveEntry.Kind, UInt32)] = [
            ("jobs", .directory, 0o755), ("jobs/A", .directory, 0o755), ("jobs/A/counters", .map(mapInfo), 0o600),
            ("jobs/A/count", .program(programInfo), 0o600), ("jobs/A/egress", .link(egressInfo), 0o400),
            ("jobs/A/stats", .link(statsInfo), 0o600),
        ]
        var live = LiveTree()
        live.record(.anchor, LiveEntry(kind: .directory, mode: 0o755, inode: 1))
        var records: [LedgerRecord] = []
        for (index, (text, kind, mode)) in entries.enumerated() {
            let inode = UInt64(100 + index)
            live.record(path(text), LiveEntry(kind: kind, mode: mode, inode: inode))
            records.append(LedgerRecord(path: path(text), kind: LiveEntry(kind: kind, mode: mode).kind.ledgerKind ?? .directory,
                                        inode: inode, manifest: "job"))
        }
        return (live, Ledger(records: records))
    }

    static func plan(_ live: LiveTree, _ ledger: Ledger, desired: ResolvedTree? = nil) throws -> Plan {
        let policies = try replacingPolicy("jobs/**")
        return try (desired ?? resolved()).plan(live, ledger, policies: policies)
    }

    @Test func decodesProgramsAndLinks() throws {
        let tree = try desired(Self.text)
        guard case .program(let program)? = tree[path("jobs/A/count")]?.kind,
              case .link(let egress)? = tree[path("jobs/A/egress")]?.kind,
              case .link(let stats)? = tree[path("jobs/A/stats")]?.kind else {
            Issue.record("kinds: \(tree.entries.map(\.kind.name))")
            return
        }
        #expect(program.objectPath == "obj/job.bpf.o" && program.program == "count_egress" && program.type == .cgroupSKB)
        #expect(program.maps.map(\.path) == [path("jobs/A/counters")])
        #expect(egress.program == path("jobs/A/count") && egress.target == .cgroup(CgroupLink(attach: .cgroupInetEgress, cgroup: "jobs/A/w1")))
        #expect(stats.target == .iterator(.cgroup("/sys/fs/cgroup/x", .descendantsPre)))
        let thread = try desired(Self.text.replacingOccurrences(
            of: "    egress:", with: "    mine: {link: {program: jobs/A/count, iter: task_vma, tid: 5}}\n    egress:"))
        guard case .link(let walk)? = thread[path("jobs/A/mine")]?.kind else {
            Issue.record("no task iterator")
            return
        }
        #expect(walk.target == .iterator(.plain("task_vma", .thread(5))) && ResolvedLink(walk).summary == "iterator jobs/A/count over task_vma of thread 5")
        let xdp = try desired(Self.text.replacingOccurrences(
            of: "    egress:", with: "    xdp: {link: {program: jobs/A/count, attachType: xdp, interface: veth0, xdpMode: generic}}\n    egress:"))
        guard case .link(let onInterface)? = xdp[path("jobs/A/xdp")]?.kind else {
            Issue.record("no XDP link")
            return
        }
        #expect(onInterface.target == .netDevice(NetDeviceLink(interface: "veth0", hook: .xdp(.generic))) && onInterface.cgroup == nil)
        #expect(onInterface.attachType == .xdp && onInterface.kernelType == 6)
        #expect(tree[path("jobs/A/egress")]?.mode == 0o400 && tree[path("jobs/A/stats")]?.mode == 0o600)
        #expect(tree.boundMaps == [path("jobs/A/counters")])
        // The object path is taken relative to the manifest's directory.
        let nested = try decode(Self.text, file: "/etc/bpftree/job.yaml").get()
        guard case .program(let moved)? = nested[0].entries.first(where: { $0.path == path("jobs/A/count") })?.kind else {
            Issue.record("no program")
            return
        }
        #expect(moved.objectPath == "/etc/bpftree/obj/job.bpf.o" && moved.object == "obj/job.bpf.o")
    }

    @Test(arguments: [
        ("{program: {object: a.o}}", "8:", "missing required field 'name'"),
        ("{program: {object: a.o, name: p, type: cgroup_skbb}}", "8:", "unknown program type 'cgroup_skbb'; did you mean 'cgroup_skb'?"),
        ("{link: {program: jobs/p, cgroup: x}}", "8:", "a link needs attachType (e.g. cgroup_inet_egress, xdp), iter (e.g. cgroup, task) or one of tracepoint, rawTracepoint, uprobe, kprobe"),
        ("{link: {program: jobs/p, cgroup: x, attachType: xdp}}", "8:", "spec.entries.x.link.cgroup: cgroup applies to cgroup links and iterators; this link is on an interface"),
        ("{link: {program: jobs/p, attachType: xdp}}", "8:", "missing required field 'interface'"),
        ("{link: {program: jobs/p, attachType: cgroup_inet_egress}}", "8:", "missing required field 'cgroup'"),
        ("{link: {program: jobs/p, cgroup: x, attachType: cgroup_inet_egress, interface: eth0}}", "8:", "interface applies to XDP, tcx and netkit links"),
        ("{link: {program: jobs/p, interface: eth0, attachType: xdp, xdpMode: driver}}", "8:", "xdpMode"),
        ("{link: {program: jobs/p, cgroup: x, iter: cgroup, xdpMode: native}}", "8:", "xdpMode applies to XDP links"),
        ("{link: {program: jobs/p, interface: a/b, attachType: xdp}}", "8:", "'a/b' is not a network interface name"),
        ("{link: {program: jobs/p, interface: abcdefghijklmnop, attachType: xdp}}", "8:", "not a network interface name (1 to 15 bytes"),
        ("{link: {program: jobs/p, interface: eth0, attachType: lirc_mode2}}", "8:", "attach type lirc_mode2 is not supported for links; supported: xdp, tcx_ingress, tcx_egress, netkit_primary, netkit_peer, sk_lookup, flow_dissector, sk_skb_stream_parser"),
        ("{link: {program: jobs/p, attachType: tcx_egress}}", "8:", "spec.entries.x.link.interface: missing required field 'interface'"),
        ("{link: {program: jobs/p, interface: eth0, attachType: tcx_ingress, position: front}}", "8:", "'front' is not one of first, last"),
        ("{link: {program: jobs/p, interface: eth0, attachType: tcx_ingress, position: first, before: jobs/p}}", "8:", "spec.entries.x.link.before: a tcx link has at most one of position, before and after"),
        ("{link: {program: jobs/p, interface: eth0, attachType: tcx_ingress, after: /jobs/p}}", "8:", "spec.entries.x.link.after: '/jobs/p' is not an anchor-relative path"),
        ("{link: {program: jobs/p, interface: eth0, attachType: xdp, before: jobs/p}}", "8:", "spec.entries.x.link.before: before applies to tcx and netkit links"),
        ("{link: {program: jobs/p, cgroup: x, iter: cgroup, position: last}}", "8:", "position applies to tcx and netkit links"),
        ("{link: {program: jobs/p, iter: tsk}}", "8:", "iterator 'tsk' is not supported; supported: cgroup, bpf_map_elem, sockmap, bpf_link"),
        ("{link: {program: jobs/p, iter: tsk}}", "8:", "did you mean 'task'?"),
        ("{link: {program: jobs/p, iter: bpf_map, pid: 1}}", "8:", "spec.entries.x.link.pid: pid applies to task iterators (iter: task, task_file, task_vma)"),
        ("{link: {program: jobs/p, interface: eth0, attachType: xdp, tid: 3}}", "8:", "spec.entries.x.link.tid: tid applies to task iterators"),
        ("{link: {program: jobs/p, iter: task, pid: 1, tid: 2}}", "8:", "a task iterator walks one process (pid) or one thread (tid), not both"),
        ("{link: {program: jobs/p, iter: task_file, pid: 0}}", "8:", "pid must be a process or thread id above 0"),
        ("{link: {program: jobs/p, attachType: sk_lookup}}", "8:", "spec.entries.x.link.netns: missing required field 'netns'"),
        ("{link: {program: jobs/p, attachType: sk_lookup, netns: run/netns/a}}", "8:", "must be the absolute path of a network namespace file"),
        ("{link: {program: jobs/p, attachType: xdp, interface: eth0, netns: /run/netns/a}}", "8:", "netns applies to network namespace links"),
        ("{link: {program: jobs/p, cgroup: x, iter: task}}", "8:", "cgroup applies to cgroup links and iterators; this link is an iterator over task"),
        ("{link: {program: jobs/p, iter: task, order: self_only}}", "8:", "order applies to cgroup iterators"),
        ("{link: {program: jobs/p, cgroup: x, iter: cgroup, attachType: cgroup_inet_egress}}", "8:", "either attachType"),
        ("{link: {program: 'jobs/{cgroup.id}/p', cgroup: x, iter: cgroup}}", "8:", "placeholders such as {cgroup.id} need spec.forEachCgroup"),
        ("{link: {program: jobs/p, cgroup: ../x, iter: cgroup}}", "8:", "without '.' or '..' segments"),
        ("{program: {object: a.o, name: p}, map: {type: hash}}", "8:", "not 'map' and 'program'"),
        ("{directory: {}, onIncompatible: replace}", "8:", "onIncompatible applies to maps, programs and links"),
    ])
    func badDeclarationsNameTheirLineAndField(entry: String, line: String, message: String) {
        let text = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: job}
            spec:
              root: jobs
              entries:
                p: {program: {object: a.o, name: p}}
                x: \(entry)
            """
        let found = diagnostics(text)
        #expect(found.contains { $0.description.contains("m.yaml:\(line)") && $0.description.contains(message) }, "\(found)")
    }

    @Test func referencesMustNameDeclaredEntriesOfTheRightKind() throws {
        let text = Self.text.replacingOccurrences(of: "program: jobs/A/count, cgroup: jobs/A/w1", with: "program: jobs/A/counters, cgroup: jobs/A/w1")
            .replacingOccurrences(of: "maps: {counters: jobs/A/counters}", with: "maps: {counters: jobs/A/gone}")
        let manifests = try decode(text).get()
        guard case .failure(let failure) = DesiredTree.build(manifests) else {
            Issue.record("built")
            return
        }
        let messages = failure.diagnostics.map(\.description)
        #expect(messages.contains { $0.contains("map counters is bound to 'jobs/A/gone', which is not declared") && $0.contains("spec.entries.count.program.maps.counters") }, "\(messages)")
        #expect(messages.contains { $0.contains("the link's program 'jobs/A/counters' is a map") }, "\(messages)")
    }

    @Test func aBindingMustMatchTheObjectsMap() throws {
        let wrong = ProgramImage(tag: 1, type: 8, expectedAttachType: 1, name: "count_egress",
                                 objectMaps: ["counters": ObjectMap(type: 1, keySize: 8, valueSize: 8), "other": ObjectMap(type: 1, keySize: 4, valueSize: 4)])
        let problems = try Self.resolved(image: wrong).bindingProblems().map(\.description)
        #expect(problems.count == 1 && problems[0].contains("type hash in the object, lru_hash declared; valueSize 8 in the object, 16 declared"), "\(problems)")
    }

    @Test func templatesFillReferencesAndCgroups() throws {
        let text = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: per-cgroup}
            spec:
              forEachCgroup: {path: jobs/A, depth: 1}
              root: jobs/A/{cgroup.id}
              entries:
                egress: {link: {program: 'jobs/A/{cgroup.name}-prog', cgroup: '{cgroup.path}', attachType: cgroup_inet_egress}}
            """
        let manifest = try #require(try decode(text).get().first)
        let source = CgroupSource(path: "jobs/A", depth: 1)
        let (instances, _) = manifest.instances([source: [Cgroup(id: 42, name: "w1", path: "w1")]])
        let link = try #require(instances.first?.entries.first { $0.path == path("jobs/A/42/egress") })
        guard case .link(let spec) = link.kind else {
            Issue.record("not a link")
            return
        }
        #expect(spec.program == path("jobs/A/w1-prog") && spec.target == .cgroup(CgroupLink(attach: .cgroupInetEgress, cgroup: "jobs/A/w1")))
    }

    @Test func aConvergedTreeHasNothingToDo() throws {
        let (live, ledger) = Self.converged()
        let plan = try Self.plan(live, ledger)
        #expect(!plan.hasChanges && plan.problems.isEmpty, "\(plan.actions.map(\.kind)) \(plan.problems)")
    }

    /// The cgroup link moves to the new program in place (BPF_LINK_UPDATE, expecting the old one); an
    /// iterator link cannot, and is made again.
    @Test func aNewTagReloadsTheProgramMovesItsCgroupLinkInPlaceAndRemakesItsIterator() throws {
        let (live, ledger) = Self.converged()
        var image = Self.image
        image.tag = 0xaa
        let plan = try Self.plan(live, ledger, desired: try Self.resolved(image: image))
        #expect(plan.problems.isEmpty, "\(plan.problems)")
        #expect(plan.actions.map(\.kind) == ["replaceProgram", "updateLink", "replaceLink"])
        #expect(plan.actions[0].reason == "tag: declared 00000000000000aa, live 0102030405060708")
        #expect(plan.actions[1].reason == "program: declared jobs/A/count, which is loaded now, live program id 20")
        guard case .updateLink(_, let from, _) = plan.actions[1].change else {
            Issue.record("\(plan.actions[1])")
            return
        }
        #expect(from == 20 && plan.actions[1].category == .update)
        #expect(ExecutionPhase.of(plan.actions[1]) == .attributes, "after the new program is in place")
    }

    @Test func aBoundMapTheProgramNeverNamesIsNotAmongItsMapIDsAndNotADifference() throws {
        var (live, ledger) = Self.converged()
        live.entries[path("jobs/A/counters")]?.kind = .map(LiveMapInfo(id: 6, type: 9, keySize: 8, valueSize: 16, maxEntries: 64, flags: 0))
        var image = Self.image
        for name in image.objectMaps.keys { image.objectMaps[name]?.used = false }
        let plan = try Self.plan(live, ledger, desired: try Self.resolved(image: image))
        #expect(!plan.actions.contains { $0.kind == "replaceProgram" }, "\(plan.actions.map(\.reason))")
    }

    @Test func aProgramNotUsingItsBoundMapIsReloaded() throws {
        var (live, ledger) = Self.converged()
        live.entries[path("jobs/A/counters")]?.kind = .map(LiveMapInfo(id: 6, type: 9, keySize: 8, valueSize: 16, maxEntries: 64, flags: 0))
        let plan = try Self.plan(live, ledger)
        #expect(plan.actions.first?.kind == "replaceProgram")
        #expect(plan.actions.first?.reason == "maps.counters: declared jobs/A/counters (map id 6), live map ids 5")
    }

    @Test func aLinkOnAnotherCgroupOrProgramDiffers() throws {
        var (live, ledger) = Self.converged()
        var moved = Self.egressInfo
        moved.details = .cgroup(CgroupLink.Live(attach: 1, cgroupID: 0))
        live.entries[path("jobs/A/egress")]?.kind = .link(moved)
        var other = Self.statsInfo
        other.programID = 99
        live.entries[path("jobs/A/stats")]?.kind = .link(other)
        let plan = try Self.plan(live, ledger)
        #expect(plan.actions.map(\.reason) == ["cgroup: declared jobs/A/w1 (id 77), live a removed cgroup",
                                               "program: declared jobs/A/count (id 20), live program id 99"])
    }

    @Test func whatBpftreeDidNotCreateIsNotReplaced() throws {
        let (live, _) = Self.converged()
        var image = Self.image
        image.name = "other"
        let plan = try Self.plan(live, Ledger(), desired: try Self.resolved(image: image))
        #expect(plan.problems.map(\.path.description) == ["jobs/A/count", "jobs/A/egress", "jobs/A/stats"])
        #expect(plan.problems[0].message.contains("the pinned program differs (name: declared other, live count_egress); it was not created by bpftree"))
        #expect(plan.problems[1].message == "its program jobs/A/count has a conflict")
    }

    @Test func undeclaredProgramsAndLinksArePruned() throws {
        let (live, ledger) = Self.converged()
        let onlyMap = Self.text.split(separator: "\n").filter { !$0.contains("count:") && !$0.contains("egress:") && !$0.contains("stats:") }
            .joined(separator: "\n")
        let plan = try Self.plan(live, ledger, desired: ResolvedTree(try desired(onlyMap)) { _ in nil })
        #expect(plan.actions.map { "\($0.kind) \($0.path)" } == ["remove jobs/A/stats", "remove jobs/A/egress", "remove jobs/A/count"])
    }
}
