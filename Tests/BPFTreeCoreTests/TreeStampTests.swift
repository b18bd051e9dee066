import BPFTreeCore
import Testing

@Suite struct TreeStampTests {
    let live = LiveTree(entries: [
        .anchor: LiveEntry(kind: .directory, mode: 0o755, inode: 1),
        TreePath(joined: "jobs"): LiveEntry(kind: .directory, mode: 0o755, inode: 2),
        TreePath(joined: "jobs/m"): LiveEntry(kind: .recordedMap(fingerprint: 7), mode: 0o600, inode: 3),
    ])

    @Test func roundTripsThroughItsEncoding() throws {
        let stamp = TreeStamp(inputs: Array(repeating: 1, count: 32), tree: TreeStamp.treeDigest(live), entries: 3,
                              roots: [.anchor, TreePath(joined: "jobs/A")],
                              notices: [PlanNotice(path: TreePath(joined: "jobs/x"), message: "left alone", category: .unmanaged)])
        let bytes = try #require(stamp.encoded(capacity: 4096))
        #expect(bytes.count == 4096)
        #expect(TreeStamp(decoding: bytes) == stamp)
        #expect(TreeStamp(decoding: [UInt8](repeating: 0, count: 4096)) == nil, "a voided stamp decodes to nothing")
        #expect(stamp.encoded(capacity: 100) == nil, "a stamp that does not fit is not kept")
    }

    @Test func theTreeDigestSeesEveryStatFieldButNotWhatWasInspected() {
        let digest = TreeStamp.treeDigest(live)
        let m = TreePath(joined: "jobs/m")
        var changed: [LiveTree] = []
        for change in [{ (e: inout LiveEntry) in e.mode = 0o644 }, { $0.uid = 1 }, { $0.gid = 1 }, { $0.inode = 4 }] {
            var copy = live
            change(&copy.entries[m]!)
            changed.append(copy)
        }
        var extra = live
        extra.entries[TreePath(joined: "jobs/n")] = LiveEntry(kind: .pin, mode: 0o600, inode: 5)
        changed.append(extra)
        for tree in changed { #expect(TreeStamp.treeDigest(tree) != digest) }
        // A stat-only walk sees `.pin` where planning saw a vouched or inspected map: the same digest.
        var statOnly = live
        statOnly.entries[m]?.kind = .pin
        #expect(TreeStamp.treeDigest(statOnly) == digest)
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
