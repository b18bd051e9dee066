import BPFTreeCore
import BPFTreeKernel
import BPFTreeYAML
import SystemPackage
import Testing

/// The executor's failure policy, driven through `RecordingKernel`: the first failure stops the run,
/// whatever was staged and is not in place is removed, the ledger claims only what is in place, and every
/// later action is reported as not done.
@Suite struct ExecutorTests {
    static func map(_ name: String, contents: Int = 0, freeze: Bool = false, type: MapType = .hash) -> MapSpec {
        MapSpec(type: type, keySize: 4, valueSize: 4, maxEntries: 64, name: name,
                contents: (0..<contents).map { MapEntry(key: [UInt8(truncatingIfNeeded: $0), 0, 0, 0], value: [1, 2, 3, 4]) },
                freeze: freeze)
    }

    static func createMap(_ path: String, _ spec: MapSpec, mode: UInt32 = 0o640) -> Action {
        Action(path: TreePath(joined: path), change: .createMap(spec, mode: mode, owner: .unmanaged), manifest: "m")
    }

    static func createDirectory(_ path: String, mode: UInt32 = 0o755) -> Action {
        Action(path: TreePath(joined: path), change: .createDirectory(mode: mode, owner: .unmanaged), manifest: "m")
    }

    /// A new directory with two maps in it, and a map beside an existing one.
    static func creations() -> (RecordingKernel, Plan) {
        let kernel = RecordingKernel()
        kernel.directory("jobs")
        let plan = Plan(actions: [
            createDirectory("jobs/a"),
            createMap("jobs/a/stats", map("stats")),
            createMap("jobs/a/limits", map("limits")),
            createMap("jobs/top", map("top")),
        ])
        return (kernel, plan)
    }

    static func outcomes(_ report: ExecutionReport) -> [String] {
        report.results.map { result in
            switch result.outcome {
            case .done: "done \(result.action.path)"
            case .failed(let error): "failed \(result.action.path) \(error.errno.map { "\($0.rawValue)" } ?? "-")"
            case .notDone: "notDone \(result.action.path)"
            }
        }
    }

    @Test func everythingIsMadeUnderTemporaryNamesRecordedFirstThenRenamedIntoPlace() {
        let (kernel, plan) = Self.creations()
        let report = Executor(kernel: kernel).execute(plan)
        #expect(report.failure == nil)
        #expect(report.done == 4)
        // Declared modes, and each ledger record names the inode now at its path.
        #expect(kernel.tree[TreePath(joined: "jobs/a")]?.mode == 0o755)
        #expect(kernel.tree[TreePath(joined: "jobs/a/stats")]?.mode == 0o640)
        for path in ["jobs/a", "jobs/a/stats", "jobs/a/limits", "jobs/top"] {
            let record = kernel.ledger[TreePath(joined: path)]
            #expect(record?.state == .owned)
            #expect(record?.inode == kernel.tree[TreePath(joined: path)]?.inode, "\(path)")
        }
        #expect(kernel.ledger.count == 4, "no temporary record is left")
        #expect(!kernel.tree.keys.contains { $0.name.hasPrefix(Reserved.temporaryPrefix) })
        // The temporary names are recorded before anything is made; the maps of the new directory are made
        // inside it under their final names, and only two renames put everything in place.
        let first = kernel.calls.firstIndex { $0.hasPrefix("record") && $0.contains("temporary") }
        let made = kernel.calls.firstIndex { $0.hasPrefix("mkdir") || $0.hasPrefix("batch") }
        #expect(first != nil && made != nil && first! < made!)
        #expect(kernel.calls(starting: "rename").count == 2)
        #expect(report.batchRuns == 1)
    }

    @Test func aMapTheKernelRefusesLeavesTreeAndLedgerAsTheyWere() {
        let (kernel, plan) = Self.creations()
        let before = kernel.state
        kernel.refuse = { $0 == "create limits" ? .notPermitted : nil }
        let report = Executor(kernel: kernel).execute(plan)
        #expect(Self.outcomes(report) == ["notDone jobs/a", "notDone jobs/a/stats", "failed jobs/a/limits 1", "notDone jobs/top"])
        #expect(report.failure?.1.operation == .bpf(.mapCreate, batch: true))
        #expect(report.failure?.1.operation.description == "BPF_MAP_CREATE (batch program)")
        #expect(kernel.state == before)
    }

    @Test func aRunTooSmallForAllMapsTakesSeveralAndAFailureInALaterOneUndoesTheEarlierOnes() {
        let kernel = RecordingKernel(limits: BatchLimits(maxOps: 64, dataSize: 4096, maxMaps: 2))
        kernel.directory("jobs")
        let plan = Plan(actions: (0..<5).map { Self.createMap("jobs/m\($0)", Self.map("m\($0)")) })
        let before = kernel.state
        kernel.refuse = { $0 == "create m4" ? .noSpace : nil }
        let report = Executor(kernel: kernel).execute(plan)
        #expect(kernel.calls(starting: "batch").count == 3)
        #expect(report.failed == 1 && report.notDone == 4 && report.done == 0)
        #expect(kernel.state == before)
    }

    @Test func contentsLargerThanARunAreWrittenAfterItThenFrozen() {
        let kernel = RecordingKernel(limits: BatchLimits(maxOps: 8, dataSize: 4096, maxMaps: 16))
        let spec = Self.map("big", contents: 20, freeze: true)
        let report = Executor(kernel: kernel).execute(Plan(actions: [Self.createMap("big", spec)]))
        #expect(report.failure == nil)
        let calls = kernel.calls.filter { $0.hasPrefix("write") || $0.hasPrefix("freeze") || $0.hasPrefix("pin") }
        #expect(calls.count == 3 && calls[0].hasPrefix("write") && calls[1].hasPrefix("freeze") && calls[2].hasPrefix("pin"), "\(calls)")
        let object = kernel.tree[TreePath(joined: "big")]?.object
        #expect(object.flatMap { kernel.maps[$0] }?.entries.count == 20)
        #expect(object.flatMap { kernel.maps[$0] }?.frozen == true)
    }

    @Test func aRefusedUpdateNamesTheEntry() {
        let kernel = RecordingKernel()
        kernel.refuse = { $0 == "update small" ? .argListTooLong : nil }
        let report = Executor(kernel: kernel).execute(Plan(actions: [Self.createMap("small", Self.map("small", contents: 2))]))
        #expect(report.failure?.1.operation == .bpf(.mapUpdateElem, batch: true, entry: 0))
        #expect(report.failure?.1.operation.description == "BPF_MAP_UPDATE_ELEM contents[0] (batch program)")
        #expect(kernel.tree.isEmpty && kernel.ledger.isEmpty)
    }

    @Test func theLedgerRefusingTheTemporaryNamesMakesNothing() {
        let (kernel, plan) = Self.creations()
        let before = kernel.state
        kernel.refuse = { $0.hasPrefix("record") ? .noSpace : nil }
        let report = Executor(kernel: kernel).execute(plan)
        #expect(Self.outcomes(report).first == "failed jobs/a \(Errno.noSpace.rawValue)")
        #expect(kernel.calls.allSatisfy { !$0.hasPrefix("mkdir") && !$0.hasPrefix("batch") && !$0.hasPrefix("pin") })
        #expect(kernel.state == before)
    }

    @Test func aRenameRefusedAtCommitKeepsWhatIsInPlaceAndUndoesTheRest() {
        let (kernel, plan) = Self.creations()
        // Something else appears at jobs/top after planning.
        kernel.refuse = { $0.hasPrefix("rename jobs/") && $0.hasSuffix("-> top") ? .fileExists : nil }
        let report = Executor(kernel: kernel).execute(plan)
        #expect(Self.outcomes(report) == ["done jobs/a", "done jobs/a/stats", "done jobs/a/limits",
                                           "failed jobs/top \(Errno.fileExists.rawValue)"])
        #expect(kernel.tree[TreePath(joined: "jobs/top")] == nil)
        #expect(kernel.tree[TreePath(joined: "jobs/a/limits")] != nil)
        #expect(!kernel.tree.keys.contains { $0.name.hasPrefix(Reserved.temporaryPrefix) })
        // Records for what is in place only, and no temporary record (its name was removed).
        #expect(Set(kernel.ledger.keys.map(\.description)) == ["jobs/a", "jobs/a/stats", "jobs/a/limits"])
    }

    @Test func aTemporaryThatCannotBeRemovedKeepsItsRecordForTheNextRun() {
        let (kernel, plan) = Self.creations()
        kernel.refuse = { call in
            if call == "load x" { return nil }
            if call.hasPrefix("rename jobs/") && call.hasSuffix("-> top") { return .fileExists }
            if call.hasPrefix("unlink jobs/\(Reserved.temporaryPrefix)") { return .resourceBusy }
            return nil
        }
        _ = Executor(kernel: kernel).execute(plan)
        let left = kernel.tree.keys.filter { $0.name.hasPrefix(Reserved.temporaryPrefix) }
        #expect(left.count == 1)
        #expect(left.allSatisfy { kernel.ledger[$0]?.state == .temporary })
    }

    @Test func aReplacementIsExchangedAndTheOldObjectUnpinned() {
        let kernel = RecordingKernel()
        let old = kernel.pinnedMap("counts")
        kernel.ledger[TreePath(joined: "counts")] = LedgerRecord(path: TreePath(joined: "counts"), kind: .map,
                                                                 inode: kernel.tree[TreePath(joined: "counts")]!.inode, manifest: "m")
        let info = LiveMapInfo(id: 7, type: 1, keySize: 4, valueSize: 4, maxEntries: 8, flags: 0, mapExtra: 0, name: "old")
        let spec = Self.map("counts", freeze: true)
        let action = Action(path: TreePath(joined: "counts"),
                            change: .replaceMap(spec, mode: 0o600, owner: .unmanaged, old: info, migrate: true, differences: []),
                            manifest: "m")
        kernel.maps[old]?.entries = [[1, 0, 0, 0]: [9, 9, 9, 9]]
        let report = Executor(kernel: kernel).execute(Plan(actions: [action]))
        #expect(report.failure == nil)
        #expect(report.results.first?.copied == 1)
        let now = kernel.tree[TreePath(joined: "counts")]
        #expect(now?.object != old)
        // Entries copied before the freeze.
        #expect(now?.object.flatMap { kernel.maps[$0] } == RecordingKernel.MapState(name: "counts", entries: [[1, 0, 0, 0]: [9, 9, 9, 9]], frozen: true))
        #expect(kernel.tree.count == 1)
        #expect(kernel.ledger[TreePath(joined: "counts")]?.state == .owned)
        #expect(kernel.ledger[TreePath(joined: "counts")]?.inode == now?.inode)
        #expect(kernel.ledger.count == 1)
    }

    @Test func aRefusedExchangeLeavesTheOldObjectAndARecordTheNextPlanSettles() {
        let kernel = RecordingKernel()
        let old = kernel.pinnedMap("counts")
        let inode = kernel.tree[TreePath(joined: "counts")]!.inode
        let info = LiveMapInfo(id: 7, type: 1, keySize: 4, valueSize: 4, maxEntries: 8, flags: 0, mapExtra: 0, name: "old")
        let action = Action(path: TreePath(joined: "counts"),
                            change: .replaceMap(Self.map("counts"), mode: 0o600, owner: .unmanaged, old: info, migrate: false,
                                                differences: []),
                            manifest: "m")
        kernel.refuse = { $0.hasPrefix("exchange") ? .permissionDenied : nil }
        let report = Executor(kernel: kernel).execute(Plan(actions: [action]))
        #expect(report.failed == 1)
        #expect(kernel.tree.count == 1 && kernel.tree[TreePath(joined: "counts")]?.object == old)
        let record = kernel.ledger[TreePath(joined: "counts")]
        #expect(record?.state == .replacing && record?.inode == inode)
        #expect(kernel.ledger.count == 1, "the temporary's record went with it")
    }

    @Test func aProgramWhoseObjectChangedSincePlanningIsRefusedAndItsMapsUndone() {
        let kernel = RecordingKernel()
        let image = ProgramImage(tag: 0xaa, type: 9, expectedAttachType: 0, name: "count")
        let program = ProgramSpec(object: "count.o", objectPath: "/nonexistent/count.o", program: "count",
                                  maps: [MapBinding(name: "stats", path: TreePath(joined: "p/stats"),
                                                    location: BPFTreeYAML.SourceLocation(file: "m.yaml", line: 1, column: 1))])
        kernel.tags["count"] = 0xbb
        let plan = Plan(actions: [
            Self.createDirectory("p"),
            Self.createMap("p/stats", Self.map("stats")),
            Action(path: TreePath(joined: "p/count"), change: .createProgram(ResolvedProgram(program, image: image), mode: 0o600, owner: .unmanaged), manifest: "m"),
        ])
        let report = Executor(kernel: kernel).execute(plan)
        #expect(report.failure?.1.detail?.contains("changed since it was planned") == true)
        // The program was given its map as staged: inside the staged directory.
        #expect(kernel.calls.contains { $0.hasPrefix("open p/\(Reserved.temporaryPrefix)") || $0.hasPrefix("open \(Reserved.temporaryPrefix)") })
        #expect(kernel.tree.isEmpty && kernel.ledger.isEmpty)
    }

    @Test func aRefusedRemovalStopsTheRunAfterTheAttributesAreSet() {
        let kernel = RecordingKernel()
        kernel.directory("d")
        kernel.pinnedMap("d/a")
        kernel.pinnedMap("d/b")
        let plan = Plan(actions: [
            Action(path: TreePath(joined: "d/a"), change: .remove(.map)),
            Action(path: TreePath(joined: "d"), change: .setMode(from: 0o755, to: 0o700)),
            Action(path: TreePath(joined: "d/b"), change: .remove(.map)),
        ])
        kernel.refuse = { $0 == "unlink d/a" ? .permissionDenied : nil }
        let report = Executor(kernel: kernel).execute(plan)
        // Attributes run before removals; the first removal's refusal stops the rest.
        #expect(Self.outcomes(report) == ["done d", "failed d/a \(Errno.permissionDenied.rawValue)", "notDone d/b"])
        #expect(kernel.tree[TreePath(joined: "d")]?.mode == 0o700)
        #expect(kernel.tree[TreePath(joined: "d/b")] != nil)
    }

    /// The removal phase's records go in one ledger write, for what was unlinked before any refusal.
    @Test func removalsForgetTheirRecordsInOneWriteUpToTheFirstRefusal() {
        func setUp() -> (RecordingKernel, Plan) {
            let kernel = RecordingKernel()
            kernel.directory("d")
            var actions: [Action] = []
            for name in ["d/a", "d/b", "d/c"] {
                kernel.pinnedMap(name)
                kernel.ledger[TreePath(joined: name)] = LedgerRecord(path: TreePath(joined: name), kind: .map, inode: 1, manifest: "m")
                actions.append(Action(path: TreePath(joined: name), change: .remove(.map)))
            }
            kernel.ledger[TreePath(joined: "d")] = LedgerRecord(path: TreePath(joined: "d"), kind: .directory, inode: 1, manifest: "m")
            return (kernel, Plan(actions: actions + [Action(path: TreePath(joined: "d"), change: .remove(.directory))]))
        }
        let (kernel, plan) = setUp()
        var report = Executor(kernel: kernel).execute(plan)
        #expect(Self.outcomes(report) == ["done d/a", "done d/b", "done d/c", "done d"])
        #expect(kernel.tree.isEmpty && kernel.ledger.isEmpty)
        #expect(kernel.calls.filter { $0.hasPrefix("forget") } == ["forget d/a,d/b,d/c,d"])

        let (refusing, same) = setUp()
        refusing.refuse = { $0 == "unlink d/b" ? .permissionDenied : nil }
        report = Executor(kernel: refusing).execute(same)
        #expect(Self.outcomes(report) == ["done d/a", "failed d/b \(Errno.permissionDenied.rawValue)", "notDone d/c", "notDone d"])
        #expect(refusing.calls.filter { $0.hasPrefix("forget") } == ["forget d/a"])
        #expect(Set(refusing.ledger.keys) == [TreePath(joined: "d/b"), TreePath(joined: "d/c"), TreePath(joined: "d")])

        // A refused ledger write: the entries are gone, their records stay for the next plan to settle.
        let (noLedger, again) = setUp()
        noLedger.refuse = { $0.hasPrefix("forget") ? .ioError : nil }
        report = Executor(kernel: noLedger).execute(again)
        #expect(Self.outcomes(report) == ["failed d/a \(Errno.ioError.rawValue)", "notDone d/b", "notDone d/c", "notDone d"])
        #expect(noLedger.tree.isEmpty && noLedger.ledger.count == 4)
    }

    @Test func aLinkBatchTheKernelRefusesUndoesTheProgramItsLinksUse() {
        let kernel = RecordingKernel()
        let program = ProgramSpec(object: "count.o", objectPath: "/nonexistent/count.o", program: "count")
        let link = ResolvedLink(LinkSpec(program: TreePath(joined: "count"), target: .cgroup(CgroupLink(attach: AttachType(name: "cgroup_inet_ingress")!, cgroup: "/job"))), .cgroup(id: 42))
        let plan = Plan(actions: [
            Action(path: TreePath(joined: "count"), change: .createProgram(ResolvedProgram(program), mode: 0o600, owner: .unmanaged), manifest: "m"),
            Action(path: TreePath(joined: "ingress"), change: .createLink(link, mode: 0o600, owner: .unmanaged), manifest: "m"),
        ])
        kernel.refuse = { $0.hasPrefix("batch links") ? .badFileDescriptor : nil }
        let report = Executor(kernel: kernel).execute(plan)
        #expect(Self.outcomes(report) == ["notDone count", "failed ingress \(Errno.badFileDescriptor.rawValue)"])
        #expect(kernel.calls.contains("cgroup ingress /job"))
        #expect(kernel.tree.isEmpty && kernel.ledger.isEmpty)
    }

    /// An XDP link goes to the batch as its interface's index, attach type BPF_XDP and its mode's flags;
    /// links of one program open its pin once.
    @Test func xdpLinksCarryTheirInterfaceAndModeAndShareTheirProgramsDescriptor() {
        let kernel = RecordingKernel()
        let program = ProgramSpec(object: "count.o", objectPath: "/nonexistent/count.o", program: "count")
        let generic = ResolvedLink(LinkSpec(program: TreePath(joined: "count"), target: .netDevice(NetDeviceLink(interface: "veth0", hook: .xdp(.generic)))), .interface(index: 7))
        let native = ResolvedLink(LinkSpec(program: TreePath(joined: "count"), target: .netDevice(NetDeviceLink(interface: "veth1", hook: .xdp(nil)))), .interface(index: 8))
        let plan = Plan(actions: [
            Action(path: TreePath(joined: "count"), change: .createProgram(ResolvedProgram(program), mode: 0o600, owner: .unmanaged), manifest: "m"),
            Action(path: TreePath(joined: "a"), change: .createLink(generic, mode: 0o600, owner: .unmanaged), manifest: "m"),
            Action(path: TreePath(joined: "b"), change: .createLink(native, mode: 0o600, owner: .unmanaged), manifest: "m"),
        ])
        let report = Executor(kernel: kernel).execute(plan)
        #expect(Self.outcomes(report) == ["done count", "done a", "done b"], "\(kernel.calls)")
        let links = kernel.calls.filter { $0.hasPrefix("link attach") }
        #expect(links == ["link attach 37 cgroup false interface 7 flags 2 info 0",
                          "link attach 37 cgroup false interface 8 flags 0 info 0"])
        #expect(kernel.calls.filter { $0.hasPrefix("open ") }.count == 1, "\(kernel.calls)")
        #expect(!kernel.calls.contains { $0.hasPrefix("cgroup ") })
    }

    /// A tcx link placed after a link of the same pass is made in a later batch run than it, with that
    /// link's id and BPF_F_AFTER | BPF_F_ID, whatever order the plan lists them in.
    @Test func aTCXLinkAfterAnotherOfThePassIsMadeOnceThatOneExists() {
        let kernel = RecordingKernel()
        let program = ProgramSpec(object: "f.o", objectPath: "/nonexistent/f.o", program: "count")
        let second = ResolvedLink(LinkSpec(program: TreePath(joined: "count"), target: .netDevice(NetDeviceLink(interface: "veth0", hook: .tcx(.tcxIngress, .after(TreePath(joined: "first")))))), .interface(index: 7))
        let first = ResolvedLink(LinkSpec(program: TreePath(joined: "count"), target: .netDevice(NetDeviceLink(interface: "veth0", hook: .tcx(.tcxIngress, nil)))), .interface(index: 7))
        let plan = Plan(actions: [
            Action(path: TreePath(joined: "count"), change: .createProgram(ResolvedProgram(program), mode: 0o600, owner: .unmanaged), manifest: "m"),
            Action(path: TreePath(joined: "second"), change: .createLink(second, mode: 0o600, owner: .unmanaged), manifest: "m"),
            Action(path: TreePath(joined: "first"), change: .createLink(first, mode: 0o600, owner: .unmanaged), manifest: "m"),
        ])
        let report = Executor(kernel: kernel).execute(plan)
        #expect(Self.outcomes(report) == ["done count", "done second", "done first"], "\(kernel.calls)")
        let batches = kernel.calls.filter { $0.hasPrefix("batch ") || $0.hasPrefix("link attach") || $0.hasPrefix("id ") }
        #expect(batches.count == 5 && batches[0] == "batch links 1" && batches[1] == "link attach 46 cgroup false interface 7 flags 0 info 0",
                "\(batches)")
        #expect(batches[2].hasPrefix("id ") && batches[3] == "batch links 1", "\(batches)")
        #expect(batches[4].hasPrefix("link attach 46 cgroup false interface 7 flags \(TCXFlags.after | TCXFlags.byID) info 0 relative "), "\(batches)")
    }

    /// A link moving to another program is updated in place after the creations, expecting the program it
    /// held; a replaced XDP link is detached before its successor is made.
    @Test func anUpdatedLinkMovesInPlaceAndAReplacedXDPLinkIsDetachedFirst() {
        let kernel = RecordingKernel()
        let program = ProgramSpec(object: "count.o", objectPath: "/nonexistent/count.o", program: "count")
        let xdp = ResolvedLink(LinkSpec(program: TreePath(joined: "count"), target: .netDevice(NetDeviceLink(interface: "veth0", hook: .xdp(.generic)))), .interface(index: 7))
        let cgroup = ResolvedLink(LinkSpec(program: TreePath(joined: "count"), target: .cgroup(CgroupLink(attach: .cgroupInetEgress, cgroup: "/job"))), .cgroup(id: 5))
        kernel.pinnedObject("ingress")
        kernel.pinnedObject("egress")
        let plan = Plan(actions: [
            Action(path: TreePath(joined: "count"), change: .createProgram(ResolvedProgram(program), mode: 0o600, owner: .unmanaged), manifest: "m"),
            Action(path: TreePath(joined: "ingress"), change: .replaceLink(xdp, mode: 0o600, owner: .unmanaged, differences: []), manifest: "m"),
            Action(path: TreePath(joined: "egress"), change: .updateLink(cgroup, from: 20, differences: []), manifest: "m"),
        ])
        let report = Executor(kernel: kernel).execute(plan)
        #expect(Self.outcomes(report) == ["done count", "done ingress", "done egress"], "\(kernel.calls)")
        let order = kernel.calls.filter { $0.hasPrefix("detach") || $0.hasPrefix("batch links") || $0.hasPrefix("update") || $0.hasPrefix("load") }
        #expect(order.first?.hasPrefix("load") == true && order.dropFirst().first == "detach ingress", "\(order)")
        #expect(order.last == "update egress count from 20", "after the program is in place: \(order)")
    }

    /// Two tcx links replaced on one hook, then a cgroup link, with `refusing` calls refused.
    private static func detachingRun(refusing: @escaping (String) -> Bool, unrestorable: [String: String] = [:])
        throws -> (RecordingKernel, ExecutionReport, before: [String: Int]) {
        let kernel = RecordingKernel()
        kernel.refuse = { refusing($0) ? .notPermitted : nil }
        kernel.pinnedObject("filter")
        var before: [String: Int] = [:]
        for (name, fingerprint) in [("la", 11), ("lb", 12)] {
            before[name] = kernel.pinnedLink(name)
            let path = TreePath(joined: name)
            let inode = try #require(kernel.tree[path]).inode
            kernel.ledger[path] = LedgerRecord(path: path, kind: .link, inode: inode, fingerprint: UInt64(fingerprint), manifest: "m")
            if let why = unrestorable[name] { kernel.unrestorable[path] = why }
        }
        let filter = TreePath(joined: "filter")
        let plan = Plan(actions: [
            Action(path: TreePath(joined: "la"), change: .replaceLink(ResolvedLink(LinkSpec(program: filter, target: .netDevice(NetDeviceLink(interface: "veth0", hook: .tcx(.tcxIngress, nil)))), .interface(index: 7)),
                                                                       mode: 0o600, owner: .unmanaged, differences: []), manifest: "m"),
            Action(path: TreePath(joined: "lb"), change: .replaceLink(ResolvedLink(LinkSpec(program: filter, target: .netDevice(NetDeviceLink(interface: "veth0", hook: .tcx(.tcxIngress, .last)))), .interface(index: 7)),
                                                                       mode: 0o600, owner: .unmanaged, differences: []), manifest: "m"),
            Action(path: TreePath(joined: "c"), change: .createLink(ResolvedLink(LinkSpec(program: filter, target: .cgroup(CgroupLink(attach: .cgroupInetEgress, cgroup: "/job"))), .cgroup(id: 5)),
                                                                     mode: 0o600, owner: .unmanaged), manifest: "m"),
        ])
        return (kernel, Executor(kernel: kernel).execute(plan), before)
    }

    /// The links on their hooks among those pinned, by path.
    private static func attachedPins(_ kernel: RecordingKernel) -> [String: Int] {
        var pins: [String: Int] = [:]
        for (path, entry) in kernel.tree { if let object = entry.object, kernel.attached.contains(object) { pins[path.description] = object } }
        return pins
    }

    /// A run that fails after links were detached for their successors attaches each old program again where
    /// it was, last detached first (a neighbour attached again before names its new id), under the old
    /// pins' names, modes and ledger records: the hooks and the tree are as they were, no temporary left.
    @Test func aFailedRunAttachesTheDetachedLinksAgain() throws {
        let (kernel, report, before) = try Self.detachingRun(refusing: { $0.hasPrefix("cgroup c") })
        #expect(Self.outcomes(report) == ["notDone la", "notDone lb", "failed c \(Errno.notPermitted.rawValue)"], "\(kernel.calls)")
        #expect(kernel.calls(starting: "detach") == ["detach la", "detach lb"])
        let reattached = kernel.calls(starting: "reattach")
        #expect(reattached.count == 2 && reattached.first == "reattach lb"
                && reattached.last?.hasPrefix("reattach la \(before["lb"] ?? 0)->") == true, "\(reattached)")
        let pins = Self.attachedPins(kernel)
        #expect(Set(pins.keys) == ["la", "lb"] && pins["la"] != before["la"] && pins["lb"] != before["lb"], "\(pins)")
        for (name, fingerprint) in [("la", UInt64(11)), ("lb", 12)] {
            let path = TreePath(joined: name)
            let record = try #require(kernel.ledger[path])
            #expect(record.state == .owned && record.inode == kernel.tree[path]?.inode && record.fingerprint == fingerprint, "\(record)")
        }
        #expect(!kernel.state.contains { $0.contains(Reserved.temporaryPrefix) }, "\(kernel.state)")
        #expect(report.failure?.1.detail?.contains("the detached links la, lb are attached again where they were") == true,
                "\(report.failure?.1.description ?? "")")
    }

    /// A detached link whose program could not be held stays detached and the failure says so; the rest are
    /// attached again. A successor already renamed into place when the commit fails stays.
    @Test func aLinkThatCannotBeAttachedAgainIsNamedAndACommittedSuccessorStays() throws {
        let (kernel, report, before) = try Self.detachingRun(refusing: { $0.hasPrefix("cgroup c") }, unrestorable: ["lb": "its program could not be held"])
        #expect(kernel.calls(starting: "reattach") == ["reattach la"], "\(kernel.calls)")
        #expect(Set(Self.attachedPins(kernel).keys) == ["la"], "\(Self.attachedPins(kernel))")
        let detail = report.failure?.1.detail ?? ""
        #expect(detail.contains("the detached link la is attached again where it was; lb stays detached: its program could not be held; run apply again"), "\(detail)")

        // The successor's exchange is refused, not the one that puts the old program back.
        var refused = false
        let (committing, failed, old) = try Self.detachingRun(refusing: { call in
            guard !refused, call.hasPrefix("exchange"), call.hasSuffix("-> lb") else { return false }
            refused = true
            return true
        })
        #expect(Self.outcomes(failed) == ["done la", "failed lb \(Errno.notPermitted.rawValue)", "notDone c"], "\(committing.calls)")
        #expect(committing.calls(starting: "reattach") == ["reattach lb"], "\(committing.calls)")
        let pins = Self.attachedPins(committing)
        #expect(Set(pins.keys) == ["la", "lb"] && pins["la"] != old["la"] && pins["lb"] != old["lb"], "\(pins)")
        #expect(!committing.state.contains { $0.contains(Reserved.temporaryPrefix) }, "\(committing.state)")
    }

    /// A tracepoint or probe link is made on a perf event bpftree opens for it; a raw tracepoint link by
    /// name, a uprobe_multi with its file and offsets. A refused perf_event_open stops the run and undoes
    /// the program made for it.
    @Test func probeLinksGoToTheBatchOnTheirEventsAndARefusedEventUndoesTheRun() {
        let program = ProgramSpec(object: "p.o", objectPath: "/nonexistent/p.o", program: "probe")
        let uprobe = ResolvedLink(LinkSpec(program: TreePath(joined: "probe"), target: .probe(.uprobe(UprobeTarget(binary: "/bin/app", symbol: "add")))), .uprobe(file: "/usr/bin/app", offset: 0x1139, identity: ""))
        let raw = ResolvedLink(LinkSpec(program: TreePath(joined: "probe"), target: .tracing(.rawTracepoint("sched_switch"))))
        let multi = ResolvedLink(LinkSpec(program: TreePath(joined: "probe"), target: .multiProbe(.uprobe(UprobeMultiTarget(binary: "/bin/app", symbols: ["h_*"], isReturn: true)))), .uprobeMulti(file: "/usr/bin/app", offsets: [0x1000, 0x1100]))
        let plan = Plan(actions: [
            Action(path: TreePath(joined: "probe"), change: .createProgram(ResolvedProgram(program), mode: 0o600, owner: .unmanaged), manifest: "m"),
            Action(path: TreePath(joined: "entered"), change: .createLink(uprobe, mode: 0o600, owner: .unmanaged), manifest: "m"),
            Action(path: TreePath(joined: "raw"), change: .createLink(raw, mode: 0o600, owner: .unmanaged), manifest: "m"),
            Action(path: TreePath(joined: "multi"), change: .createLink(multi, mode: 0o600, owner: .unmanaged), manifest: "m"),
        ])
        let kernel = RecordingKernel()
        let report = Executor(kernel: kernel).execute(plan)
        #expect(Self.outcomes(report) == ["done probe", "done entered", "done raw", "done multi"], "\(kernel.calls)")
        let links = kernel.calls.filter { $0.hasPrefix("link attach") || $0.hasPrefix("raw ") || $0.hasPrefix("perf_event_open") }
        #expect(links == ["perf_event_open entered probe as uprobe /bin/app:add (file offset 0x1139)",
                          "link attach 41 cgroup true interface 0 flags 0 info 0",
                          "raw tracepoint sched_switch",
                          "link attach 48 cgroup false interface 0 flags 0 info 0 uprobe_multi /usr/bin/app 2 flags 1 pid 0"], "\(links)")

        let refusing = RecordingKernel()
        refusing.refuse = { $0.hasPrefix("perf_event_open") ? .noSuchFileOrDirectory : nil }
        let refused = Executor(kernel: refusing).execute(plan)
        #expect(Self.outcomes(refused).contains("failed entered \(Errno.noSuchFileOrDirectory.rawValue)"), "\(Self.outcomes(refused))")
        #expect(refusing.tree.isEmpty && refusing.ledger.isEmpty, "\(refusing.state)")
    }
}
