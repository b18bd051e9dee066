import Foundation
import Glibc
import Testing

/// bpftree as root with exactly `capabilities` (setpriv cuts the bounding set, so root's exec keeps only
/// these; none inheritable or ambient), e.g. `["bpf", "perfmon"]`.
func bpftreeWith(_ capabilities: [String], _ arguments: [String]) throws -> RunResult {
    let bounding = (["-all"] + capabilities.map { "+" + $0 }).joined(separator: ",")
    return try run(["setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=\(bounding)", "--",
                    bpftreeExecutable] + arguments, environment: ["NO_COLOR": "1"])
}

/// The README's capability table, held to: each feature works with exactly the documented set and fails
/// with one capability fewer, naming it, with nothing changed.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct CapabilityTests {
    private static let maps = """
        apiVersion: bpftree/v1
        kind: Tree
        metadata: {name: maps}
        spec:
          root: jobs/A
          entries:
            config: {map: {type: array, keySize: 4, valueSize: 8, maxEntries: 16, contents: [{key: 1, value: 7}]}}
            allow: {map: {type: lpm_trie, keySize: 8, valueSize: 1, maxEntries: 16, flags: [no_prealloc]}}
        """

    /// Runs `apply` with `capabilities` minus each one in turn on a fresh bpffs: each run fails naming
    /// the one left out, and leaves the tree empty.
    private func eachOneFewer(_ capabilities: [String], _ arguments: [String],
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        for left in capabilities {
            let fs = try ScratchBPFFS()
            let result = try bpftreeWith(capabilities.filter { $0 != left }, ["apply"] + arguments + ["--anchor", fs.path])
            let name = "CAP_\(left.uppercased())"
            #expect(result.status == 1 && (result.stderr.contains("without \(name),") || result.stderr.contains("apply needs \(name)")),
                    "without \(left): \(result.output)", sourceLocation: sourceLocation)
            let shape = try fs.shape()
            #expect(shape.isEmpty, "without \(left): \(shape)", sourceLocation: sourceLocation)
        }
    }

    @Test func mapsTakeCAP_BPFAndCAP_PERFMONAndDiffTakesNone() throws {
        let files = try ManifestDirectory(["maps.yaml": Self.maps])
        let fs = try ScratchBPFFS()
        let args = ["-f", files.path, "--anchor", fs.path]
        let applied = try bpftreeWith(["bpf", "perfmon"], ["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")
        let config = try mapInfo(fs.at("jobs/A/config"))
        #expect(config["type"] as? String == "array" && config["max_entries"] as? Int == 16, "\(config)")
        let again = try bpftreeWith(["bpf", "perfmon"], ["apply"] + args)
        #expect(again.status == 0 && again.stdout.contains("No changes."), "\(again.output)")
        // Reading the tree and planning take no capability at all.
        let diff = try bpftreeWith([], ["diff", "--verify"] + args)
        #expect(diff.status == 0 && diff.stdout.contains("No changes."), "\(diff.output)")

        try eachOneFewer(["bpf", "perfmon"], ["-f", files.path])
        // The message says which entry needs it, where it is declared, and why.
        let empty = try ScratchBPFFS()
        let refused = try bpftreeWith(["bpf"], ["apply", "-f", files.path, "--anchor", empty.path])
        #expect(refused.stderr.contains("error: apply needs CAP_PERFMON, which this process does not have"), "\(refused.output)")
        #expect(refused.stderr.contains("CAP_PERFMON: jobs/A/allow (declared at \(files.path)/maps.yaml:8:5, spec.entries.allow)"),
                "\(refused.output)")
        #expect(refused.stderr.contains("Nothing was changed"), "\(refused.output)")

        // A sockmap is made only with CAP_NET_ADMIN as well.
        let sockmap = try ManifestDirectory(["s.yaml": Self.maps.replacingOccurrences(
            of: "type: array, keySize: 4, valueSize: 8, maxEntries: 16, contents: [{key: 1, value: 7}]",
            with: "type: sockmap, keySize: 4, valueSize: 4, maxEntries: 16")])
        try eachOneFewer(["bpf", "perfmon", "net_admin"], ["-f", sockmap.path])
        let withNetAdmin = try ScratchBPFFS()
        let made = try bpftreeWith(["bpf", "perfmon", "net_admin"], ["apply", "-f", sockmap.path, "--anchor", withNetAdmin.path])
        #expect(made.status == 0, "\(made.output)")
    }

    @Test func ownersTakeCAP_CHOWNOtherOwnersDirectoriesCAP_DAC_READ_SEARCHAndTheirModesCAP_FOWNER() throws {
        let manifest = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: teams}
            spec:
              root: teams
              entries:
                a:
                  directory:
                    uid: 1000
                    gid: 1000
                    mode: "0750"
                    entries:
                      stats: {map: {type: array, keySize: 4, valueSize: 8, maxEntries: 4}, uid: 1000, gid: 1000, mode: "0640"}
            """
        let files = try ManifestDirectory(["t.yaml": manifest])
        let set = ["bpf", "perfmon", "chown", "dac_read_search"]
        let fs = try ScratchBPFFS()
        let args = ["-f", files.path, "--anchor", fs.path]
        let applied = try bpftreeWith(set, ["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")
        let made = try fs.snapshot()
        #expect(made.contains { $0.hasPrefix("teams/a/stats f 640 1000 1000") }, "\(made)")
        let again = try bpftreeWith(set, ["apply"] + args)
        #expect(again.status == 0 && again.stdout.contains("No changes."), "\(again.output)")
        // That pass stamped the tree. Without CAP_SYS_ADMIN the stamp's walk cannot read the links by id
        // (BPF_LINK_GET_FD_BY_ID): it reads them through their pins, and the stamp still matches.
        let stamped = try bpftreeWith(set, ["diff", "-o", "json"] + args)
        #expect(stamped.status == 0, "\(stamped.output)")
        #expect(try json(stamped.stdout)["stamp"] as? String == "matched", "\(stamped.output)")

        try eachOneFewer(["bpf", "perfmon", "chown"], ["-f", files.path])
        // Reading a directory of another owner (mode 0750) takes CAP_DAC_READ_SEARCH.
        let blind = try bpftreeWith(["bpf", "perfmon", "chown"], ["diff", "--verify"] + args)
        #expect(blind.status == 1 && blind.stderr.contains("openat2 teams/a: Permission denied")
                && blind.stderr.contains("without CAP_DAC_READ_SEARCH"), "\(blind.output)")

        // A mode of an entry bpftree's user does not own takes CAP_FOWNER: refused before anything changes,
        // also the new map the same edit declares.
        let before = try fs.snapshot()
        try (manifest.replacingOccurrences(of: "\"0640\"", with: "\"0600\"")
             + "\n    b: {map: {type: array, keySize: 4, valueSize: 8, maxEntries: 4}}\n")
            .write(toFile: files.path + "/t.yaml", atomically: true, encoding: .utf8)
        let refused = try bpftreeWith(set, ["apply"] + args)
        #expect(refused.status == 1 && refused.stderr.contains("apply needs CAP_FOWNER, which this process does not have")
                && refused.stderr.contains("CAP_FOWNER: teams/a/stats (declared at") && refused.stderr.contains("setting mode 0600 on an entry of uid 1000"),
                "\(refused.output)")
        #expect(try fs.snapshot() == before)
        let changed = try bpftreeWith(set + ["fowner"], ["apply"] + args)
        #expect(changed.status == 0, "\(changed.output)")
        let after = try fs.snapshot()
        #expect(after.contains { $0.hasPrefix("teams/a/stats f 600 1000 1000") } && after.contains { $0.hasPrefix("teams/b f 600") }, "\(after)")
    }

    @Test func xdpLinksTakeCAP_NET_ADMIN() throws {
        let veth = try ScratchVeth()
        let example = try String(contentsOfFile: repositoryRoot + "/examples/xdp-count/xdp-count.yaml", encoding: .utf8)
        let files = try ManifestDirectory(["xdp.yaml": example.replacingOccurrences(of: "interface: veth0}", with: "interface: \(veth.host)}"),
                                           "policy.yaml": try String(contentsOfFile: repositoryRoot + "/policies/network.yaml", encoding: .utf8)])
        try buildBPF([repositoryRoot + "/bpf/xdp_count.bpf.c"], into: files.path)
        let set = ["bpf", "perfmon", "net_admin"]
        try eachOneFewer(set, ["-f", files.path + "/xdp.yaml", "--policy", files.path + "/policy.yaml"])
        #expect(try veth.attached().isEmpty)
        let fs = try ScratchBPFFS()
        let applied = try bpftreeWith(set, ["apply", "-f", files.path + "/xdp.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path])
        #expect(applied.status == 0, "\(applied.output)")
        #expect(try veth.attached().count == 1)
        let again = try bpftreeWith(set, ["apply", "-f", files.path + "/xdp.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path])
        #expect(again.status == 0 && again.stdout.contains("No changes."), "\(again.output)")
    }

    @Test func cgroupLinksTakeCAP_NET_ADMINAndIteratorPinsOfMode0444CAP_DAC_OVERRIDE() throws {
        let cgroups = try ScratchCgroup()
        try cgroups.make("w1")
        let files = try jobStatsFiles(source: cgroups.relative)
        let set = ["bpf", "perfmon", "net_admin", "dac_override"]
        let fs = try ScratchBPFFS()
        let args = ["-f", files.path + "/job-stats.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftreeWith(set, ["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")
        let id = try cgroups.id("w1")
        let link = try #require(try bpftool(["link", "show", "pinned", fs.at("jobs/A/\(id)/egress")]) as? [String: Any])
        #expect(link["type"] as? String == "cgroup", "\(link)")
        let again = try bpftreeWith(set, ["apply"] + args)
        #expect(again.status == 0 && again.stdout.contains("No changes."), "\(again.output)")
        // That pass stamped the tree. Without CAP_SYS_ADMIN the stamp's walk cannot read the links by id
        // (BPF_LINK_GET_FD_BY_ID): it reads them through their pins, and the stamp still matches.
        let stamped = try bpftreeWith(set, ["diff", "-o", "json"] + args)
        #expect(stamped.status == 0, "\(stamped.output)")
        #expect(try json(stamped.stdout)["stamp"] as? String == "matched", "\(stamped.output)")
        // The stats iterator is pinned 0444, and BPF_OBJ_GET opens a link only read-write.
        let blind = try bpftreeWith(["bpf", "perfmon", "net_admin"], ["apply"] + args)
        #expect(blind.status == 1 && blind.stderr.contains("BPF_OBJ_GET jobs/A/\(id)/stats: Permission denied")
                && blind.stderr.contains("without CAP_DAC_OVERRIDE"), "\(blind.output)")

        let attachFirst = ["-f", files.path + "/job-stats.yaml", "--policy", files.path + "/policy.yaml"]
        try eachOneFewer(["bpf", "perfmon", "net_admin"], attachFirst)
    }

    @Test func uprobeLinksTakeCAP_SYS_ADMIN() throws {
        let files = try ManifestDirectory(["policy.yaml": try String(contentsOfFile: repositoryRoot + "/policies/tracing.yaml", encoding: .utf8)])
        let adder = try buildAdder(into: files.path)
        let example = try String(contentsOfFile: repositoryRoot + "/examples/uprobe-count/uprobe-count.yaml", encoding: .utf8)
        try example.replacingOccurrences(of: "binary: /bin/bash, symbol: readline", with: "binary: \(adder), symbol: bt_traced_add")
            .write(toFile: files.path + "/uprobe.yaml", atomically: true, encoding: .utf8)
        try buildBPF([repositoryRoot + "/bpf/uprobe_count.bpf.c"], into: files.path)
        let fs = try ScratchBPFFS()
        let args = ["-f", files.path + "/uprobe.yaml", "--policy", files.path + "/policy.yaml"]
        let applied = try bpftreeWith(["bpf", "perfmon", "sys_admin"], ["apply"] + args + ["--anchor", fs.path])
        #expect(applied.status == 0, "\(applied.output)")
        let empty = try ScratchBPFFS()
        let refused = try bpftreeWith(["bpf", "perfmon"], ["apply"] + args + ["--anchor", empty.path])
        #expect(refused.status == 1 && refused.stderr.contains("apply needs CAP_SYS_ADMIN")
                && refused.stderr.contains("opening a uprobe perf event"), "\(refused.output)")
        #expect(try empty.shape().isEmpty)
    }

    @Test func aContainersTreeThroughAnchorPidTakesCAP_SYS_PTRACE() throws {
        let container = try ScratchContainer()
        let files = try ManifestDirectory(["maps.yaml": Self.maps])
        let args = ["apply", "-f", files.path, "--anchor", "/bpf", "--anchor-pid", "\(container.pid)"]
        let refused = try bpftreeWith(["bpf", "perfmon"], args)
        #expect(refused.status == 1 && refused.stderr.contains("open anchor /proc/\(container.pid)/root: Permission denied")
                && refused.stderr.contains("without CAP_SYS_PTRACE"), "\(refused.output)")
        #expect(try container.shape().isEmpty)
        let applied = try bpftreeWith(["bpf", "perfmon", "sys_ptrace"], args)
        #expect(applied.status == 0, "\(applied.output)")
        let shape = try container.shape()
        #expect(shape.contains("jobs/A/config f 600"), "\(shape)")
    }
}
