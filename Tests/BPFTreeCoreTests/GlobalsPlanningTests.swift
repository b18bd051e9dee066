import BPFTreeCore
import BPFTreeTestSupport
import BPFTreeYAML
import Testing

/// `program.globals` (decoding, encoding against a variable's BTF description, the ledger fingerprint)
/// and load groups (programs of one object loaded, replaced and checked together), with plain values.
@Suite struct GlobalsPlanningTests {
    static let text = """
        apiVersion: bpftree/v1
        kind: Tree
        metadata: {name: ports}
        spec:
          root: net/ports
          entries:
            a: {program: {object: f.bpf.o, name: prog_a, globals: {ports: [9, 0x35], enabled: true, label: edge}}, onIncompatible: replace}
            b: {program: {object: f.bpf.o, name: prog_b, globals: {ports: [9, 0x35], enabled: true, label: edge}}, onIncompatible: replace}
            c: {program: {object: f.bpf.o, name: prog_a}, onIncompatible: replace}
        """

    static let variables = [
        GlobalVariable(name: "ports", section: ".rodata", size: 8, element: .integer(signed: false), elementSize: 2, count: 4,
                       typeName: "const volatile __u16[4]"),
        GlobalVariable(name: "enabled", section: ".rodata", size: 1, element: .bool, elementSize: 1, count: nil, typeName: "const volatile bool"),
        GlobalVariable(name: "label", section: ".rodata", size: 6, element: .integer(signed: true), elementSize: 1, count: 6,
                       typeName: "const volatile char[6]"),
        GlobalVariable(name: "delta", section: ".data", size: 4, element: .integer(signed: true), elementSize: 4, count: nil, typeName: "int"),
        GlobalVariable(name: "config", section: ".data", size: 16, element: .other, elementSize: 16, count: nil, typeName: "struct config"),
    ]

    static func spec(_ tree: DesiredTree, _ name: String) -> ProgramSpec? {
        guard case .program(let spec)? = tree[path("net/ports/\(name)")]?.kind else { return nil }
        return spec
    }

    @Test func globalsDecodeSortedAndEncodeAgainstTheirVariables() throws {
        let tree = try desired(Self.text)
        let a = try #require(Self.spec(tree, "a"))
        #expect(a.globals.map(\.name) == ["enabled", "label", "ports"])
        #expect(a.globals.first { $0.name == "ports" }?.value == .list([.integer(negative: false, magnitude: 9), .integer(negative: false, magnitude: 53)]))
        #expect(a.globals.first { $0.name == "label" }?.location.line == 7)
        let encoded = try a.encodeGlobals(Self.variables).get()
        #expect(encoded.map(\.name) == ["enabled", "label", "ports"])
        #expect(encoded.map(\.bytes) == [[1], Array("edge".utf8) + [0, 0], [9, 0, 53, 0, 0, 0, 0, 0]])
        let delta = Self.variables[3]
        #expect(try delta.encode(.integer(negative: true, magnitude: 2)).get() == [0xfe, 0xff, 0xff, 0xff])
        #expect(try delta.encode(.integer(negative: false, magnitude: 0x7fff_ffff)).get() == [0xff, 0xff, 0xff, 0x7f])
    }

    @Test(arguments: [
        (GlobalValue.integer(negative: false, magnitude: 0x8000_0000), 3, "2147483648 does not fit delta (int, 32-bit signed)"),
        (.integer(negative: true, magnitude: 0x8000_0001), 3, "-2147483649 does not fit delta (int, 32-bit)"),
        (.string("x"), 3, "delta is int: expected an integer, found \"x\""),
        (.integer(negative: false, magnitude: 1), 4, "config is struct config, which a manifest cannot set (only integers, booleans, enums and arrays of them)"),
        (.list([.string("a")]), 0, "element 0: ports is const volatile __u16[4]: expected an integer, found \"a\""),
        (.string("ab"), 0, "a string needs an array of one-byte integers; ports is const volatile __u16[4]"),
        (.string("toolong"), 2, "7 bytes do not fit label (const volatile char[6], 6 bytes)"),
        (.integer(negative: false, magnitude: 1), 1, "enabled is const volatile bool: expected true or false, found 1"),
        (.bool(true), 3, "delta is int: expected an integer, found true (true and false are for bool variables)"),
        (.string("18446744073709551616"), 3, "18446744073709551616 does not fit delta (int, 32-bit)"),
        (.string("-0x1ffffffffffffffff"), 3, "-0x1ffffffffffffffff does not fit delta (int, 32-bit)"),
    ])
    func aValueThatDoesNotFitItsVariableSaysWhy(value: GlobalValue, variable: Int, message: String) {
        guard case .failure(let error) = Self.variables[variable].encode(value) else {
            Issue.record("\(value) encoded for \(Self.variables[variable].name)")
            return
        }
        #expect(error.message == message)
    }

    @Test func anUnknownGlobalNamesTheObjectsVariables() throws {
        var spec = try #require(Self.spec(try desired(Self.text), "a"))
        spec.globals.append(GlobalAssignment(name: "prots", value: .integer(negative: false, magnitude: 1), location: SourceLocation(file: "m.yaml", line: 1, column: 1)))
        guard case .failure(let error) = spec.encodeGlobals(Self.variables) else {
            Issue.record("encoded")
            return
        }
        #expect(error.name == "prots")
        #expect(error.message == "f.bpf.o has no global variable 'prots' in .rodata, .data or .bss; it has: config, delta, enabled, label, ports; did you mean 'ports'?")
    }

    @Test(arguments: [
        ("{ports: {a: 1}}", "spec.entries.x.program.globals.ports: expected an integer, true or false, a string or a list of those, found mapping"),
        ("{ports: [[1]]}", "spec.entries.x.program.globals.ports[0]: expected an integer, true or false or a string, found sequence"),
        ("[1]", "spec.entries.x.program.globals: expected a mapping"),
    ])
    func badGlobalShapesNameTheirPlace(globals: String, message: String) {
        let text = Self.text.components(separatedBy: "    a:")[0] + "    x: {program: {object: f.bpf.o, name: p, globals: \(globals)}}\n"
        let found = diagnostics(text).map(\.description)
        #expect(found.contains { $0.contains("m.yaml:7:") && $0.contains(message) }, "\(found)")
    }

    @Test func theFingerprintIsTheTagWithoutGlobalsAndDiffersWithThem() throws {
        let tree = try desired(Self.text)
        let a = try #require(Self.spec(tree, "a")), c = try #require(Self.spec(tree, "c"))
        #expect(c.fingerprint(tag: 42) == 42)
        #expect(a.fingerprint(tag: 42) != 42 && a.fingerprint(tag: 42) != 0)
        var other = a
        other.globals[0].value = .bool(false)
        #expect(other.fingerprint(tag: 42) != a.fingerprint(tag: 42))
    }

    @Test func programsOfOneObjectGlobalsBindingsAndManifestShareALoadKey() throws {
        let tree = try desired(Self.text)
        let a = try #require(Self.spec(tree, "a")), b = try #require(Self.spec(tree, "b")), c = try #require(Self.spec(tree, "c"))
        #expect(a.loadKey == b.loadKey && a.loadKey != c.loadKey)
        let other = try desired(Self.text.replacingOccurrences(of: "{name: ports}", with: "{name: other}"))
        #expect(try #require(Self.spec(other, "a")).loadKey != a.loadKey, "another manifest loads its own copy")
    }

    // MARK: Planning

    static let imageA = ProgramImage(tag: 0xa, type: 6, expectedAttachType: 0, name: "prog_a",
                                     objectMaps: ["dropped": ObjectMap(type: 2, keySize: 4, valueSize: 8),
                                                  "f.bss": ObjectMap(type: 2, keySize: 4, valueSize: 16, internal: true)])
    static let imageB = ProgramImage(tag: 0xb, type: 3, expectedAttachType: 0, name: "prog_b", objectMaps: imageA.objectMaps)

    static func resolved(_ text: String = text) throws -> ResolvedTree {
        ResolvedTree(try desired(text)) { $0.program == "prog_a" ? imageA : imageB }
    }

    /// a and b loaded together (maps 5 and 6), c on its own (maps 7 and 8); every fingerprint as made.
    static func live(bMaps: [UInt32] = [5, 6], aTag: UInt64 = 0xa) throws -> (LiveTree, Ledger) {
        let tree = try resolved().tree
        let programs: [(String, LiveProgramInfo)] = [
            ("a", LiveProgramInfo(id: 20, type: 6, tag: aTag, name: "prog_a", mapIDs: [5, 6])),
            ("b", LiveProgramInfo(id: 21, type: 3, tag: 0xb, name: "prog_b", mapIDs: bMaps)),
            ("c", LiveProgramInfo(id: 22, type: 6, tag: 0xa, name: "prog_a", mapIDs: [7, 8])),
        ]
        var live = LiveTree()
        live.record(.anchor, LiveEntry(kind: .directory, mode: 0o755, inode: 1))
        live.record(path("net"), LiveEntry(kind: .directory, mode: 0o755, inode: 2))
        live.record(path("net/ports"), LiveEntry(kind: .directory, mode: 0o755, inode: 3))
        var records = [LedgerRecord(path: path("net"), kind: .directory, inode: 2, manifest: "ports"),
                       LedgerRecord(path: path("net/ports"), kind: .directory, inode: 3, manifest: "ports")]
        for (index, (name, info)) in programs.enumerated() {
            let inode = UInt64(100 + index)
            live.record(path("net/ports/\(name)"), LiveEntry(kind: .program(info), mode: 0o600, inode: inode))
            let spec = try #require(Self.spec(tree, name))
            records.append(LedgerRecord(path: path("net/ports/\(name)"), kind: .program, inode: inode,
                                        fingerprint: spec.fingerprint(tag: info.tag), manifest: "ports"))
        }
        return (live, Ledger(records: records))
    }

    static func plan(_ live: LiveTree, _ ledger: Ledger, _ tree: ResolvedTree) throws -> Plan {
        tree.plan(live, ledger, policies: try replacingPolicy("net/**"))
    }

    static func replaced(_ plan: Plan) -> [String] {
        plan.actions.compactMap { action in
            if case .replaceProgram = action.change { return action.path.description }
            return nil
        }
    }

    @Test func aConvergedGroupHasNothingToDo() throws {
        let (live, ledger) = try Self.live()
        let plan = try Self.plan(live, ledger, try Self.resolved())
        #expect(plan.actions.isEmpty && plan.problems.isEmpty, "\(plan.actions.map(\.path))")
    }

    @Test func changedGlobalsReloadTheWholeGroupAndNothingElse() throws {
        let (live, ledger) = try Self.live()
        let changed = try Self.resolved(Self.text.replacingOccurrences(of: "enabled: true, label: edge}}, onIncompatible: replace}\n    b:",
                                                                      with: "enabled: false, label: edge}}, onIncompatible: replace}\n    b:"))
        // a's globals differ from b's now: two loads, and only a's differs from what was loaded.
        #expect(Self.replaced(try Self.plan(live, ledger, changed)) == ["net/ports/a"])
        let both = try Self.resolved(Self.text.replacingOccurrences(of: "enabled: true", with: "enabled: false"))
        let plan = try Self.plan(live, ledger, both)
        #expect(Self.replaced(plan) == ["net/ports/a", "net/ports/b"])
        let differences = plan.actions.compactMap { action -> [FieldDifference]? in
            if case .replaceProgram(_, _, _, let differences) = action.change { return differences }
            return nil
        }
        #expect(differences.allSatisfy { $0.map(\.field) == ["globals"] }, "\(differences)")
    }

    @Test func aNewTagForOneMemberReloadsItsPartnerToo() throws {
        let (live, ledger) = try Self.live(aTag: 0xaa)
        let plan = try Self.plan(live, ledger, try Self.resolved())
        #expect(Self.replaced(plan) == ["net/ports/a", "net/ports/b"])
        guard case .replaceProgram(_, _, _, let differences)? = plan.actions.first(where: { $0.path == path("net/ports/b") })?.change else {
            Issue.record("b is not replaced")
            return
        }
        #expect(differences.map(\.field) == ["object"] && differences[0].declared == "one load with net/ports/a, which is loaded now")
    }

    @Test func membersLoadedApartAreLoadedAgainTogether() throws {
        let (live, ledger) = try Self.live(bMaps: [9, 10])
        let plan = try Self.plan(live, ledger, try Self.resolved())
        #expect(Self.replaced(plan) == ["net/ports/a", "net/ports/b"])
        guard case .replaceProgram(_, _, _, let differences)? = plan.actions.first(where: { $0.path == path("net/ports/b") })?.change else {
            Issue.record("b is not replaced")
            return
        }
        #expect(differences.map(\.field) == ["maps"] && differences[0].declared.hasPrefix("dropped, f.bss shared with net/ports/a"), "\(differences)")
    }
}
