import BPFTreeTestSupport
import Foundation
import Glibc
import Testing

/// A policy document with one scope over `jobs/**`.
func policyText(_ fields: String, name: String = "platform", paths: String = "[\"jobs/**\"]") -> String {
    """
    apiVersion: bpftree/v1
    kind: Policy
    metadata: {name: \(name)}
    spec:
      scopes:
        - paths: \(paths)
    \(fields)
    """
}

/// Every entry of the hash map pinned at `path`, as (key, value) little-endian u32 pairs, read by bpftool.
func entries(_ path: String) throws -> [UInt32: UInt32] {
    let dump = try #require(try bpftool(["map", "dump", "pinned", path]) as? [[String: Any]])
    func word(_ value: Any?) -> UInt32 { bytes(value).prefix(4).enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) } }
    return Dictionary(dump.map { (word($0["key"]), word($0["value"])) }, uniquingKeysWith: { $1 })
}

/// Ownership, prune, replace and migrate against the real kernel.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment))
struct OwnershipTests {
    static let prunePolicy = policyText("""
              prune: owned
              onIncompatible: fail
              allowOnIncompatible: [replace, migrate]
              protect: ["jobs/*/keep"]
        """)

    @Test func pruneRemovesExactlyWhatBpftreeOwnsAndNoManifestDeclares() throws {
        let fs = try ScratchBPFFS()
        let v1 = manifest("""
                stats: {map: {type: array, valueSize: 8, maxEntries: 4}}
                keep: {map: {type: array, valueSize: 8, maxEntries: 4}}
                old: {directory: {entries: {m: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 4}}}}}
                mixed: {directory: {}}
            """)
        let dir = try ManifestDirectory(["job.yaml": v1, "policy.yaml": Self.prunePolicy])
        let args = ["-f", dir.path + "/job.yaml", "--policy", dir.path + "/policy.yaml", "--anchor", fs.path]
        #expect(try bpftree(["apply"] + args).status == 0)
        // Made by hand: bpftree must never remove these.
        try pinMapWithBpftool(fs.at("jobs/A/mixed/foreign"), type: "array", key: 4, value: 4, entries: 1, name: "foreign")
        try pinMapWithBpftool(fs.at("jobs/A/handmade"), type: "array", key: 4, value: 4, entries: 1, name: "handmade")
        try String(manifest("    stats: {map: {type: array, valueSize: 8, maxEntries: 4}}")).write(
            toFile: dir.path + "/job.yaml", atomically: true, encoding: .utf8)

        let diff = try bpftree(["diff"] + args + ["-o", "json"])
        #expect(diff.status == 2, "\(diff.output)")
        let report = try json(diff.stdout)
        let actions = (report["actions"] as? [[String: Any]] ?? []).map { "\($0["kind"] ?? "") \($0["path"] ?? "")" }
        #expect(actions == ["remove jobs/A/old/m", "remove jobs/A/old"])
        let notices = (report["notices"] as? [[String: Any]] ?? []).map { "\($0["category"] ?? "") \($0["path"] ?? "")" }
        #expect(notices == ["unmanaged jobs/A/handmade", "kept jobs/A/keep", "kept jobs/A/mixed", "unmanaged jobs/A/mixed/foreign"])

        let apply = try bpftree(["apply"] + args)
        #expect(apply.status == 0, "\(apply.output)")
        #expect(try fs.shape() == ["jobs d 755", "jobs/A d 755", "jobs/A/handmade f 600", "jobs/A/keep f 600",
                                   "jobs/A/mixed d 755", "jobs/A/mixed/foreign f 600", "jobs/A/stats f 600"])
        #expect(try bpftree(["diff"] + args).status == 0)
        // --force removes the protected map too.
        #expect(try bpftree(["apply", "--force"] + args).status == 0)
        #expect(!FileManager.default.fileExists(atPath: fs.at("jobs/A/keep")))
    }

    /// A set with an owner prunes what a manifest it dropped made, from that manifest's own root; a run
    /// without one owns per manifest, so it keeps them and says so.
    @Test func aWholeManifestThatIsGoneIsPrunedFromItsOwnRootByItsOwner() throws {
        let fs = try ScratchBPFFS()
        let dir = try ManifestDirectory([
            "a.yaml": manifest("    m: {map: {type: array, valueSize: 4, maxEntries: 1}}"),
            "b.yaml": manifest("    m: {map: {type: array, valueSize: 4, maxEntries: 1}}", name: "job-b", root: "jobs/B"),
            "policy.yaml": Self.prunePolicy,
        ])
        let policy = ["--policy", dir.path + "/policy.yaml", "--anchor", fs.path]
        let both = ["shape"] + ["jobs d 755", "jobs/A d 755", "jobs/A/m f 600", "jobs/B d 755", "jobs/B/m f 600"]
        #expect(try bpftree(["apply", "-f", dir.path + "/a.yaml", "-f", dir.path + "/b.yaml"] + policy).status == 0)
        let kept = try bpftree(["apply", "-f", dir.path + "/b.yaml"] + policy)
        #expect(kept.status == 0, "\(kept.output)")
        #expect(kept.stdout.contains("jobs: 3 entries of manifest 'job-a', which this run does not include, kept"), "\(kept.output)")
        #expect(["shape"] + (try fs.shape()) == both)

        // The two manifests as one set named by its owner (their records take it on), then b alone.
        #expect(try bpftree(["apply", "--owner", "jobs", "-f", dir.path + "/a.yaml", "-f", dir.path + "/b.yaml"] + policy).status == 0)
        let apply = try bpftree(["apply", "--owner", "jobs", "-f", dir.path + "/b.yaml"] + policy)
        #expect(apply.status == 0, "\(apply.output)")
        #expect(try fs.shape() == ["jobs d 755", "jobs/B d 755", "jobs/B/m f 600"])
    }

    @Test func anEntryMadeByHandIsAdoptedOnlyWhenTheManifestSaysSo() throws {
        let fs = try ScratchBPFFS()
        try FileManager.default.createDirectory(atPath: fs.at("jobs/A"), withIntermediateDirectories: true)
        try pinMapWithBpftool(fs.at("jobs/A/m"), type: "hash", key: 4, value: 4, entries: 8, name: "m")
        chmod(fs.at("jobs/A/m"), 0o644)
        let plain = manifest("    m: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 8}, mode: \"0600\"}")
        let dir = try ManifestDirectory(["job.yaml": plain, "policy.yaml": Self.prunePolicy])
        let args = ["-f", dir.path + "/job.yaml", "--policy", dir.path + "/policy.yaml", "--anchor", fs.path]
        let left = try bpftree(["apply"] + args)
        #expect(left.status == 0)
        #expect(left.stdout.contains("jobs/A/m: exists but was not created by bpftree; left alone"))
        #expect(try fs.shape().contains("jobs/A/m f 644"))

        let adopting = plain.replacingOccurrences(of: "mode: \"0600\"}", with: "mode: \"0600\", adopt: true}")
        try adopting.write(toFile: dir.path + "/job.yaml", atomically: true, encoding: .utf8)
        #expect(try bpftree(["apply"] + args).status == 0)
        #expect(try fs.shape().contains("jobs/A/m f 600"))
        // Owned now: undeclared, it is pruned.
        try manifest("    other: {directory: {}}").write(toFile: dir.path + "/job.yaml", atomically: true, encoding: .utf8)
        #expect(try bpftree(["apply"] + args).status == 0)
        #expect(!FileManager.default.fileExists(atPath: fs.at("jobs/A/m")))
    }

    @Test func aFilledMapSurvivesAMaxEntriesChangeWithEveryEntry() throws {
        let fs = try ScratchBPFFS()
        let v1 = manifest("    stats: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 64}, onIncompatible: migrate}")
        let dir = try ManifestDirectory(["job.yaml": v1, "policy.yaml": Self.prunePolicy])
        let args = ["-f", dir.path + "/job.yaml", "--policy", dir.path + "/policy.yaml", "--anchor", fs.path]
        #expect(try bpftree(["apply"] + args).status == 0)
        // Entries written after creation, by someone else: only a copy can keep them.
        for key in 0..<50 {
            let hex = { (v: Int) in (0..<4).map { String((v >> (8 * $0)) & 0xff) } }
            let update = try run([KernelSupport.bpftool, "map", "update", "pinned", fs.at("jobs/A/stats"), "key"] + hex(key)
                                 + ["value"] + hex(key * 7))
            #expect(update.status == 0, "\(update.output)")
        }
        let before = try mapInfo(fs.at("jobs/A/stats"))["id"] as? Int
        try v1.replacingOccurrences(of: "maxEntries: 64", with: "maxEntries: 1024")
            .write(toFile: dir.path + "/job.yaml", atomically: true, encoding: .utf8)
        let diff = try bpftree(["diff"] + args)
        #expect(diff.status == 2)
        #expect(diff.stdout.contains("-/+ jobs/A/stats  migrate map id \(before ?? -1)"), "\(diff.output)")
        #expect(diff.stdout.contains("(maxEntries: declared 1024, live 64)"))
        let apply = try bpftree(["apply"] + args + ["-o", "json"])
        #expect(apply.status == 0, "\(apply.output)")
        let action = try #require((try json(apply.stdout)["actions"] as? [[String: Any]])?.first)
        #expect(action["entriesCopied"] as? Int == 50)
        let info = try mapInfo(fs.at("jobs/A/stats"))
        #expect(info["max_entries"] as? Int == 1024 && info["id"] as? Int != before)
        #expect(try entries(fs.at("jobs/A/stats")) == Dictionary(uniqueKeysWithValues: (0..<50).map { (UInt32($0), UInt32($0 * 7)) }))
        #expect(try bpftree(["diff"] + args).status == 0)

        // Shrinking below the entries it holds is refused, naming the count, and changes nothing.
        try v1.replacingOccurrences(of: "maxEntries: 64", with: "maxEntries: 10")
            .write(toFile: dir.path + "/job.yaml", atomically: true, encoding: .utf8)
        let snapshot = try fs.snapshot()
        let refused = try bpftree(["apply"] + args)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("cannot migrate: the map holds 50 entries and the new maxEntries is 10"), "\(refused.output)")
        #expect(try fs.snapshot() == snapshot)
    }

    @Test func aReaderOpeningThePinSeesNoFailureDuring1000Replacements() throws {
        let fs = try ScratchBPFFS()
        let small = manifest("    m: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 8}, onIncompatible: replace}")
        let large = small.replacingOccurrences(of: "maxEntries: 8", with: "maxEntries: 16")
        let dir = try ManifestDirectory(["small.yaml": small, "large.yaml": large, "policy.yaml": Self.prunePolicy,
                                         "reader.py": Self.reader])
        let policy = ["--policy", dir.path + "/policy.yaml", "--anchor", fs.path]
        #expect(try bpftree(["apply", "-f", dir.path + "/small.yaml"] + policy).status == 0)
        let stop = dir.path + "/stop"
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        reader.arguments = ["python3", dir.path + "/reader.py", fs.at("jobs/A/m"), stop]
        let output = Pipe()
        reader.standardOutput = output
        try reader.run()
        var failures: [String] = []
        for round in 0..<1000 {
            let result = try bpftree(["apply", "-f", dir.path + (round % 2 == 0 ? "/large.yaml" : "/small.yaml")] + policy)
            if result.status != 0 || !result.stdout.contains("1 replaced") { failures.append(result.output) }
        }
        FileManager.default.createFile(atPath: stop, contents: nil)
        let counts = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        reader.waitUntilExit()
        #expect(failures.isEmpty, "\(failures.prefix(2))")
        let numbers = counts.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(numbers.count == 2, "reader said: \(counts)")
        #expect(numbers.first ?? 0 > 1000, "opens: \(counts)")
        #expect(numbers.last == 0, "failed opens (opens, failures): \(counts)")
        #expect(try run(["find", fs.path, "-name", "bpftree_tmp_*"]).stdout.isEmpty)
    }

    /// Opens a pin with BPF_OBJ_GET in a loop until the stop file exists; prints "opens failures".
    static let reader = """
        import ctypes, os, struct, sys
        libc = ctypes.CDLL(None, use_errno=True)
        path = sys.argv[1].encode()
        buf = ctypes.create_string_buffer(path)
        attr = ctypes.create_string_buffer(struct.pack("QIIi4x", ctypes.addressof(buf), 0, 0, 0), 24)
        opens = failures = 0
        while not os.path.exists(sys.argv[2]):
            for _ in range(100):
                fd = libc.syscall(321, 7, attr, 24)
                if fd < 0:
                    failures += 1
                else:
                    os.close(fd)
                opens += 1
        print(opens, failures)
        """

    @Test func programsHoldingAReplacedMapAreNamed() throws {
        let clang = ["/opt/swift/usr/bin/clang", "/usr/bin/clang"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "clang"
        let fs = try ScratchBPFFS()
        let text = manifest("    m: {map: {type: array, valueSize: 8, maxEntries: 4}, onIncompatible: replace}")
        let program = """
            #include <linux/bpf.h>
            #include <bpf/bpf_helpers.h>
            struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, __u64); __uint(max_entries, 4); } m SEC(".maps");
            SEC("socket") int holder(void *ctx) { __u32 k = 0; __u64 *v = bpf_map_lookup_elem(&m, &k); if (v) (*v)++; return 0; }
            char LICENSE[] SEC("license") = "GPL";
            """
        let dir = try ManifestDirectory(["job.yaml": text, "policy.yaml": Self.prunePolicy, "holder.bpf.c": program])
        let args = ["-f", dir.path + "/job.yaml", "--policy", dir.path + "/policy.yaml", "--anchor", fs.path]
        #expect(try bpftree(["apply"] + args).status == 0)
        let built = try run([clang, "-O2", "-g", "-target", "bpf", "-idirafter", "/usr/include/x86_64-linux-gnu", "-c",
                             dir.path + "/holder.bpf.c", "-o", dir.path + "/holder.o"])
        try #require(built.status == 0, "\(built.output)")
        let loaded = try run([KernelSupport.bpftool, "prog", "load", dir.path + "/holder.o", fs.at("holder"),
                              "map", "name", "m", "pinned", fs.at("jobs/A/m")])
        try #require(loaded.status == 0, "\(loaded.output)")
        let id = try #require((try bpftool(["prog", "show", "pinned", fs.at("holder")]) as? [String: Any])?["id"] as? Int)
        let mapID = try #require(try mapInfo(fs.at("jobs/A/m"))["id"] as? Int)
        try text.replacingOccurrences(of: "maxEntries: 4", with: "maxEntries: 8")
            .write(toFile: dir.path + "/job.yaml", atomically: true, encoding: .utf8)
        let expected = "jobs/A/m: map id \(mapID) is used by program id \(id) (holder); it keeps using the old map after the replacement"
        let diff = try bpftree(["diff"] + args)
        #expect(diff.stdout.contains(expected), "\(diff.output)")
        let apply = try bpftree(["apply"] + args)
        #expect(apply.status == 0 && apply.stdout.contains(expected), "\(apply.output)")
    }

    @Test func everyKindOfPolicyViolationIsRefusedTogetherAndChangesNothing() throws {
        let fs = try ScratchBPFFS()
        let policy = policyText("""
                  mapTypes: [array]
                  maxEntries: 100
                  maxMapMemory: 1Ki
                  maxScopeMemory: 2Ki
                  maxMode: "0755"
                  uids: [0]
                  gids: [0]
                  ignore: ["jobs/*/scratch"]
            """)
        let text = manifest("""
                a: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 4}}
                b: {map: {type: array, valueSize: 4, maxEntries: 1000}}
                c: {map: {type: array, valueSize: 512, maxEntries: 4}}
                d: {map: {type: array, valueSize: 8, maxEntries: 100}}
                e: {map: {type: array, valueSize: 8, maxEntries: 100}}
                f: {directory: {mode: "0777", uid: 7, gid: 8}}
                g: {map: {type: array, valueSize: 8, maxEntries: 1}, onIncompatible: migrate}
                scratch: {directory: {}}
            """) + "\n---\n" + manifest("    x: {directory: {}}", name: "outside", root: "elsewhere")
        let dir = try ManifestDirectory(["job.yaml": text, "policy.yaml": policy])
        let before = try fs.snapshot()
        let result = try bpftree(["apply", "-f", dir.path + "/job.yaml", "--policy", dir.path + "/policy.yaml", "--anchor", fs.path])
        #expect(result.status == 1)
        for rule in ["mapTypes [array]", "maxEntries 100", "maxMapMemory 1 KiB", "maxScopeMemory 2 KiB", "maxMode 0755",
                     "uids 0", "gids 0", "onIncompatible fail", "ignore", "outside every policy scope"] {
            #expect(result.stderr.contains(rule), "missing \(rule): \(result.stderr)")
        }
        #expect(result.stderr.contains("job.yaml:7:5: spec.entries.a.map.type: jobs/A/a: map type hash is not allowed; refused by policy 'platform' scope jobs/** (\(dir.path)/policy.yaml:6:7): mapTypes [array]"),
                "\(result.stderr)")
        #expect(result.stderr.contains("12 problems found; nothing was changed."), "\(result.stderr)")
        #expect(try fs.snapshot() == before)
    }

    @Test func aForeignMapAtTheLedgerNameIsRefusedAndNothingChanges() throws {
        let fs = try ScratchBPFFS()
        try pinMapWithBpftool(fs.at("bpftree_ledger"), type: "array", key: 4, value: 4, entries: 1, name: "squatter")
        let dir = try ManifestDirectory(["job.yaml": manifest("    m: {directory: {}}")])
        let before = try run(["find", fs.path, "-mindepth", "1"]).stdout
        for command in ["diff", "apply"] {
            let result = try bpftree([command, "-f", dir.path, "--anchor", fs.path])
            #expect(result.status == 1)
            #expect(result.stderr.contains("the map pinned there is not a bpftree ledger (type 2, key 4, value 4)"), "\(result.output)")
        }
        #expect(try run(["find", fs.path, "-mindepth", "1"]).stdout == before)
    }

    @Test func aPolicyFileWithoutAPolicyIsRefusedAndNothingChanges() throws {
        let fs = try ScratchBPFFS()
        let dir = try ManifestDirectory(["job.yaml": manifest("    m: {directory: {}}"), "empty.yaml": "# nothing yet\n"])
        let result = try bpftree(["apply", "-f", dir.path + "/job.yaml", "--policy", dir.path + "/empty.yaml", "--anchor", fs.path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(dir.path)/empty.yaml:1:1: no Policy document found"), "\(result.output)")
        #expect(try fs.snapshot().isEmpty)
    }

    @Test func malformedOrConflictingPolicyFilesAreClearErrors() throws {
        let fs = try ScratchBPFFS()
        let dir = try ManifestDirectory([
            "job.yaml": manifest("    m: {directory: {}}"),
            "one.yaml": policyText("      prune: owned"),
            "two.yaml": policyText("      prune: none", name: "other"),
            "bad.yaml": policyText("      prune: sometimes\n      maxMode: [1]"),
        ])
        let conflict = try bpftree(["diff", "-f", dir.path + "/job.yaml", "--policy", dir.path + "/one.yaml",
                                    "--policy", dir.path + "/two.yaml", "--anchor", fs.path])
        #expect(conflict.status == 1)
        #expect(conflict.stderr.contains("\(dir.path)/two.yaml:6:7: spec.scopes.paths: conflicting policies: scope path 'jobs/**' is also governed by policy 'platform' scope jobs/** (\(dir.path)/one.yaml:6:7)"), "\(conflict.stderr)")
        let bad = try bpftree(["diff", "-f", dir.path + "/job.yaml", "--policy", dir.path + "/bad.yaml", "--anchor", fs.path])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("bad.yaml:7:14: spec.scopes[0].prune: 'sometimes' is not one of none, owned"), "\(bad.stderr)")
        #expect(bad.stderr.contains("bad.yaml:8:16: spec.scopes[0].maxMode: expected an octal mode"), "\(bad.stderr)")
        let swapped = try bpftree(["diff", "-f", dir.path + "/one.yaml", "--policy", dir.path + "/job.yaml", "--anchor", fs.path])
        #expect(swapped.status == 1)
        #expect(swapped.stderr.contains("Policy documents are loaded with --policy"), "\(swapped.stderr)")
        #expect(swapped.stderr.contains("Tree documents are loaded with -f/--file"), "\(swapped.stderr)")
    }
}
