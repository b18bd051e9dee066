import BPFTreeCore
import Testing

/// tcx links: positions decoded and checked against the declared tree, and what bpf_link_info cannot
/// tell (the position) found through the ledger's fingerprint.
@Suite struct TCXLinkPlanningTests {
    static func text(counter: String = "before: net/tc/filter", filterProgram: String = "net/tc/drop") -> String {
        """
        apiVersion: bpftree/v1
        kind: Tree
        metadata: {name: tc}
        spec:
          root: net/tc
          entries:
            drop: {program: {object: f.o, name: drop_udp9}, onIncompatible: replace}
            count: {program: {object: f.o, name: count_all}, onIncompatible: replace}
            filter: {link: {program: \(filterProgram), attachType: tcx_ingress, interface: eth0}, onIncompatible: replace}
            counter: {link: {program: net/tc/count, attachType: tcx_ingress, interface: eth0, \(counter)}, onIncompatible: replace}
        """
    }

    /// The tree as the kernel layer resolves it: sched_cls images (or `type`) and interface index 4.
    static func resolved(_ text: String, type: ProgramType = .schedCLS) throws -> ResolvedTree {
        ResolvedTree(try desired(text), image: { spec in
            ProgramImage(tag: spec.program == "count_all" ? 1 : 2, type: type.kernelValue, expectedAttachType: 0,
                         name: spec.program, section: "tc")
        }, link: { _ in .interface(index: 4) })
    }

    static func link(_ tree: ResolvedTree, _ name: String) throws -> ResolvedLink {
        let path = path("net/tc/\(name)")
        guard case .link(let spec)? = tree.tree[path]?.kind else { throw HarnessFailure("no link \(name)") }
        return tree.targets.link(spec, at: path)
    }

    struct HarnessFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    @Test(arguments: [("netkit_primary", AttachType.netkitPrimary), ("netkit_peer", .netkitPeer)])
    func netkitLinksAreTCXLinksOfTheirOwnLinkType(name: String, attach: AttachType) throws {
        let text = Self.text(counter: "position: first").replacingOccurrences(of: "tcx_ingress", with: name)
        let tree = try Self.resolved(text)
        let counter = try Self.link(tree, "counter")
        #expect(counter.spec.target == .netDevice(NetDeviceLink(interface: "eth0", hook: .tcx(attach, .first))) && counter.spec.kernelType == 13 && counter.spec.attachType == attach)
        #expect(counter.summary.hasPrefix("netkit net/tc/count on interface eth0 (index 4) at \(name), first"), "\(counter.summary)")
        #expect(tree.linkProblems().isEmpty, "\(tree.linkProblems())")
        // Placed next to a tcx link of another hook: refused, as between two tcx hooks.
        let mixed = try Self.resolved(Self.text().replacingOccurrences(of: "interface: eth0, before", with: "interface: eth0, before")
            .replacingOccurrences(of: "counter: {link: {program: net/tc/count, attachType: tcx_ingress", with: "counter: {link: {program: net/tc/count, attachType: \(name)"))
        #expect(mixed.linkProblems().map(\.message).contains { $0.contains("is not a tcx link on interface eth0 at \(name)") }, "\(mixed.linkProblems())")
    }

    @Test(arguments: [
        ("before: net/tc/filter", TCXPosition.before(path("net/tc/filter"))),
        ("after: net/tc/drop", .after(path("net/tc/drop"))),
        ("position: first", .first),
        ("position: last", .last),
    ])
    func positionsDecode(field: String, position: TCXPosition) throws {
        let tree = try Self.resolved(Self.text(counter: field))
        let counter = try Self.link(tree, "counter")
        #expect(counter.spec.target == .netDevice(NetDeviceLink(interface: "eth0", hook: .tcx(.tcxIngress, position))) && counter.spec.kernelType == 11 && counter.spec.attachType == .tcxIngress)
        #expect(try Self.link(tree, "filter").spec.target == .netDevice(NetDeviceLink(interface: "eth0", hook: .tcx(.tcxIngress, nil))))
        #expect(tree.linkProblems().isEmpty, "\(tree.linkProblems())")
    }

    @Test func positionFlagsAreTheKernels() {
        #expect(TCXPosition.first.flags == 1 << 3 && TCXPosition.last.flags == 1 << 4)
        #expect(TCXPosition.before(path("a")).flags == (1 << 3 | 1 << 5) && TCXPosition.after(path("a")).flags == (1 << 4 | 1 << 5))
    }

    @Test(arguments: [
        ("before: net/tc/missing", "'net/tc/missing' is not declared as a program or a tcx link"),
        ("after: net/tc/counter", "tcx positions must not form a cycle"),
        // The filter attaches drop; the counter's own program is on the hook only through this very link.
        ("after: net/tc/count", "'net/tc/count' is a declared program that no declared tcx link attaches at tcx_ingress of interface eth0"),
    ])
    func aRelativeMustBeADeclaredProgramOrTCXLink(field: String, message: String) throws {
        let problems = try Self.resolved(Self.text(counter: field)).linkProblems().map(\.description)
        #expect(problems.count == 1 && problems[0].contains(message) && problems[0].contains("spec.entries.counter.link"), "\(problems)")
        #expect(problems.first?.contains("m0.yaml:10:") == true, "\(problems)")
    }

    @Test func positionsMustNotFormACycleThroughOtherLinks() throws {
        let text = Self.text().replacingOccurrences(of: "interface: eth0}, onIncompatible", with: "interface: eth0, after: net/tc/counter}, onIncompatible")
        let problems = try Self.resolved(text).linkProblems().map(\.description)
        #expect(problems.count == 2 && problems.allSatisfy { $0.contains("must not form a cycle") }, "\(problems)")
    }

    @Test func aRelativeLinkMustBeOnTheSameInterfaceAndHook() throws {
        let text = Self.text().replacingOccurrences(of: "tcx_ingress, interface: eth0}", with: "tcx_egress, interface: eth0}")
        let problems = try Self.resolved(text).linkProblems().map(\.description)
        #expect(problems.count == 1 && problems[0].contains("'net/tc/filter' is not a tcx link on interface eth0 at tcx_ingress"), "\(problems)")
    }

    @Test func aTCXLinkNeedsASchedCLSProgram() throws {
        let problems = try Self.resolved(Self.text(), type: .xdp).linkProblems().map(\.description)
        #expect(problems.count == 2 && problems.allSatisfy { $0.contains("is a xdp program; a tcx link needs a sched_cls program") }, "\(problems)")
    }

    /// A converged live tree: both links on interface 4, each with the ledger fingerprint of `recorded`'s.
    static func converged(_ recorded: ResolvedTree) throws -> (LiveTree, Ledger) {
        var live = LiveTree()
        live.record(.anchor, LiveEntry(kind: .directory, mode: 0o755, inode: 1))
        var records: [LedgerRecord] = []
        let entries: [(String, LiveEntry.Kind, UInt64)] = [
            ("net", .directory, 0), ("net/tc", .directory, 0),
            ("net/tc/drop", .program(LiveProgramInfo(id: 20, type: 3, tag: 2, name: "drop_udp9")), 2),
            ("net/tc/count", .program(LiveProgramInfo(id: 21, type: 3, tag: 1, name: "count_all")), 1),
            ("net/tc/filter", .link(LiveLinkInfo(id: 30, type: 11, programID: 20, details: .netDevice(NetDeviceLink.Live(attach: 46, interfaceIndex: 4)))),
             try link(recorded, "filter").fingerprint),
            ("net/tc/counter", .link(LiveLinkInfo(id: 31, type: 11, programID: 21, details: .netDevice(NetDeviceLink.Live(attach: 46, interfaceIndex: 4)))),
             try link(recorded, "counter").fingerprint),
        ]
        for (index, (text, kind, fingerprint)) in entries.enumerated() {
            let mode: UInt32 = kind == .directory ? 0o755 : 0o600
            let entry = LiveEntry(kind: kind, mode: mode, inode: UInt64(100 + index))
            live.record(path(text), entry)
            records.append(LedgerRecord(path: path(text), kind: entry.kind.ledgerKind ?? .directory, inode: UInt64(100 + index),
                                        fingerprint: fingerprint, manifest: "tc"))
        }
        return (live, Ledger(records: records))
    }

    static func plan(_ desired: ResolvedTree, _ live: LiveTree, _ ledger: Ledger) throws -> Plan {
        let policies = try replacingPolicy("net/**")
        return desired.plan(live, ledger, policies: policies)
    }

    @Test func aConvergedTCXTreeHasNothingToDo() throws {
        let tree = try Self.resolved(Self.text())
        let (live, ledger) = try Self.converged(tree)
        let plan = try Self.plan(tree, live, ledger)
        #expect(!plan.hasChanges && plan.problems.isEmpty, "\(plan.actions.map(\.reason)) \(plan.problems)")
    }

    /// The kernel does not tell a link's position: a changed one is found through the fingerprint the
    /// ledger kept, and the link is made again there.
    @Test func aChangedPositionRemakesTheLink() throws {
        let (live, ledger) = try Self.converged(try Self.resolved(Self.text()))
        let plan = try Self.plan(try Self.resolved(Self.text(counter: "after: net/tc/filter")), live, ledger)
        #expect(plan.actions.map(\.kind) == ["replaceLink"] && plan.actions.first?.path == path("net/tc/counter"))
        #expect(plan.actions.first?.reason == "after: declared after net/tc/filter, live another, when the link was made", "\(plan.actions.map(\.reason))")
    }

    /// A link whose program is another than declared moves to it in place, expecting the program it holds.
    @Test func aLinkOnAnotherProgramIsUpdatedInPlace() throws {
        let tree = try Self.resolved(Self.text())
        var (live, ledger) = try Self.converged(tree)
        live.entries[path("net/tc/filter")]?.kind = .link(LiveLinkInfo(id: 30, type: 11, programID: 99, details: .netDevice(NetDeviceLink.Live(attach: 46, interfaceIndex: 4))))
        let plan = try Self.plan(tree, live, ledger)
        #expect(plan.actions.map(\.kind) == ["updateLink"], "\(plan.actions.map(\.reason))")
        guard case .updateLink(let link, let from, _)? = plan.actions.first?.change else { return }
        #expect(from == 99 && link.spec.program == path("net/tc/drop"))
        #expect(plan.actions.first?.detail == "link update program: program id 99 -> net/tc/drop, in place")
    }

    /// A program that changed together with the link's position: made again, never only moved in place
    /// (which would leave the position as it was, and the next diff with a change).
    @Test func aLinkOnAnotherProgramAndAtAnotherPositionIsRemade() throws {
        var (live, ledger) = try Self.converged(try Self.resolved(Self.text()))
        live.entries[path("net/tc/counter")]?.kind = .link(LiveLinkInfo(id: 31, type: 11, programID: 99, details: .netDevice(NetDeviceLink.Live(attach: 46, interfaceIndex: 4))))
        let plan = try Self.plan(try Self.resolved(Self.text(counter: "position: last")), live, ledger)
        #expect(plan.actions.map(\.kind) == ["replaceLink"] && plan.actions.first?.path == path("net/tc/counter"), "\(plan.actions.map(\.reason))")
        #expect(plan.actions.first?.reason.contains("position: declared last, live another, when the link was made") == true, "\(plan.actions.map(\.reason))")
    }

    /// A link placed after a neighbour that is made again (it was no longer first: another program was put
    /// before it) is placed anew too, so one apply converges: otherwise it would stay where the
    /// neighbour was, now behind the other program.
    @Test func aLinkPlacedNextToANeighbourMadeAgainIsPlacedAgainToo() throws {
        // The filter first, the counter after it; the counter is declared (and so planned) before the filter.
        let text = Self.text(counter: "after: net/tc/filter").replacingOccurrences(of: "interface: eth0}, onIncompatible", with: "interface: eth0, position: first}, onIncompatible")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let reordered = (lines.filter { !$0.contains("    filter:") && !$0.contains("    counter:") }
                         + lines.filter { $0.contains("    counter:") } + lines.filter { $0.contains("    filter:") }).joined(separator: "\n")
        let tree = try Self.resolved(reordered)
        var (live, ledger) = try Self.converged(tree)
        // Another program was put first: the filter (30) is second, the counter (31) right after it.
        for name in ["filter", "counter"] {
            guard case .link(var info)? = live.entries[path("net/tc/\(name)")]?.kind, case .netDevice(var device) = info.details else { continue }
            (device.hookLinks, device.hookPrograms) = ([0, 30, 31], [77, 20, 21])
            info.details = .netDevice(device)
            live.entries[path("net/tc/\(name)")]?.kind = .link(info)
        }
        let plan = try Self.plan(tree, live, ledger)
        #expect(Set(plan.actions.map { "\($0.kind) \($0.path)" }) == ["replaceLink net/tc/filter", "replaceLink net/tc/counter"], "\(plan.actions.map(\.reason))")
        #expect(plan.actions.first { $0.path == path("net/tc/counter") }?.reason.contains("net/tc/filter, which is made again now") == true,
                "\(plan.actions.map(\.reason))")
    }

    /// On another interface the link is made again: an update only moves a link to another program. The
    /// counter placed before it is placed anew too, next to it on the declared hook.
    @Test func aLinkOnAnotherInterfaceIsRemade() throws {
        let tree = try Self.resolved(Self.text())
        var (live, ledger) = try Self.converged(tree)
        live.entries[path("net/tc/filter")]?.kind = .link(LiveLinkInfo(id: 30, type: 11, programID: 99, details: .netDevice(NetDeviceLink.Live(attach: 46, interfaceIndex: 5))))
        let plan = try Self.plan(tree, live, ledger)
        #expect(plan.actions.map { "\($0.kind) \($0.path)" } == ["replaceLink net/tc/filter", "replaceLink net/tc/counter"], "\(plan.actions.map(\.reason))")
    }

    /// The hook's order as BPF_PROG_QUERY gives it: a link placed before another must be right before it,
    /// a link placed first must be first.
    @Test func aPositionIsCheckedAgainstTheHooksOrder() throws {
        let tree = try Self.resolved(Self.text())
        var (live, ledger) = try Self.converged(tree)
        func order(_ links: [UInt32], programs: [UInt32]) {
            for name in ["filter", "counter"] {
                guard case .link(var info)? = live.entries[path("net/tc/\(name)")]?.kind, case .netDevice(var device) = info.details else { continue }
                (device.hookLinks, device.hookPrograms) = (links, programs)
                info.details = .netDevice(device)
                live.entries[path("net/tc/\(name)")]?.kind = .link(info)
            }
        }
        order([31, 30], programs: [21, 20])
        #expect(!(try Self.plan(tree, live, ledger)).hasChanges)
        // Another program slipped in between the counter (31) and the filter (30).
        order([31, 0, 30], programs: [21, 77, 20])
        let plan = try Self.plan(tree, live, ledger)
        #expect(plan.actions.map(\.kind) == ["replaceLink"] && plan.actions.first?.path == path("net/tc/counter"))
        #expect(plan.actions.first?.reason == "before: declared net/tc/filter, live 1 of 3 on the hook, before program id 77", "\(plan.actions.map(\.reason))")

        let first = try Self.resolved(Self.text(counter: "position: first"))
        (live, ledger) = try Self.converged(first)
        order([40, 31, 30], programs: [50, 21, 20])
        let moved = try Self.plan(first, live, ledger)
        #expect(moved.actions.first?.reason == "position: declared first, live 2 of 3 on the hook", "\(moved.actions.map(\.reason))")
    }
}
