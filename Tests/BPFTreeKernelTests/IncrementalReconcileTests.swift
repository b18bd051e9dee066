import BPFTreeTestSupport
import Foundation
import Glibc
import Testing

extension ReconcileService {
    /// Whether every thread of the service is stopped (SIGSTOP reaches each thread on its own time).
    var stopped: Bool {
        let tasks = "/proc/\(process.processIdentifier)/task"
        guard let threads = try? FileManager.default.contentsOfDirectory(atPath: tasks), !threads.isEmpty else { return false }
        return threads.allSatisfy { thread in
            guard let stat = try? String(contentsOfFile: "\(tasks)/\(thread)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            return stat[stat.index(close, offsetBy: 2)] == "T"
        }
    }
}

/// The service's cgroup passes (`CgroupPass`) against real cgroups: they plan only the subtrees of the
/// cgroups inotify named, and what they leave is what a full plan wants.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct IncrementalReconcileTests {
    let policy = policyText("      prune: owned", paths: "[\"jobs/**\", \"names/**\"]")

    /// Two templates on one source: by id, and by name.
    static func templates(_ source: String, extra: String = "") -> String {
        cgroupTemplate(source: source) + extra + "\n---\n"
            + cgroupTemplate(source: source, root: "names/{cgroup.name}", name: "by-name")
    }

    struct Setup {
        let fs: ScratchBPFFS
        let cgroups: ScratchCgroup
        let files: ManifestDirectory
        var arguments: [String] { ["-f", files.path + "/t.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path] }

        /// `bpftree diff` (a full plan, every pin inspected) finds nothing to do.
        func converged() throws -> Bool { try bpftree(["diff", "--verify"] + arguments).status == 0 }
        /// The cgroups below the source, by name, with their ids.
        func cgroupIDs() throws -> [String: UInt64] {
            var ids: [String: UInt64] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: cgroups.path) {
                var st = stat()
                if stat(cgroups.path + "/" + name, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { ids[name] = UInt64(st.st_ino) }
            }
            return ids
        }
        func listed(_ directory: String) -> Set<String> {
            Set((try? FileManager.default.contentsOfDirectory(atPath: fs.at(directory))) ?? [])
        }
    }

    func setup(_ count: Int) throws -> Setup {
        let cgroups = try ScratchCgroup()
        for index in 0..<count { try cgroups.make("w\(index)") }
        let files = try ManifestDirectory(["t.yaml": Self.templates(cgroups.relative), "policy.yaml": policy])
        return Setup(fs: try ScratchBPFFS(), cgroups: cgroups, files: files)
    }

    @Test func aBurstOfCgroupsWithAnEditAndASighupEndsAtTheFullPlansTree() throws {
        let setup = try setup(20)
        let service = try ReconcileService(setup.arguments + ["--interval", "60m"])
        try #require(eventually(within: 10) { service.passes.count >= 1 }, "\(service.log)")
        // 100 cgroups made and 60 of them (and 10 of the first) removed, an edit and a SIGHUP in the middle.
        for index in 0..<100 {
            try setup.cgroups.make("b\(index)")
            if index % 5 == 4 { try setup.cgroups.remove("b\(index - 2)") }
            if index % 10 == 9 { try setup.cgroups.remove("w\(index / 10)") }
            if index == 50 {
                try Self.templates(setup.cgroups.relative, extra: "\n    more: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 8}}")
                    .write(toFile: setup.files.path + "/t.yaml", atomically: true, encoding: .utf8)
                service.signal(SIGHUP)
            }
        }
        for index in stride(from: 0, to: 100, by: 3) where index % 5 != 2 { try setup.cgroups.remove("b\(index)") }
        let ids = try setup.cgroupIDs()
        #expect(eventually(within: 20) { setup.listed("jobs/A") == Set(ids.values.map(String.init)) }, "\(service.log)")
        #expect(eventually(within: 10) { setup.listed("names") == Set(ids.keys) }, "\(service.log)")
        #expect(try setup.converged(), "\(service.log)")
        for id in ids.values {
            #expect(FileManager.default.fileExists(atPath: setup.fs.at("jobs/A/\(id)/more")), "cgroup \(id)")
        }
        // Cgroup passes did some of it (events that arrive during a pass are the next pass's), each looking
        // at its subtrees only.
        let cgroupPasses = service.passes.filter { $0.contains("trigger=cgroups") && $0.contains("subtrees=") }
        #expect(!cgroupPasses.isEmpty, "\(service.log)")
        #expect(cgroupPasses.allSatisfy { line in
            line.split(separator: " ").contains { $0.hasPrefix("entries=") && Int($0.dropFirst(8)).map { $0 < 400 } == true }
        }, "\(service.log)")
        service.signal(SIGTERM)
        #expect(service.exit(within: 10) == 0, "\(service.log)")
    }

    @Test func aCgroupRemovedBeforeItsPassRunsGetsNothing() throws {
        let setup = try setup(3)
        let service = try ReconcileService(setup.arguments + ["--interval", "60m"])
        try #require(eventually(within: 10) { service.passes.count >= 1 }, "\(service.log)")
        let before = service.passes.count
        // Stopped, the service cannot act between the mkdir and the rmdir: it gets both events at once.
        service.signal(SIGSTOP)
        try #require(eventually(within: 5) { service.stopped }, "not stopped")
        let id = try setup.cgroups.make("brief")
        try setup.cgroups.remove("brief")
        service.signal(SIGCONT)
        usleep(500_000)
        #expect(!FileManager.default.fileExists(atPath: setup.fs.at("jobs/A/\(id)")))
        #expect(!FileManager.default.fileExists(atPath: setup.fs.at("names/brief")))
        #expect(service.passes.count == before, "\(service.log)")
        #expect(try setup.converged(), "\(service.log)")
        service.signal(SIGTERM)
        #expect(service.exit(within: 10) == 0, "\(service.log)")
    }

    @Test func aPinDeletedByHandIsLeftToTheNextFullPass() throws {
        let setup = try setup(3)
        let service = try ReconcileService(setup.arguments + ["--interval", "60m"])
        try #require(eventually(within: 10) { service.passes.count >= 1 }, "\(service.log)")
        let first = try setup.cgroups.id("w0")
        try #require(unlink(setup.fs.at("jobs/A/\(first)/stats")) == 0)
        // A cgroup pass plans the new cgroup's subtrees, not the rest of the tree.
        let id = try setup.cgroups.make("late")
        #expect(eventually(within: 5) { FileManager.default.fileExists(atPath: setup.fs.at("jobs/A/\(id)/stats")) }, "\(service.log)")
        #expect(eventually(within: 5) { FileManager.default.fileExists(atPath: setup.fs.at("names/late/stats")) }, "\(service.log)")
        #expect(!FileManager.default.fileExists(atPath: setup.fs.at("jobs/A/\(first)/stats")))
        #expect(try mapInfo(setup.fs.at("jobs/A/\(id)/stats"))["max_entries"] as? Int == 4)
        // The full pass (SIGHUP here, the timer otherwise) repairs it.
        service.signal(SIGHUP)
        #expect(eventually(within: 5) { FileManager.default.fileExists(atPath: setup.fs.at("jobs/A/\(first)/stats")) }, "\(service.log)")
        #expect(try setup.converged(), "\(service.log)")
        service.signal(SIGTERM)
        #expect(service.exit(within: 10) == 0, "\(service.log)")
    }

    @Test func aNewCgroupWhoseSubtreeCollidesIsLeftToAFullPassThatSaysWhy() throws {
        // Depth 2: a/x and b/x both render names/x.
        let cgroups = try ScratchCgroup()
        try cgroups.make("a")
        try cgroups.make("b")
        try cgroups.make("a/x")
        let template = cgroupTemplate(source: cgroups.relative, depth: 2, root: "names/{cgroup.name}", name: "by-name")
        let files = try ManifestDirectory(["t.yaml": template, "policy.yaml": policyText("      prune: owned", paths: "[\"names/**\"]")])
        let fs = try ScratchBPFFS()
        let service = try ReconcileService(["-f", files.path + "/t.yaml", "--policy", files.path + "/policy.yaml",
                                            "--anchor", fs.path, "--interval", "60m", "--log-level", "debug"])
        try #require(eventually(within: 10) { service.passes.count >= 1 }, "\(service.log)")
        #expect(FileManager.default.fileExists(atPath: fs.at("names/x/stats")))
        try cgroups.make("b/x")
        #expect(eventually(within: 5) { service.log.contains("overlaps another cgroup's") }, "\(service.log)")
        // The full pass renders b/x no subtree, with a notice, and converges everything else.
        #expect(eventually(within: 5) { service.log.contains("gets no subtree: 'names/x' is also declared by manifest by-name") }, "\(service.log)")
        // Once the collision is gone, a new intermediate directory is watched too: its cgroups get subtrees.
        try cgroups.remove("b/x")
        #expect(eventually(within: 5) { service.passes.last?.contains("result=converged") == true }, "\(service.log)")
        try cgroups.make("c")
        try cgroups.make("c/y")
        #expect(eventually(within: 5) { FileManager.default.fileExists(atPath: fs.at("names/y/stats")) }, "\(service.log)")
        service.signal(SIGTERM)
        #expect(service.exit(within: 10) == 0, "\(service.log)")
    }

    @Test func aRebuiltObjectIsLoadedAgainByTheNextFullPassDespiteTheReusedValidation() throws {
        let fs = try ScratchBPFFS()
        let cgroups = try ScratchCgroup()
        try cgroups.make("w1")
        let source = gateSource
        let manifest = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: gate}
            spec:
              root: jobs/gate
              entries:
                prog: {program: {object: gate.bpf.o, name: gate, type: cgroup_skb}, onIncompatible: replace}
            ---
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: gate-cgroups}
            spec:
              forEachCgroup: {path: \(cgroups.relative), depth: 1}
              root: jobs/A/{cgroup.id}
              entries:
                egress: {link: {program: jobs/gate/prog, cgroup: "{cgroup.path}", attachType: cgroup_inet_egress}, onIncompatible: replace}
            """
        let files = try ManifestDirectory(["t.yaml": manifest, "policy.yaml": policyText("      prune: owned\n      allowOnIncompatible: [replace]"),
                                           "gate.bpf.c": source("1")])
        try buildBPF([files.path + "/gate.bpf.c"], into: files.path)
        let service = try ReconcileService(["-f", files.path + "/t.yaml", "--policy", files.path + "/policy.yaml",
                                            "--anchor", fs.path, "--interval", "60m"])
        try #require(eventually(within: 10) { service.passes.count >= 1 }, "\(service.log)")
        // A second full pass with nothing changed reuses the validation: nothing to do.
        service.signal(SIGHUP)
        #expect(eventually(within: 5) { service.passes.contains { $0.contains("trigger=hangup") && $0.contains("changes=0") } },
                "\(service.log)")
        let tag = try #require(try pinned("prog", fs.at("jobs/gate/prog"))["tag"] as? String)
        // Rebuilt with other code, same path: the next full pass must see the new tag.
        try source("skb->len < 1000").write(toFile: files.path + "/gate.bpf.c", atomically: true, encoding: .utf8)
        try buildBPF([files.path + "/gate.bpf.c"], into: files.path)
        service.signal(SIGHUP)
        #expect(eventually(within: 10) { (try? pinned("prog", fs.at("jobs/gate/prog"))["tag"] as? String).flatMap { $0 } != tag },
                "\(service.log)")
        let w1 = try cgroups.id("w1")
        let link = try pinned("link", fs.at("jobs/A/\(w1)/egress"))
        #expect(link["prog_id"] as? Int == (try pinned("prog", fs.at("jobs/gate/prog"))["id"] as? Int), "\(link)")
        service.signal(SIGTERM)
        #expect(service.exit(within: 10) == 0, "\(service.log)")
    }

    @Test func aCgroupNameBpffsCannotHoldGetsANoticeNothingElseAndLaterCgroupsStillTheirSubtrees() throws {
        // systemd names its cgroups with dots (web.service); bpffs refuses '.' in names.
        let setup = try setup(2)
        let service = try ReconcileService(setup.arguments + ["--interval", "60m", "--log-level", "debug"])
        try #require(eventually(within: 10) { service.passes.count >= 1 }, "\(service.log)")
        let before = try setup.fs.shape()
        let id = try setup.cgroups.make("web.service")
        #expect(eventually(within: 5) { service.log.contains("'web.service'") && service.log.contains("gets no subtree") },
                "\(service.log)")
        // Its id-named subtree is made; the name-named one cannot be, and nothing else changes.
        #expect(eventually(within: 5) { FileManager.default.fileExists(atPath: setup.fs.at("jobs/A/\(id)/stats")) }, "\(service.log)")
        #expect(try setup.fs.shape().filter { !$0.hasPrefix("jobs/A/\(id)") } == before, "\(service.log)")
        let later = try setup.cgroups.make("w9")
        #expect(eventually(within: 5) { FileManager.default.fileExists(atPath: setup.fs.at("names/w9/stats")) }, "\(service.log)")
        #expect(FileManager.default.fileExists(atPath: setup.fs.at("jobs/A/\(later)/stats")))
        service.signal(SIGTERM)
        #expect(service.exit(within: 10) == 0, "\(service.log)")
    }
}
