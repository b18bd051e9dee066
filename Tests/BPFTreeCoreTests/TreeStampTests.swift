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

    @Test func theInputsDigestCoversSettingsNamesAndBytes() {
        let file = TreeStamp.Input(role: "manifest", file: "a.yaml", bytes: Array("x: 1".utf8))
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
