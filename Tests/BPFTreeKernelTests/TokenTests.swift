import Foundation
import Glibc
import Testing

/// A bpffs delegated to a new user namespace by scripts/delegated-bpffs.py (the privileged parent side),
/// with `script` run by `sh` as root of that namespace: no capability in the initial one. `$B` is
/// bpftree, `$M` the mount point (in the namespace's own mount namespace), `$F` the manifests. The
/// namespace is kept until this is released, so the host can inspect the bpffs at `hostPath`.
final class DelegatedBPFFS {
    let directory: String
    let process = Process()
    private let input = Pipe()
    /// What the script printed, standard error included.
    private(set) var output = ""
    private(set) var pid: Int32 = 0

    var mountPoint: String { directory + "/bpf" }
    /// The bpffs as root on the host sees it: through the namespace's root.
    var hostPath: String { "/proc/\(pid)/root" + mountPoint }
    /// The exit status of each bpftree command the script reported with `echo "status $?"`.
    var statuses: [Int32] {
        output.split(separator: "\n").compactMap { $0.hasPrefix("status ") ? Int32($0.dropFirst(7)) : nil }
    }

    init(delegate options: [String] = [], files: ManifestDirectory, script: String) throws {
        directory = NSTemporaryDirectory() + "bpftree-delegated-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory + "/bpf", withIntermediateDirectories: true)
        chmod(directory, 0o755)
        chmod(directory + "/bpf", 0o755)
        // Root of the user namespace is uid 100000 on the host: it runs a copy when the build is out of its reach.
        var executable = bpftreeExecutable
        if !Self.reachableByOthers(executable) {
            executable = directory + "/bpftree"
            try FileManager.default.copyItem(atPath: bpftreeExecutable, toPath: executable)
        }
        let shell = "exec 2>&1; B=\(executable); M=\(directory)/bpf; F=\(files.path)\n" + script
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", repositoryRoot + "/scripts/delegated-bpffs.py"] + options
            + ["--hold", directory + "/bpf", "--", "sh", "-c", shell]
        process.environment = ProcessInfo.processInfo.environment.merging(["NO_COLOR": "1"]) { $1 }
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = input
        try process.run()
        // "ready PID", the script's output, then "exit STATUS" once it ended.
        var text = ""
        while !text.contains("\nexit ") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { throw HarnessError(description: "delegated-bpffs.py exited early: \(text)") }
            text += String(decoding: chunk, as: UTF8.self)
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let ready = lines.first(where: { $0.hasPrefix("ready ") }), let pid = Int32(ready.dropFirst(6)) else {
            throw HarnessError(description: "delegated-bpffs.py: \(text)")
        }
        self.pid = pid
        output = lines.drop { !$0.hasPrefix("ready ") }.dropFirst().prefix { !$0.hasPrefix("exit ") }.joined(separator: "\n")
    }

    /// Whether a user with no relation to the file's owner can run it: every directory above it searchable
    /// by others, the file executable by others.
    static func reachableByOthers(_ path: String) -> Bool {
        var url = URL(fileURLWithPath: path)
        var required = S_IXOTH | S_IROTH
        while url.path != "/" {
            var st = stat()
            guard stat(url.path, &st) == 0, st.st_mode & required == required else { return false }
            required = S_IXOTH
            url.deleteLastPathComponent()
        }
        return true
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// `path type mode uid` of every entry below `relative`, bpftree's own and the kernel's preloaded
    /// iterators (maps.debug, progs.debug) left out.
    func shape(_ relative: String = "") throws -> [String] {
        try listing(relative.isEmpty ? hostPath : hostPath + "/" + relative, format: "%P %y %m %U")
    }

    /// Every entry, bpftree's own included (the ledger, the stamp).
    func everything() throws -> [String] { try listing(hostPath, format: "%P", hiding: []) }
}

/// The uid that root of the helper's user namespace is on the host.
private let namespaceRoot = "100000"

private let tenantManifest = """
    apiVersion: bpftree/v1
    kind: Tree
    metadata: {name: tenant}
    spec:
      root: app
      mode: "0750"
      entries:
        config:
          map: {type: array, keySize: 4, valueSize: 8, maxEntries: 16, contents: [{key: 1, value: 7}], freeze: true}
          mode: "0640"
        sessions:
          map: {type: lru_hash, keySize: 8, valueSize: 8, maxEntries: 1024}
    """

/// Unprivileged runs on a delegated bpffs with a BPF token: a real user namespace (no capability in the
/// initial one), a bpffs mounted for it with delegate_* options, results read by bpftool on the host.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct TokenTests {
    /// What a container runtime hands over: a descriptor of the bpffs, opened before the mount left this
    /// process's mount namespace. No mountinfo line describes it; the kernel makes the token all the same.
    @Test func anAnchorDescriptorWhoseMountThisProcessCannotSeeStillGetsAToken() throws {
        let files = try ManifestDirectory(["m.yaml": tenantManifest])
        let fs = try DelegatedBPFFS(files: files, script: """
            exec 3<$M
            unshare --mount sh -c "umount -l $M && echo visible \\$(grep -c ' $M ' /proc/self/mountinfo); \\
                $B apply -f $F/m.yaml --anchor-fd 3; echo status \\$?; $B diff -f $F/m.yaml --anchor-fd 3; echo status \\$?"
            """)
        #expect(fs.output.contains("visible 0"), "the mount is still in mountinfo: \(fs.output)")
        #expect(fs.statuses == [0, 0], "\(fs.output)")
        #expect(try fs.shape() == ["app d 750 \(namespaceRoot)", "app/config f 640 \(namespaceRoot)",
                                   "app/sessions f 600 \(namespaceRoot)"])
    }

    @Test func applyWithATokenBuildsTheTreeBelowTheBPFFSRootAndConverges() throws {
        let files = try ManifestDirectory(["m.yaml": tenantManifest])
        // The anchor is a directory below the bpffs root: the token is made from the root, found with "..".
        let fs = try DelegatedBPFFS(files: files, script: """
            mkdir $M/tenant
            $B apply -f $F/m.yaml --anchor $M/tenant; echo "status $?"
            $B diff -f $F/m.yaml --anchor $M/tenant; echo "status $?"
            rm $M/tenant/app/sessions
            $B reconcile --once --token require -f $F/m.yaml --anchor $M/tenant; echo "status $?"
            """)
        #expect(fs.statuses == [0, 0, 0], "\(fs.output)")
        #expect(fs.output.contains("+ app/sessions: created map lru_hash"), "a reconcile pass made it again: \(fs.output)")
        #expect(fs.output.contains("No changes"), "\(fs.output)")
        // Made by root of the user namespace (uid 100000 on the host), as the manifest says.
        #expect(try fs.shape("tenant") == ["app d 750 \(namespaceRoot)", "app/config f 640 \(namespaceRoot)",
                                           "app/sessions f 600 \(namespaceRoot)"])
        let config = try mapInfo(fs.hostPath + "/tenant/app/config")
        #expect(config["type"] as? String == "array" && config["max_entries"] as? Int == 16 && config["frozen"] as? Int == 1,
                "\(config)")
        let dump = try #require(try bpftool(["map", "lookup", "pinned", fs.hostPath + "/tenant/app/config", "key", "1", "0", "0", "0"])
            as? [String: Any])
        #expect(bytes(dump["value"]) == [7, 0, 0, 0, 0, 0, 0, 0], "\(dump)")
        let sessions = try mapInfo(fs.hostPath + "/tenant/app/sessions")
        #expect(sessions["type"] as? String == "lru_hash" && sessions["bytes_key"] as? Int == 8, "\(sessions)")
    }

    @Test func withoutATokenTheRunFailsWithWhatToDoAndMakesNothing() throws {
        let files = try ManifestDirectory(["m.yaml": tenantManifest])
        let fs = try DelegatedBPFFS(files: files, script: """
            $B apply --token off -f $F/m.yaml --anchor $M; echo "status $?"
            """)
        #expect(fs.statuses == [1], "\(fs.output)")
        #expect(fs.output.contains("holds no BPF token") && fs.output.contains("--token auto or require"), "\(fs.output)")
        #expect(try fs.everything().isEmpty)
    }

    @Test func aBPFFSThatDelegatesNothingGivesNoTokenAndMakesNothing() throws {
        let files = try ManifestDirectory(["m.yaml": tenantManifest])
        let fs = try DelegatedBPFFS(delegate: ["--cmds", "none", "--maps", "none", "--progs", "none", "--attachs", "none"],
                                    files: files, script: """
            $B apply --token require -f $F/m.yaml --anchor $M; echo "status $?"
            $B apply -f $F/m.yaml --anchor $M; echo "status $?"
            """)
        #expect(fs.statuses == [1, 1], "\(fs.output)")
        #expect(fs.output.contains("this bpffs delegates nothing"), "\(fs.output)")
        #expect(fs.output.contains("holds no BPF token"), "\(fs.output)")
        #expect(try fs.everything().isEmpty)
    }

    @Test func aMapTypeThatIsNotDelegatedIsRefusedBeforeAnythingIsMade() throws {
        let files = try ManifestDirectory(["m.yaml": tenantManifest])
        let fs = try DelegatedBPFFS(delegate: ["--maps", "array:hash"], files: files, script: """
            $B apply -f $F/m.yaml --anchor $M; echo "status $?"
            $B diff -f $F/m.yaml --anchor $M; echo "status $?"
            """)
        #expect(fs.statuses == [1, 1], "\(fs.output)")
        #expect(fs.output.contains("m.yaml:11:5: spec.entries.sessions.map.type: app/sessions: map type lru_hash not delegated on this bpffs (delegate_maps=array:hash)"),
                "\(fs.output)")
        #expect(fs.output.contains("nothing was changed"), "\(fs.output)")
        #expect(try fs.everything().isEmpty)
    }

    @Test func whatBPFTreeItselfNeedsIsNamedWhenNotDelegated() throws {
        let files = try ManifestDirectory(["m.yaml": tenantManifest])
        let fs = try DelegatedBPFFS(delegate: ["--cmds", "map_create:prog_load", "--progs", "syscall"], files: files, script: """
            $B apply -f $F/m.yaml --anchor $M; echo "status $?"
            """)
        #expect(fs.statuses == [1], "\(fs.output)")
        #expect(fs.output.contains("command btf_load not delegated on this bpffs (delegate_cmds=map_create:prog_load)"), "\(fs.output)")
        #expect(fs.output.contains("program type socket_filter not delegated on this bpffs (delegate_progs=syscall)"), "\(fs.output)")
        #expect(try fs.everything().isEmpty)
    }

    @Test func aBindMountOfASubdirectoryCannotGiveAToken() throws {
        let files = try ManifestDirectory(["m.yaml": tenantManifest])
        let fs = try DelegatedBPFFS(files: files, script: """
            mkdir $M/sub $M/view && mount --bind $M/sub $M/view
            $B apply --token require -f $F/m.yaml --anchor $M/view; echo "status $?"
            """)
        #expect(fs.statuses == [1], "\(fs.output)")
        #expect(fs.output.contains("not the root of its bpffs"), "\(fs.output)")
        #expect(try fs.everything() == ["sub", "view"])
    }

    @Test func programsAndCgroupLinksWithAToken() throws {
        let cgroups = try ScratchCgroup()
        let w1 = try cgroups.make("w1")
        let files = try jobStatsFiles(source: cgroups.relative)
        try run(["chmod", "-R", "a+rX", files.path])
        let fs = try DelegatedBPFFS(files: files, script: """
            $B apply -f $F/job-stats.yaml --policy $F/policy.yaml --anchor $M; echo "status $?"
            $B diff -f $F/job-stats.yaml --policy $F/policy.yaml --anchor $M; echo "status $?"
            """)
        #expect(fs.statuses == [0, 0], "\(fs.output)")
        let egress = try pinned("prog", fs.hostPath + "/jobs/A/count_egress")
        #expect(egress["type"] as? String == "cgroup_skb", "\(egress)")
        let link = try pinned("link", fs.hostPath + "/jobs/A/\(w1)/egress")
        #expect(link["cgroup_id"] as? UInt64 == w1 && link["prog_id"] as? Int == egress["id"] as? Int, "\(link)")
        try sendUDP(from: cgroups.path + "/w1", count: 3, size: 10)
        let counted = try stats(fs.hostPath + "/jobs/A/\(w1)/stats")
        #expect(counted == ["cgroup_id": w1, "packets": 3, "bytes": 3 * (20 + 8 + 10)], "\(counted)")

        // A program type that only the object tells (cgroup_skb, by its section name) and the bpffs does not
        // delegate: named when the program is loaded, before anything is made.
        let refused = try DelegatedBPFFS(delegate: ["--progs", "syscall:socket_filter:tracing"], files: files, script: """
            $B apply -f $F/job-stats.yaml --policy $F/policy.yaml --anchor $M; echo "status $?"
            """)
        #expect(refused.statuses == [1], "\(refused.output)")
        #expect(refused.output.contains("spec.entries.count_egress.program.name: cannot load program 'count_egress' from job_stats.bpf.o: program type cgroup_skb not delegated on this bpffs (delegate_progs=socket_filter:syscall:tracing)"),
                "\(refused.output)")
        #expect(try refused.everything().isEmpty)
    }
}
