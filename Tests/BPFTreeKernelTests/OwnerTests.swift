import BPFTreeTestSupport
import Foundation
import Glibc
import Testing

/// Several manifest sets on one anchor (a runtime, per-job teams, containers), each pruning and replacing
/// only what it made; another set's entry is a conflict naming its owner; ledgers from before owners move
/// over without losing a record.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct OwnerTests {
    static let prune = policyText("      prune: owned\n      allowOnIncompatible: [replace, migrate]", paths: "[\"**\"]")

    /// Manifest `name` with root `w/<name>`: a map `m` with some contents, and `extra`.
    static func set(_ name: String, owner: String?, extra: String = "") -> String {
        manifest("    m: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 8, contents: [{key: 1, value: 7}]}}\n" + extra,
                 name: name, root: "w/\(name)")
            .replacingOccurrences(of: "metadata: {name: \(name)}", with: "metadata: {name: \(name)\(owner.map { ", owner: \($0)" } ?? "")}")
    }

    /// The owner field of every ledger record, by path, read with bpftool.
    func owners(_ fs: ScratchBPFFS) throws -> [String: String] {
        let dump = try #require(try bpftool(["map", "dump", "pinned", fs.at("bpftree_ledger")]) as? [[String: Any]])
        var owners: [String: String] = [:]
        for entry in dump {
            let key = bytes(entry["key"]), value = bytes(entry["value"])
            owners[String(decoding: key.prefix { $0 != 0 }, as: UTF8.self)] = String(decoding: value[96...].prefix { $0 != 0 }, as: UTF8.self)
        }
        return owners
    }

    @Test(arguments: [true, false])
    func twoSetsOnOneAnchorNeverPruneEachOther(named: Bool) throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["a.yaml": Self.set("a", owner: named ? "team-a" : nil),
                                           "b.yaml": Self.set("b", owner: named ? "team-b" : nil), "policy.yaml": Self.prune])
        func apply(_ file: String) throws -> RunResult {
            try bpftree(["apply", "-f", files.path + "/" + file, "--policy", files.path + "/policy.yaml", "--anchor", fs.path])
        }
        #expect(try apply("b.yaml").status == 0)
        let b = try mapInfo(fs.at("w/b/m"))["id"] as? Int
        let applied = try apply("a.yaml")
        #expect(applied.status == 0, "\(applied.output)")
        #expect(!applied.output.contains("remove"), "\(applied.output)")
        #expect(try fs.shape() == ["w d 755", "w/a d 755", "w/a/m f 600", "w/b d 755", "w/b/m f 600"])
        #expect(try mapInfo(fs.at("w/b/m"))["id"] as? Int == b, "b's map was made again")
        for file in ["a.yaml", "b.yaml"] {
            let diff = try bpftree(["diff", "-f", files.path + "/" + file, "--policy", files.path + "/policy.yaml", "--anchor", fs.path])
            #expect(diff.status == 0, "\(file): \(diff.output)")
        }
        if named {
            let recorded = try owners(fs)
            #expect(recorded["w/a/m"] == "team-a" && recorded["w/b/m"] == "team-b", "\(recorded)")
        }
    }

    @Test func anEntryAnotherSetOwnsIsAConflictNamingItsOwnerNeverTakenOver() throws {
        let fs = try ScratchBPFFS()
        let shared = "    shared: {map: {type: array, valueSize: 8, maxEntries: 4}, adopt: true}"
        let files = try ManifestDirectory([
            "a.yaml": Self.set("a", owner: "team-a").replacingOccurrences(of: "root: w/a", with: "root: w")
                .replacingOccurrences(of: "    m: {", with: "    am: {") + shared + "\n",
            "b.yaml": Self.set("b", owner: "team-b").replacingOccurrences(of: "root: w/b", with: "root: w") + shared + "\n",
            "policy.yaml": Self.prune,
        ])
        let policy = ["--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        #expect(try bpftree(["apply", "-f", files.path + "/b.yaml"] + policy).status == 0)
        let before = try fs.snapshot()
        for command in ["diff", "apply"] {
            let result = try bpftree([command, "-f", files.path + "/a.yaml"] + policy)
            #expect(result.status == 1, "\(command): \(result.output)")
            #expect(result.stderr.contains("a.yaml:8:5: spec.entries.shared: w/shared: is owner 'team-b''s map: a manifest set never takes over another's entry; declare it in one set only"),
                    "\(result.output)")
        }
        #expect(try fs.snapshot() == before)
        #expect(try owners(fs)["w/shared"] == "team-b")
    }

    @Test func aRunHasOneOwner() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["a.yaml": Self.set("a", owner: "team-a"), "b.yaml": Self.set("b", owner: "team-b"),
                                           "c.yaml": Self.set("c", owner: nil)])
        // Exit 1 for what the files say, 64 (usage) for a bad --owner.
        let cases: [([String], Int32, String)] = [
            (["-f", files.path + "/a.yaml", "-f", files.path + "/b.yaml"], 1,
             "b.yaml:3:28: metadata.owner: owner 'team-b' differs from 'team-a' (metadata.owner at \(files.path)/a.yaml:3:28); a run has one owner"),
            (["-f", files.path + "/a.yaml", "-f", files.path + "/c.yaml"], 1, "c.yaml:1:1: metadata: names no owner, while metadata.owner at"),
            (["--owner", "team-b", "-f", files.path + "/a.yaml"], 1, "a.yaml:3:28: metadata.owner: owner 'team-a' differs from 'team-b' (--owner)"),
            (["--owner", "team b", "-f", files.path + "/c.yaml"], 64, "--owner: owner 'team b' must be 1 to 63 letters, digits, '-' or '_'"),
        ]
        for (arguments, status, message) in cases {
            let result = try bpftree(["diff"] + arguments + ["--anchor", fs.path])
            #expect(result.status == status, "\(arguments): \(result.output)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.output)")
        }
        #expect(try listing(fs.path, format: "%P", hiding: []).isEmpty)
    }

    @Test func aLedgerFromBeforeOwnersIsReadAndMovedOverWithEveryRecord() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["a.yaml": Self.set("a", owner: nil), "policy.yaml": Self.prune])
        let args = ["-f", files.path + "/a.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        // The tree as an earlier bpftree left it: entries made, a ledger of 96-byte records naming them.
        try FileManager.default.createDirectory(atPath: fs.at("w/a"), withIntermediateDirectories: true)
        try pinMapWithBpftool(fs.at("w/a/m"), type: "hash", key: 4, value: 4, entries: 8, name: "m")
        try #require(try run([KernelSupport.bpftool, "map", "update", "pinned", fs.at("w/a/m"), "key", "1", "0", "0", "0",
                              "value", "7", "0", "0", "0"]).status == 0)
        let made = try run([KernelSupport.bpftool, "map", "create", fs.at("bpftree_ledger"), "type", "hash", "key", "256", "value", "96",
                            "entries", "262144", "name", "bpftree_ledger", "flags", "1"])
        try #require(made.status == 0, "\(made.output)")
        for (path, kind) in [("w", 1), ("w/a", 1), ("w/a/m", 2)] {
            var st = stat()
            try #require(stat(fs.at(path), &st) == 0)
            try plantLedgerRecord(fs.at("bpftree_ledger"), key: Array(path.utf8), kind: UInt8(kind), state: 0, inode: UInt64(st.st_ino),
                                  manifest: "a", legacy: true)
        }
        // Fingerprints are not planted: the map's record is settled by its next pass, not before.
        let read = try bpftree(["diff"] + args)
        #expect(!read.output.contains("unmanaged") && !read.output.contains("not created by bpftree"), "\(read.output)")
        let id = try mapInfo(fs.at("w/a/m"))["id"] as? Int

        let applied = try bpftree(["apply", "--owner", "team-a"] + args)
        #expect(applied.status == 0, "\(applied.output)")
        #expect(try mapInfo(fs.at("bpftree_ledger"))["bytes_value"] as? Int == 160)
        #expect(try owners(fs) == ["w": "team-a", "w/a": "team-a", "w/a/m": "team-a"], "the records moved over, taken on by the owner")
        #expect(try mapInfo(fs.at("w/a/m"))["id"] as? Int == id)
        #expect(try listing(fs.path, format: "%P", hiding: ["maps.debug", "progs.debug"]).filter { $0.hasPrefix("bpftree_") }
                == ["bpftree_ledger", "bpftree_stamp"], "no temporary name left behind")
        #expect(try bpftree(["diff", "--owner", "team-a"] + args).status == 0)

        // The records kept their inodes: the map is bpftree's to prune.
        try Self.set("a", owner: nil).replacingOccurrences(of: "    m: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 8, contents: [{key: 1, value: 7}]}}\n", with: "    other: {directory: {}}\n")
            .write(toFile: files.path + "/a.yaml", atomically: true, encoding: .utf8)
        let pruned = try bpftree(["apply", "--owner", "team-a"] + args)
        #expect(pruned.status == 0 && pruned.stdout.contains("- w/a/m: remove map"), "\(pruned.output)")
    }

    /// The issue's two services: each set reconciled on its own timer on one anchor for a minute; after the
    /// first pass of each, no pass changes anything.
    @Test func twoReconcileServicesOnOneAnchorSettleAndStaySettled() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["a.yaml": Self.set("a", owner: "team-a"), "b.yaml": Self.set("b", owner: "team-b"),
                                           "policy.yaml": Self.prune])
        let services = try ["a", "b"].map { name in
            try ReconcileService(["-f", files.path + "/\(name).yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path,
                                  "--interval", "500ms"])
        }
        #expect(eventually(within: 20) { services.allSatisfy { $0.passes.count >= 2 } }, "\(services.map(\.log))")
        let settled = services.map { $0.passes.count }
        sleep(60)
        for (service, first) in zip(services, settled) {
            let later = service.passes.dropFirst(first)
            #expect(later.count >= 20, "\(service.log)")
            #expect(later.allSatisfy { $0.contains("changes=0") }, "\(service.log)")
            service.signal(SIGTERM)
            #expect(service.exit(within: 10) == 0, "\(service.log)")
        }
        #expect(try fs.shape() == ["w d 755", "w/a d 755", "w/a/m f 600", "w/b d 755", "w/b/m f 600"])
    }
}
