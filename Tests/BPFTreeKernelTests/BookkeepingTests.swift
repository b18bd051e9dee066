import BPFTreeTestSupport
import Foundation
import Glibc
import Testing

/// bpftree's own maps at the anchor (ledger, stamp) when other users and tools have been at them: a symlink
/// to another anchor's, a pin someone else owns or may write, a directory or a program under the name,
/// forged records. Each is refused or ignored with what to do, and nothing is changed, neither here nor in
/// the other anchor.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment))
struct BookkeepingTests {
    static let text = manifest("""
            a: {map: {type: array, valueSize: 8, maxEntries: 4}}
            d: {directory: {}}
        """, root: "w")

    /// A scratch bpffs with anchors `A` and `V`, the manifest and a pruning policy.
    final class Setup {
        let fs: ScratchBPFFS
        let files: ManifestDirectory

        init() throws {
            fs = try ScratchBPFFS()
            for anchor in ["A", "V"] { try FileManager.default.createDirectory(atPath: fs.at(anchor), withIntermediateDirectories: false) }
            files = try ManifestDirectory(["m.yaml": BookkeepingTests.text, "policy.yaml": policyText("      prune: owned", paths: "[\"**\"]")])
        }

        func run(_ command: String, _ anchor: String, _ extra: [String] = []) throws -> RunResult {
            try bpftree([command] + extra + ["-f", files.path + "/m.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.at(anchor)])
        }

        /// The map's entries as bpftool dumps them (keys and values), to show that nothing was written.
        func dump(_ path: String) throws -> String {
            let result = try BPFTreeKernelTests.run([KernelSupport.bpftool, "map", "dump", "pinned", fs.at(path)])
            guard result.status == 0 else { throw HarnessError(description: "bpftool map dump \(path): \(result.output)") }
            return result.stdout
        }
    }

    @Test(arguments: ["bpftree_ledger", "bpftree_stamp"])
    func aSymlinkToAnotherAnchorsBookkeepingIsRefusedAndNeitherAnchorChanges(name: String) throws {
        let setup = try Setup()
        try #require(try setup.run("apply", "V").status == 0)
        // Records V's ledger has, and the stamp's first chunk.
        let ledger = try setup.dump("V/bpftree_ledger"), stamp = try setup.dump("V/bpftree_stamp")
        try FileManager.default.createSymbolicLink(atPath: setup.fs.at("A/\(name)"), withDestinationPath: "../V/\(name)")
        let before = try setup.fs.snapshot()
        for (command, extra) in [("diff", []), ("apply", []), ("apply", ["--verify"])] {
            let result = try setup.run(command, "A", extra)
            #expect(result.status == 1, "\(command): \(result.output)")
            #expect(result.stderr.contains("\(name): it is a symlink, and bpftree never follows one"), "\(result.output)")
        }
        #expect(try setup.fs.snapshot() == before)
        #expect(try listing(setup.fs.at("A"), format: "%P %y", hiding: []) == ["\(name) l"])
        #expect(try setup.dump("V/bpftree_ledger") == ledger)
        #expect(try setup.dump("V/bpftree_stamp") == stamp)
    }

    @Test(arguments: [("bpftree_stamp", "chown 1000"), ("bpftree_ledger", "chown 1000"),
                      ("bpftree_stamp", "chmod 0666"), ("bpftree_ledger", "chmod 0620")])
    func bookkeepingSomeoneElseCanWriteIsRefusedWithWhatToDo(name: String, change: String) throws {
        let setup = try Setup()
        try #require(try setup.run("apply", "A").status == 0)
        let words = change.split(separator: " ").map(String.init)
        try #require(try run(words + [setup.fs.at("A/\(name)")]).status == 0)
        // What someone else could have done with it: a stamp record rewritten, a ledger record dropped.
        let before = try setup.fs.snapshot(), contents = try setup.dump("A/\(name)")
        for (command, extra) in [("diff", []), ("diff", ["--verify"]), ("apply", []), ("apply", ["--verify"])] {
            let result = try setup.run(command, "A", extra)
            #expect(result.status == 1, "\(command) \(extra): \(result.output)")
            #expect(result.stderr.contains("\(name): the pin is owned by uid"), "\(result.output)")
            #expect(result.stderr.contains("so someone else may have written this one and bpftree does not use it"), "\(result.output)")
            #expect(result.stderr.contains("then remove it ("), "\(result.output)")
        }
        #expect(try setup.fs.snapshot() == before)
        #expect(try setup.dump("A/\(name)") == contents, "--verify wrote into a map bpftree does not trust")
        // Given back, it is used again.
        try #require(try run(["chown", "0", setup.fs.at("A/\(name)")]).status == 0)
        try #require(try run(["chmod", "0600", setup.fs.at("A/\(name)")]).status == 0)
        #expect(try setup.run("diff", "A").status == 0)
    }

    @Test func aDirectoryOrAProgramUnderABookkeepingNameSaysWhatItIs() throws {
        let setup = try Setup()
        try FileManager.default.createDirectory(atPath: setup.fs.at("A/bpftree_ledger"), withIntermediateDirectories: false)
        var result = try setup.run("apply", "A")
        #expect(result.status == 1)
        #expect(result.stderr.contains("bpftree_ledger: it is a directory; the name is reserved for bpftree's ledger map: rename the directory"), "\(result.output)")
        #expect(!result.output.contains("EACCES"), "\(result.output)")

        let program = """
            #include <linux/bpf.h>
            #include <bpf/bpf_helpers.h>
            SEC("socket") int keep(void *ctx) { return 0; }
            char LICENSE[] SEC("license") = "GPL";
            """
        let dir = try ManifestDirectory(["keep.bpf.c": program])
        _ = try buildBPF([dir.path + "/keep.bpf.c"], into: dir.path)
        let loaded = try run([KernelSupport.bpftool, "prog", "load", dir.path + "/keep.bpf.o", setup.fs.at("V/bpftree_stamp")])
        try #require(loaded.status == 0, "\(loaded.output)")
        result = try setup.run("apply", "V")
        #expect(result.status == 1)
        #expect(result.stderr.contains("bpftree_stamp: the pin holds a program, not a bpftree stamp; the name is reserved for bpftree's stamp map: move the pin elsewhere"), "\(result.output)")
        #expect(try listing(setup.fs.at("V"), format: "%P", hiding: []) == ["bpftree_stamp"])
    }

    @Test func aTemporaryRecordOfARealPathNeverRemovesIt() throws {
        let setup = try Setup()
        let nested = manifest("    sub: {directory: {entries: {h: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 8}}}}}", root: "tenant")
        let files = try ManifestDirectory(["m.yaml": nested, "policy.yaml": policyText("      prune: owned", paths: "[\"**\"]")])
        let args = ["-f", files.path + "/m.yaml", "--policy", files.path + "/policy.yaml", "--anchor", setup.fs.at("A")]
        try #require(try bpftree(["apply"] + args).status == 0)
        // A tenant's own pin inside, and the directory's record made `{directory, temporary}`.
        try pinMapWithBpftool(setup.fs.at("A/tenant/sub/theirs"), type: "array", key: 4, value: 4, entries: 1, name: "theirs")
        try plantLedgerRecord(setup.fs.at("A/bpftree_ledger"), key: Array("tenant/sub".utf8), kind: 1, state: 2)
        let before = try setup.fs.snapshot()

        let applied = try bpftree(["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")
        #expect(applied.stdout.contains("* tenant/sub: forget ledger record"), "\(applied.output)")
        #expect(!applied.output.contains("remove temporary"), "\(applied.output)")
        #expect(try setup.fs.snapshot() == before)
        // diff and diff --verify agree that the tree is as declared.
        for extra in [[], ["--verify"]] {
            let diff = try bpftree(["diff"] + extra + args)
            #expect(diff.status == 0, "\(extra): \(diff.output)")
        }
    }

    @Test func aLedgerKeyWithBytesAfterItsNULIsReportedAndConverges() throws {
        let setup = try Setup()
        try #require(try setup.run("apply", "A").status == 0)
        // The record of w/d, with a second path after its NUL: no write or delete of w/d reaches it.
        try plantLedgerRecord(setup.fs.at("A/bpftree_ledger"), key: Array("w/d".utf8) + [0] + Array("junk".utf8), kind: 1, state: 1)
        for _ in 0..<2 {
            let applied = try setup.run("apply", "A", ["--verify"])
            #expect(applied.status == 0, "\(applied.output)")
            #expect(!applied.output.contains("fixed"), "\(applied.output)")
            #expect(applied.stdout.contains("record 'w/d\\x00junk' ignored (bytes after the NUL that ends its path)"), "\(applied.output)")
        }
        for extra in [[], ["--verify"]] {
            let diff = try setup.run("diff", "A", extra)
            #expect(diff.status == 0, "\(extra): \(diff.output)")
        }
    }
}

/// `bpftool map update` of the ledger at `ledger` with a key of `key` (NUL-padded to 256 bytes) and a
/// value of the given kind, state, inode and manifest; `legacy`: in the layout from before owners.
func plantLedgerRecord(_ ledger: String, key: [UInt8], kind: UInt8, state: UInt8, inode: UInt64 = 0, manifest: String = "",
                       legacy: Bool = false) throws {
    let padded = (key + [UInt8](repeating: 0, count: 256 - key.count)).map { String($0) }
    // struct bt_ledger_value: inode, pending_inode, fingerprint (u64), kind, state (u32), manifest[64], owner[64].
    var value = [UInt8](repeating: 0, count: legacy ? 96 : 160)
    withUnsafeBytes(of: inode.littleEndian) { value.replaceSubrange(0..<8, with: $0) }
    value[24] = kind
    value[28] = state
    value.replaceSubrange(32..<(32 + manifest.utf8.count), with: Array(manifest.utf8))
    let planted = try run([KernelSupport.bpftool, "map", "update", "pinned", ledger, "key"] + padded + ["value"] + value.map { String($0) })
    guard planted.status == 0 else { throw HarnessError(description: "bpftool map update: \(planted.output)") }
}
