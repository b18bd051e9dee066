import BPFTreeTestSupport
import Foundation
import Glibc
import Testing

/// A tree and a ledger other tools have been at: names that are not UTF-8 or not NFC, garbage records.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment))
struct HostileTreeTests {
    static let statsManifest = manifest("""
            stats:
              directory:
                entries:
                  packets: {map: {type: array, valueSize: 8, maxEntries: 4}}
        """)

    /// Pins an array map with bpftool at `directory` + the raw bytes of `name` (written as printf(1) octal).
    func pinRaw(_ directory: String, printfName: String) throws {
        let made = try run(["sh", "-c", "exec \"$0\" map create \"$1/$(printf \"$2\")\" type array key 4 value 4 entries 1 name raw",
                            KernelSupport.bpftool, directory, printfName])
        try #require(made.status == 0, "\(made.output)")
    }

    @Test func anEntryWhoseNameIsNotUTF8IsShownEscapedAndKeepsItsDirectory() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["m.yaml": Self.statsManifest, "policy.yaml": policyText("      prune: owned")])
        let args = ["--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        try #require(try bpftree(["apply", "-f", files.path + "/m.yaml"] + args).status == 0)
        try pinRaw(fs.at("jobs/A/stats"), printfName: "\\377x\\033[2J")

        let diff = try bpftree(["diff", "-f", files.path + "/m.yaml"] + args)
        #expect(diff.status == 0, "\(diff.output)")
        #expect(diff.stdout.contains("jobs/A/stats/\\xffx\\x1b[2J: unmanaged map"), "\(diff.output)")
        #expect(!diff.output.contains("\u{1b}"), "a name drives the terminal: \(diff.output)")
        let report = try bpftree(["diff", "-o", "json", "-f", files.path + "/m.yaml"] + args)
        let notices = try json(report.stdout)["notices"] as? [[String: Any]] ?? []
        #expect(notices.contains { $0["path"] as? String == "jobs/A/stats/\\xffx\\x1b[2J" }, "\(report.stdout)")

        // Undeclared: the directory bpftree made is kept for what it holds; no ENOTEMPTY, now or later.
        let empty = try ManifestDirectory(["m.yaml": manifest("    other: {directory: {}}")])
        for _ in 0..<2 {
            let pruned = try bpftree(["apply", "-f", empty.path + "/m.yaml"] + args)
            #expect(pruned.status == 0, "\(pruned.output)")
            #expect(pruned.stdout.contains("jobs/A/stats: no longer declared; kept: it holds entries bpftree does not remove"), "\(pruned.output)")
        }
        #expect(try listing(fs.at("jobs/A/stats"), format: "%y").count == 1)
    }

    @Test func namesAreComparedAsBytesNotAsUnicode() throws {
        let fs = try ScratchBPFFS()
        // An unmanaged NFD "é" (e + U+0301) must not stand for the declared NFC one (U+00E9).
        try FileManager.default.createDirectory(atPath: fs.at("jobs/A"), withIntermediateDirectories: true)
        try pinRaw(fs.at("jobs/A"), printfName: "caf\\145\\314\\201")
        let files = try ManifestDirectory(["m.yaml": manifest("""
                caf\u{e9}: {map: {type: array, valueSize: 8, maxEntries: 4}}
                cafe\u{301}x: {map: {type: array, valueSize: 8, maxEntries: 4}}
                caf\u{e9}x: {map: {type: hash, keySize: 4, valueSize: 8, maxEntries: 4}}
            """)])
        let applied = try bpftree(["apply", "-f", files.path + "/m.yaml", "--anchor", fs.path])
        #expect(applied.status == 0, "\(applied.output)")
        #expect(applied.stdout.contains("unmanaged map"), "\(applied.output)")
        // Four pins: the foreign NFD one, and the three declared, each with its own type.
        let types = try ["caf\u{e9}", "caf\u{e9}x", "cafe\u{301}x", "cafe\u{301}"].map { name in
            try mapInfo(fs.at("jobs/A/" + name))["type"] as? String ?? ""
        }
        #expect(types == ["array", "hash", "array", "array"], "\(types)")
        #expect(try bpftree(["diff", "-f", files.path + "/m.yaml", "--anchor", fs.path]).status == 0)
    }

    @Test func aGarbageLedgerRecordIsReportedAndIgnored() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["m.yaml": Self.statsManifest, "policy.yaml": policyText("      prune: owned")])
        let args = ["-f", files.path + "/m.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        try #require(try bpftree(["apply"] + args).status == 0)
        try FileManager.default.createDirectory(atPath: fs.at("victim"), withIntermediateDirectories: false)
        for key in [Array("jobs/../victim".utf8), [0xff, 0xfe], Array("jobs/A/x.y".utf8), Array("/victim".utf8),
                    Array("bpftree_ledger".utf8)] {
            try plantLedgerRecord(fs.at("bpftree_ledger"), key: key, kind: 2, state: 0, inode: 42)
        }
        try plantLedgerRecord(fs.at("bpftree_ledger"), key: Array("victim".utf8), kind: 9, state: 0, inode: 42)
        let before = try fs.snapshot()
        for command in ["diff", "apply"] {
            // --verify: the stamp the first apply left does not cover writes to the ledger by others.
            let result = try bpftree([command, "--verify"] + args)
            #expect(result.status == 0, "\(command): \(result.output)")
            for shown in ["record 'jobs/../victim' ignored ('..' is not allowed", "record '\\xff\\xfe' ignored (not UTF-8)",
                          "record 'victim' ignored (unknown kind 9)", "record 'bpftree_ledger' ignored"] {
                #expect(result.stdout.contains(shown), "\(command): \(shown) missing from \(result.output)")
            }
        }
        #expect(try fs.snapshot() == before)
    }

    @Test func aLedgerTooSmallForBpftreeIsRefusedUpFront() throws {
        let fs = try ScratchBPFFS()
        try pinMapWithBpftool(fs.at("bpftree_ledger"), type: "hash", key: 256, value: 96, entries: 16, name: "bpftree_ledger")
        let files = try ManifestDirectory(["m.yaml": Self.statsManifest])
        let result = try bpftree(["apply", "-f", files.path + "/m.yaml", "--anchor", fs.path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("bpftree_ledger: the map pinned there holds 16 entries; a bpftree ledger holds 262144"), "\(result.output)")
        #expect(try listing(fs.path, format: "%P", hiding: []) == ["bpftree_ledger"])
    }

    @Test func aConflictAboveARootNamesTheDeclarationThatNeedsIt() throws {
        let fs = try ScratchBPFFS()
        try FileManager.default.createDirectory(atPath: fs.at("jobs/A"), withIntermediateDirectories: true)
        try pinMapWithBpftool(fs.at("jobs/A/config"), type: "array", key: 4, value: 4, entries: 1, name: "config")
        let files = try ManifestDirectory(["m.yaml": manifest("    stats: {map: {type: array, valueSize: 8, maxEntries: 4}}", root: "jobs/A/config/x")])
        for command in ["diff", "apply"] {
            let result = try bpftree([command, "-f", files.path + "/m.yaml", "--anchor", fs.path])
            #expect(result.status == 1)
            // The root (spec, line 5) is the declaration that needs jobs/A/config to be a directory.
            #expect(result.stderr.contains("m.yaml:5:3: spec: jobs/A/config: is a map where a directory is declared"), "\(result.output)")
        }
    }
}
