import BPFTreeCore
import BPFTreeKernel
import BPFTreeTestSupport
import Foundation
import Glibc
import Testing

/// A pass that finds the tree converged stamps it; the next pass with the same inputs decides from a walk
/// alone, and only while nothing it could plan from has changed.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct StampTests {
    /// A JSON report; `stamp` and the parts a plan consists of, for comparing two runs.
    private struct Report {
        var stamp: String?
        var plan: String
        var status: Int32

        init(_ arguments: [String]) throws {
            let result = try bpftree(arguments + ["-o", "json"])
            let report = try json(result.stdout)
            status = result.status
            stamp = report["stamp"] as? String
            let parts = ["changes", "actions", "problems", "notices", "counts"].reduce(into: [String: Any]()) { $0[$1] = report[$1] }
            plan = String(decoding: try JSONSerialization.data(withJSONObject: parts, options: [.sortedKeys]), as: UTF8.self)
        }
    }

    /// Apply stamps the tree it leaves from the observation it planned from and what the executor made,
    /// without walking it again: that stamp is exactly the one a full observation of the tree writes
    /// (`apply --verify` of the converged tree), after creations, modes and owners, replacements and prunes.
    @Test func theStampWrittenAfterApplyIsTheOneAFullObservationWrites() throws {
        let v1 = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: job-a}
            spec:
              root: jobs/A
              mode: "0755"
              entries:
                config:
                  map: {type: array, keySize: 4, valueSize: 8, maxEntries: 16, freeze: true, contents: [{key: 0, value: 100}]}
                  mode: "0640"
                stats:
                  directory:
                    mode: "0750"
                    uid: 1000
                    gid: 1001
                    entries:
                      events: {map: {type: ringbuf, maxEntries: 65536}}
                m: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 8}, onIncompatible: replace}
                old: {map: {type: array, valueSize: 8, maxEntries: 4}}
            """
        let v2 = v1.replacingOccurrences(of: "mode: \"0750\"", with: "mode: \"0700\"")
            .replacingOccurrences(of: "maxEntries: 8}, onIncompatible", with: "maxEntries: 16}, onIncompatible")
            .replacingOccurrences(of: "    old: {map: {type: array, valueSize: 8, maxEntries: 4}}", with: """
                fresh:
                  directory:
                    entries:
                      inner: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 4}, uid: 1000}
                lookup: {map: {type: lru_hash, keySize: 4, valueSize: 4, maxEntries: 8}}
            """)
        #expect(v2.contains("0700") && v2.contains("maxEntries: 16}") && v2.contains("fresh:") && !v2.contains("old:"))
        let policy = policyText("""
                  prune: owned
                  allowOnIncompatible: [replace]
            """)
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": v1, "policy.yaml": policy])
        let common = ["-f", manifests.path + "/job.yaml", "--policy", manifests.path + "/policy.yaml", "--anchor", fs.path]
        func stamp() throws -> TreeStamp? {
            let anchor = try Anchor.open(path: fs.path)
            return try StampStore.open(anchor, create: false)?.read()
        }
        for (step, text) in [("create", v1), ("change", v2)] {
            try text.write(toFile: manifests.path + "/job.yaml", atomically: true, encoding: .utf8)
            let apply = try Report(["apply"] + common)
            #expect(apply.status == 0 && apply.stamp == "written", "\(step): \(apply.plan)")
            #expect(apply.plan.contains("\"changes\":true"), "\(step): \(apply.plan)")
            let made = try #require(try stamp(), "\(step)")
            let verify = try Report(["apply", "--verify"] + common)
            #expect(verify.plan.contains("\"changes\":false"), "\(step): \(verify.plan)")
            let observed = try #require(try stamp(), "\(step)")
            #expect(made.records == observed.records, "\(step)")
            #expect(made == observed, "\(step)")
        }
    }

    /// What a stamp says, with declarations spelled out (their numbering depends on the order they were met).
    static func meaning(_ stamp: TreeStamp) -> [String] {
        stamp.records.map { record in
            let declaration = record.declaration.map { "\(stamp.declarations[$0])" } ?? "undeclared"
            return "\(record.path) \(record.type) \(record.mode) \(record.uid) \(record.gid) \(record.inode) \(record.owned) "
                + "\(record.line):\(record.column) \(declaration)"
        } + stamp.roots.map { "root \($0)" } + stamp.notices.map { "notice \($0.path) \($0.message)" }
            + stamp.cgroupSources.map { "cgroups \($0) \((stamp.cgroups[$0] ?? []).map(\.id))" }
            + ["inputs \(stamp.inputs)", "files \(stamp.filesDigest)"]
    }

    /// When only cgroups came or went, apply plans their subtrees from the stamp ("delta"): the plan is the
    /// one --verify makes, and the stamp it leaves is the one a full observation writes.
    @Test func cgroupsThatComeAndGoArePlannedFromTheStampAsInFull() throws {
        let fs = try ScratchBPFFS()
        let cgroups = try ScratchCgroup()
        for name in ["w1", "w2", "w3"] { try cgroups.make(name) }
        let fixed = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: shared}
            spec:
              root: jobs
              entries:
                shared: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 8}}
            """
        let files = try ManifestDirectory(["t.yaml": cgroupTemplate(source: cgroups.relative), "fixed.yaml": fixed,
                                           "policy.yaml": policyText("      prune: owned")])
        let common = ["-f", files.path + "/t.yaml", "-f", files.path + "/fixed.yaml", "--policy", files.path + "/policy.yaml",
                      "--anchor", fs.path]
        func stamp() throws -> TreeStamp? { try StampStore.open(try Anchor.open(path: fs.path), create: false)?.read() }
        #expect(try Report(["apply"] + common).stamp == "written")
        let steps: [(String, () throws -> Void)] = [
            ("add one", { try cgroups.make("w4") }),
            ("remove one", { try cgroups.remove("w1") }),
            ("add and remove", { try cgroups.remove("w2"); try cgroups.make("w5"); try cgroups.make("w6") }),
        ]
        for (step, change) in steps {
            try change()
            let diff = try Report(["diff"] + common)
            #expect(diff.stamp == "delta", "\(step)")
            #expect(diff.plan == (try Report(["diff", "--verify"] + common)).plan, "\(step)")
            let apply = try Report(["apply"] + common)
            #expect(apply.status == 0 && apply.stamp == "written", "\(step): \(apply.plan)")
            let delta = try #require(try stamp(), "\(step)")
            #expect(try Report(["diff"] + common).stamp == "matched", "\(step)")
            let verify = try Report(["apply", "--verify"] + common)
            #expect(verify.plan.contains("\"changes\":false"), "\(step): \(verify.plan)")
            let observed = try #require(try stamp(), "\(step)")
            #expect(Self.meaning(delta) == Self.meaning(observed), "\(step)")
        }
        let ids = try ["w3", "w4", "w5", "w6"].map { try cgroups.id($0) }
        #expect(try fs.shape() == ["jobs d 755", "jobs/A d 755"] + ids.sorted { "\($0)" < "\($1)" }.flatMap { id in
            ["jobs/A/\(id) d 755", "jobs/A/\(id)/stats f 600"] } + ["jobs/shared f 600"])
        // The last cgroups gone: their implicit parent jobs/A has nothing left to hold, which a full plan
        // decides (it prunes it).
        for name in ["w3", "w4", "w5", "w6"] { try cgroups.remove(name) }
        let diff = try Report(["diff"] + common)
        #expect(diff.stamp == nil)
        #expect(diff.plan == (try Report(["diff", "--verify"] + common)).plan)
        #expect(try Report(["apply"] + common).status == 0)
        #expect(try fs.shape() == ["jobs d 755", "jobs/shared f 600"])
    }

    @Test func aNoOpAfterApplyIsDecidedByTheStamp() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        let common = ["-f", manifests.path, "--anchor", fs.path]
        #expect(try Report(["apply"] + common).stamp == "written")
        let before = try fs.snapshot()
        for command in ["diff", "apply"] {
            let report = try Report([command] + common)
            #expect(report.stamp == "matched")
            #expect(report.status == 0)
            #expect(report.plan == (try Report(["diff", "--verify"] + common)).plan)
        }
        #expect(try fs.snapshot() == before)
        // --verify never trusts the stamp.
        #expect(try Report(["diff", "--verify"] + common).stamp == nil)
    }

    /// A stamp of more than one 64 KiB chunk (3,000 maps) is read back whole: the no-op is the stamp's, and
    /// a drift in its last chunk is repaired from it.
    @Test func aStampOfSeveralChunksIsReadWhole() throws {
        let fs = try ScratchBPFFS()
        let directories = (0..<150).map { d in
            "    d\(d):\n      directory:\n        entries:\n" + (0..<20).map { "          m\($0): {map: {type: array, keySize: 4, valueSize: 4, maxEntries: 1}}" }
                .joined(separator: "\n")
        }
        let manifests = try ManifestDirectory(["big.yaml": "apiVersion: bpftree/v1\nkind: Tree\nmetadata: {name: big}\nspec:\n  entries:\n"
            + directories.joined(separator: "\n") + "\n"])
        let common = ["-f", manifests.path, "--anchor", fs.path]
        #expect(try Report(["apply"] + common).stamp == "written")
        let stamp = try #require(try StampStore.open(try Anchor.open(path: fs.path), create: false)?.read())
        #expect(stamp.encoded.count > 64 * 1024 && stamp.records.count == 3_151, "\(stamp.encoded.count) bytes, \(stamp.records.count) records")
        #expect(try Report(["apply"] + common).stamp == "matched")
        unlink(fs.at("d149/m19"))
        let diff = try Report(["diff"] + common)
        #expect(diff.stamp == "drift" && diff.status == 2, "\(diff.plan)")
        let repair = try Report(["apply"] + common)
        #expect(repair.stamp == "written" && repair.status == 0, "\(repair.plan)")
        #expect(FileManager.default.fileExists(atPath: fs.at("d149/m19")))
        #expect(try Report(["diff"] + common).stamp == "matched")
    }

    /// Every kind of change the plan depends on is seen. Simple drift (a declared pin gone, the mode or
    /// owner of an owned entry changed) is repaired from the stamp ("drift"); anything else plans in full.
    /// Either way the plan is the one --verify makes, and apply converges and stamps again.
    @Test func anyChangeIsSeenAndPlannedAsInFull() throws {
        let drifts: [(String, String?, (ScratchBPFFS, ManifestDirectory) throws -> Void)] = [
            ("directory mode", "drift", { fs, _ in chmod(fs.at("jobs/A"), 0o700) }),
            ("pin owner", "drift", { fs, _ in chown(fs.at("jobs/A/config"), 1000, 1000) }),
            ("pin deleted", "drift", { fs, _ in unlink(fs.at("jobs/A/lookup")) }),
            ("map pinned again, same shape", nil, { fs, _ in
                unlink(fs.at("jobs/A/lookup"))
                try pinMapWithBpftool(fs.at("jobs/A/lookup"), type: "hash", key: 2, value: 4, entries: 8, name: "lookup_tbl")
            }),
            ("foreign pin added", nil, { fs, _ in
                try pinMapWithBpftool(fs.at("jobs/A/stray"), type: "array", key: 4, value: 4, entries: 1, name: "stray")
            }),
            ("manifest edited", nil, { _, manifests in
                try (jobManifest + "\n# reviewed\n").write(toFile: manifests.path + "/job.yaml", atomically: true, encoding: .utf8)
            }),
        ]
        for (name, stamp, drift) in drifts {
            let fs = try ScratchBPFFS()
            let manifests = try ManifestDirectory(["job.yaml": jobManifest])
            let common = ["-f", manifests.path, "--anchor", fs.path]
            #expect(try Report(["apply"] + common).stamp == "written", "\(name)")
            try drift(fs, manifests)
            let diff = try Report(["diff"] + common)
            #expect(diff.stamp == stamp, "\(name)")
            #expect(diff.plan == (try Report(["diff", "--verify"] + common)).plan, "\(name)")
            let apply = try Report(["apply"] + common)
            #expect(apply.status == 0, "\(name): \(apply.plan)")
            #expect(apply.stamp == "written", "\(name)")
            #expect(try Report(["diff"] + common).stamp == "matched", "\(name)")
        }
    }

    /// A map deleted behind bpftree's back is created again from the stamp with its declared shape and
    /// contents, owned by the ledger, and the next pass matches.
    @Test func aDeletedMapIsRecreatedFromTheStamp() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        let common = ["-f", manifests.path, "--anchor", fs.path]
        #expect(try Report(["apply"] + common).stamp == "written")
        let before = try mapInfo(fs.at("jobs/A/config"))
        unlink(fs.at("jobs/A/config"))
        let result = try bpftree(["apply", "-o", "json"] + common)
        let report = try json(result.stdout)
        #expect(result.status == 0, "\(result.output)")
        #expect(report["stamp"] as? String == "written")
        #expect((report["observed"] as? [String: Any])?["inspectedPins"] as? Int == 0)
        let after = try mapInfo(fs.at("jobs/A/config"))
        for field in ["type", "bytes_key", "bytes_value", "max_entries", "frozen"] {
            #expect("\(after[field] ?? "-")" == "\(before[field] ?? "-")", "\(field)")
        }
        #expect(after["id"] as? Int != before["id"] as? Int, "a new map")
        let dump = try #require(try bpftool(["map", "dump", "pinned", fs.at("jobs/A/config")]) as? [[String: Any]])
        #expect(bytes(dump.first { bytes($0["key"]) == [0, 0, 0, 0] }?["value"]) == [100, 0, 0, 0, 0, 0, 0, 0])
        #expect(try Report(["diff"] + common).stamp == "matched")
        // The ledger owns the new map: a full pass inspects nothing and plans nothing.
        let verified = try Report(["diff", "--verify"] + common)
        #expect(verified.status == 0)
        #expect(verified.plan.contains("\"notices\":[]"), "\(verified.plan)")
    }

    /// What a converged plan notices (here a pin bpftree does not own) is repeated from the stamp.
    @Test func noticesOfAConvergedTreeAreRepeated() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        let common = ["-f", manifests.path, "--anchor", fs.path]
        try FileManager.default.createDirectory(atPath: fs.at("jobs/A"), withIntermediateDirectories: true)
        try pinMapWithBpftool(fs.at("jobs/A/stray"), type: "array", key: 4, value: 4, entries: 1, name: "stray")
        #expect(try Report(["apply"] + common).stamp == "written")
        let stamped = try bpftree(["diff"] + common)
        let verified = try bpftree(["diff", "--verify"] + common)
        #expect(stamped.stdout.contains("jobs/A/stray"), "\(stamped.output)")
        #expect(stamped.stdout == verified.stdout)
        #expect(try Report(["diff"] + common).stamp == "matched")
    }

    /// A map that is not bpftree's at the stamp's name: every command refuses it, before reading or changing
    /// anything, saying what to do; once it is gone, the tree converges.
    @Test func aForeignMapAtTheStampNameIsNeverTrusted() throws {
        let fs = try ScratchBPFFS()
        try pinMapWithBpftool(fs.at("bpftree_stamp"), type: "array", key: 4, value: 4, entries: 1, name: "squatter")
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        let common = ["-f", manifests.path, "--anchor", fs.path]
        let before = try fs.snapshot()
        for command in ["diff", "apply"] {
            let result = try bpftree([command] + common)
            #expect(result.status == 1, "\(command): \(result.output)")
            #expect(result.stderr.contains("the map pinned there is not a bpftree stamp (type 2, key 4, value 4); the name is reserved for bpftree's stamp map: remove it (the next pass plans in full)"),
                    "\(result.output)")
        }
        #expect(try fs.snapshot() == before)

        // Converge without the squatter, then put it back: a no-op apply refuses it too.
        try FileManager.default.removeItem(atPath: fs.at("bpftree_stamp"))
        #expect(try Report(["apply"] + common).stamp == "written")
        try FileManager.default.removeItem(atPath: fs.at("bpftree_stamp"))
        try pinMapWithBpftool(fs.at("bpftree_stamp"), type: "array", key: 4, value: 4, entries: 1, name: "squatter")
        let noop = try bpftree(["apply"] + common)
        #expect(noop.status == 1, "\(noop.output)")
        #expect(noop.stderr.contains("not a bpftree stamp"), "\(noop.output)")
    }

    /// An apply that fails part way leaves the stamp void, whatever it was before.
    @Test func aFailedApplyLeavesNoStamp() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        let common = ["-f", manifests.path, "--anchor", fs.path]
        #expect(try Report(["apply"] + common).stamp == "written")
        let broken = try ManifestDirectory(["job.yaml": jobManifest + """

                extra:
                  map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 4, numaNode: 4000}
            """])
        #expect(try bpftree(["apply", "-f", broken.path, "--anchor", fs.path]).status == 1)
        let dump = try #require(try bpftool(["map", "dump", "pinned", fs.at("bpftree_stamp")]) as? [[String: Any]])
        #expect(bytes(dump.first?["value"]).allSatisfy { $0 == 0 }, "the stamp was voided")
        #expect(try Report(["diff"] + common).stamp == nil)
    }

    /// A tree of programs (no links) is stamped too: a pin with the same inode is the same program, its maps
    /// fixed at load. A rebuilt object is not in the tree, so the stamp keeps its identity: the next pass
    /// plans in full and finds the new tag. A program's drift is planned in full, never repaired from the
    /// stamp (the program must be loaded again from its object).
    @Test func aTreeOfProgramsIsStampedAndARebuiltObjectIsSeen() throws {
        let fs = try ScratchBPFFS()
        let source = gateSource
        let manifest = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: gate}
            spec:
              root: jobs
              entries:
                gate: {program: {object: gate.bpf.o, name: gate, type: cgroup_skb}, onIncompatible: replace}
            """
        let files = try ManifestDirectory(["t.yaml": manifest, "policy.yaml": policyText("      allowOnIncompatible: [replace]"),
                                           "gate.bpf.c": source("1")])
        try buildBPF([files.path + "/gate.bpf.c"], into: files.path)
        let common = ["-f", files.path + "/t.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        #expect(try Report(["apply"] + common).stamp == "written")
        let matched = try json(try bpftree(["diff", "-o", "json"] + common).stdout)
        #expect(matched["stamp"] as? String == "matched")
        #expect((matched["observed"] as? [String: Any])?["inspectedPins"] as? Int == 0, "\(matched)")
        let before = try pinned("prog", fs.at("jobs/gate"))

        // Rebuilt with other code: the stamp is not trusted, the full plan replaces the program.
        try source("skb->len < 1000").write(toFile: files.path + "/gate.bpf.c", atomically: true, encoding: .utf8)
        try buildBPF([files.path + "/gate.bpf.c"], into: files.path)
        let rebuilt = try Report(["diff"] + common)
        #expect(rebuilt.status == 2 && rebuilt.stamp == nil && rebuilt.plan.contains("replaceProgram"), "\(rebuilt.plan)")
        #expect(try Report(["apply"] + common).stamp == "written")
        let after = try pinned("prog", fs.at("jobs/gate"))
        #expect(after["tag"] as? String != before["tag"] as? String)
        #expect(try Report(["diff"] + common).stamp == "matched")

        // The pin deleted: planned in full (no repair from the stamp), loaded again, stamped again.
        unlink(fs.at("jobs/gate"))
        let drift = try Report(["diff"] + common)
        #expect(drift.status == 2 && drift.stamp == nil && drift.plan.contains("createProgram"), "\(drift.plan)")
        #expect(try Report(["apply"] + common).status == 0)
        #expect(try pinned("prog", fs.at("jobs/gate"))["tag"] as? String == after["tag"] as? String)
        #expect(try Report(["diff"] + common).stamp == "matched")
        #expect(try Report(["diff", "--verify"] + common).status == 0)
    }

    /// A tree with links is stamped too, once a pass has inspected every link (the apply that makes them
    /// does not: the next pass stamps). The stamp's walk inspects the links, and only them: one detached
    /// through its pin (the inode stays) is drift, planned in full and attached again.
    @Test func aTreeWithLinksIsStampedAndADetachedLinkIsSeen() throws {
        let fs = try ScratchBPFFS()
        let cgroups = try ScratchCgroup()
        let w1 = try cgroups.make("w1")
        _ = try cgroups.make("w2")
        let files = try jobStatsFiles(source: cgroups.relative)
        let common = ["-f", files.path + "/job-stats.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try Report(["apply"] + common)
        #expect(applied.status == 0 && applied.stamp == nil)
        #expect(try Report(["apply"] + common).stamp == "written")
        let matched = try json(try bpftree(["diff", "-o", "json"] + common).stdout)
        #expect(matched["stamp"] as? String == "matched")
        #expect((matched["observed"] as? [String: Any])?["inspectedPins"] as? Int == 4, "two links per cgroup: \(matched)")
        // Read by the ids the stamp recorded, not through their pins.
        let trace = NSTemporaryDirectory() + "bpftree-bpf-\(UUID().uuidString)"
        defer { unlink(trace) }
        #expect(try run(["strace", "-f", "-qq", "-e", "trace=bpf", "-o", trace, bpftreeExecutable, "diff"] + common).status == 0)
        let calls = try String(contentsOfFile: trace, encoding: .utf8)
        #expect(calls.components(separatedBy: "BPF_LINK_GET_FD_BY_ID").count - 1 == 4, "\(calls)")

        let egress = try #require(try pinned("link", fs.at("jobs/A/\(w1)/egress"))["id"] as? Int)
        #expect(try run([KernelSupport.bpftool, "link", "detach", "id", "\(egress)"]).status == 0)
        let drift = try Report(["diff"] + common)
        #expect(drift.status == 2 && drift.stamp == nil && drift.plan.contains("\(w1)\\/egress"), "\(drift.plan)")
        #expect(try Report(["apply"] + common).status == 0)
        #expect(try pinned("link", fs.at("jobs/A/\(w1)/egress"))["cgroup_id"] as? UInt64 == w1)
        #expect(try Report(["apply"] + common).stamp == "written")
        #expect(try Report(["diff"] + common).stamp == "matched")
        #expect(try Report(["diff", "--verify"] + common).status == 0)
    }

    /// Roots below an ancestor that is missing, or is not a directory, are answered by that ancestor: it
    /// is looked at once per walk (strace), and a root that only shares its name's first bytes is walked.
    @Test func rootsBelowAMissingAncestorLookAtItOnce() throws {
        let fs = try ScratchBPFFS()
        try FileManager.default.createDirectory(atPath: fs.at("a/b2/x"), withIntermediateDirectories: true)
        try pinMapWithBpftool(fs.at("a/b"), type: "array", key: 4, value: 4, entries: 1, name: "b")
        try pinMapWithBpftool(fs.at("a/b2/x/m"), type: "array", key: 4, value: 4, entries: 1, name: "m")
        let anchor = try Anchor.open(path: fs.path)
        let roots = [TreePath(["a", "b", "c"]), TreePath(["a", "b2", "x"])] + (0..<100).map { TreePath(["jobs", "A", "\($0)"]) }
        var observer = TreeObserver(anchor: anchor)
        for workers in [1, 4] {
            observer.workers = workers
            let live = try observer.observe(roots: roots.sorted())
            #expect(live.entries.keys.map(\.description).sorted() == [".", "a", "a/b", "a/b2", "a/b2/x", "a/b2/x/m"], "\(workers) workers")
        }
        // A diff of 100 manifests below jobs/A: "jobs" is looked at once per thread, not once per root.
        let trace = NSTemporaryDirectory() + "bpftree-stat-\(UUID().uuidString)"
        defer { unlink(trace) }
        let files = try ManifestDirectory(Dictionary(uniqueKeysWithValues: (0..<100).map {
            ("m\($0).yaml", manifest("    x: {directory: {}}", name: "m\($0)", root: "jobs/A/\($0)"))
        }))
        #expect(try run(["strace", "-f", "-qq", "-e", "trace=newfstatat", "-o", trace, bpftreeExecutable, "diff",
                         "-f", files.path, "--anchor", fs.path]).status == 2)
        let calls = try String(contentsOfFile: trace, encoding: .utf8)
        #expect(calls.components(separatedBy: "\"jobs\"").count - 1 <= TreeObserver.availableWorkers, "\(calls)")
    }

    /// A walk of many roots (a thousand cgroups' subtrees), or of a large directory, runs on several
    /// threads: it reads the tree one thread reads, entry for entry and in the same order, whether it inspects every pin or, as the
    /// stamp's walk does, only the stamped links by id; and a link re-pinned at a stamped path is read
    /// through its pin, not by the stamped id.
    @Test func aWalkOnSeveralThreadsReadsWhatOneThreadReads() throws {
        let fs = try ScratchBPFFS()
        let cgroups = try ScratchCgroup()
        for index in 0..<70 { _ = try cgroups.make("w\(index)") }
        let files = try jobStatsFiles(source: cgroups.relative)
        let common = ["-f", files.path + "/job-stats.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        #expect(try bpftree(["apply"] + common).status == 0)
        let ids = try FileManager.default.contentsOfDirectory(atPath: fs.at("jobs/A")).filter { $0.first?.isNumber == true }.sorted()
        #expect(ids.count == 70)
        // What bpftree did not make, in the middle of the roots: a map pinned by bpftool and a symlink.
        try pinMapWithBpftool(fs.at("jobs/A/\(ids[35])/extra"), type: "hash", key: 4, value: 8, entries: 4, name: "extra")
        #expect(symlink("../\(ids[0])", fs.at("jobs/A/\(ids[36])/elsewhere")) == 0)
        let roots = ids.map { TreePath(["jobs", "A", $0]) }
        let anchor = try Anchor.open(path: fs.path)

        let one = TreeObserver(anchor: anchor)
        var four = one
        four.workers = 4
        let sequential = try one.observe(roots: roots), threaded = try four.observe(roots: roots)
        #expect(threaded.entries == sequential.entries)
        #expect(threaded.order == sequential.order)
        #expect(threaded.inspectedPins == sequential.inspectedPins && sequential.inspectedPins == 141)
        // One root above them all (the job's fixed part): its large directory is spread instead.
        let whole = try one.observe(roots: [TreePath(["jobs", "A"])]), spread = try four.observe(roots: [TreePath(["jobs", "A"])])
        #expect(spread.entries == whole.entries && spread.order == whole.order && spread.inspectedPins == whole.inspectedPins)
        #expect(whole.entries.count == sequential.entries.count + 3, "the job's map and two programs")

        // The stamp's walk: links by id where the inode is the stamped one. The first cgroup's egress link
        // is pinned again by bpftool (a new inode, the same link): read through its pin.
        var stamped: [TreePath: TreeObserver.StampedLink] = [:]
        for (path, entry) in sequential.entries {
            if case .link(let info) = entry.kind { stamped[path] = .init(inode: entry.inode, id: info.id) }
        }
        #expect(stamped.count == 140)
        let repinned = fs.at("jobs/A/\(ids[0])/egress")
        #expect(try run([KernelSupport.bpftool, "link", "pin", "pinned", repinned, repinned + "2"]).status == 0)
        #expect(rename(repinned + "2", repinned) == 0)
        for observer in [one, four] {
            var walk = observer
            (walk.inspectsPins, walk.alsoInspects) = (false, stamped)
            let live = try walk.observe(roots: roots)
            #expect(live.inspectedPins == 140)
            for (path, link) in stamped {
                guard case .link(let info)? = live[path]?.kind else {
                    Issue.record("\(path) not read as a link: \(String(describing: live[path]))")
                    continue
                }
                #expect(info == sequential[path].flatMap { if case .link(let info) = $0.kind { info } else { nil } })
                #expect((live[path]?.inode == link.inode) == (path != TreePath(["jobs", "A", ids[0], "egress"])))
            }
            #expect(live[TreePath(["jobs", "A", ids[35], "extra"])]?.kind == .pin)
            #expect(live[TreePath(["jobs", "A", ids[36], "elsewhere"])]?.kind == .symlink)
        }
    }
}
