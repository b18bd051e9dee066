import Foundation
import Glibc
import Testing

/// tcx links (Linux 6.6) on a veth pair made by the tests, with real traffic: examples/tcx-filter, a
/// counter placed before a filter that drops UDP to port 9.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct TCXLinkTests {
    /// examples/tcx-filter for interface `interface`, the counter's position `counter`.
    private func manifest(_ interface: String, counter: String = "before: net/tc/filter") throws -> String {
        let example = try String(contentsOfFile: repositoryRoot + "/examples/tcx-filter/tcx-filter.yaml", encoding: .utf8)
        return example.replacingOccurrences(of: "interface: veth0", with: "interface: \(interface)")
            .replacingOccurrences(of: "before: net/tc/filter", with: counter)
    }

    private var policy: String {
        get throws { try String(contentsOfFile: repositoryRoot + "/policies/network.yaml", encoding: .utf8) }
    }

    /// The u64 in the one-entry array pinned at `name`, read with bpftool.
    private func count(_ fs: ScratchBPFFS, _ name: String) throws -> UInt64 {
        let dump = try #require(try bpftool(["map", "dump", "pinned", fs.at("net/tc/\(name)")]) as? [[String: Any]])
        let bytes = (dump.first?["value"] as? [String] ?? []).compactMap { UInt8($0.dropFirst(2), radix: 16) }
        return bytes.prefix(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The tcx links bpftool lists (it names the type by number: Debian 12's bpftool predates tcx), by id.
    private func tcxLinks() throws -> [Int: Int] {
        let links = try #require(try bpftool(["link", "show"]) as? [[String: Any]])
        var found: [Int: Int] = [:]
        for link in links where link["type"] as? Int == 11 || link["type"] as? String == "tcx" {
            if let id = link["id"] as? Int, let program = link["prog_id"] as? Int { found[id] = program }
        }
        return found
    }

    @Test func aCounterPlacedBeforeAFilterSeesWhatItDropsAndAfterItNothingAndARebuiltProgramMovesInPlace() throws {
        let fs = try ScratchBPFFS()
        let veth = try ScratchVeth()
        let files = try ManifestDirectory(["tcx.yaml": try manifest(veth.host), "policy.yaml": try policy])
        try buildBPF([repositoryRoot + "/bpf/tcx_filter.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/tcx.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftree(["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")

        // What is attached, as bpftool sees it: two tcx links, each holding its pinned program.
        let filter = try pinned("link", fs.at("net/tc/filter")), counter = try pinned("link", fs.at("net/tc/counter"))
        let drop = try pinned("prog", fs.at("net/tc/drop_udp9")), countAll = try pinned("prog", fs.at("net/tc/count_all"))
        let links = try tcxLinks()
        let filterID = try #require(filter["id"] as? Int), counterID = try #require(counter["id"] as? Int)
        #expect(links[filterID] == drop["id"] as? Int && links[counterID] == countAll["id"] as? Int, "\(links)")
        #expect(drop["type"] as? String == "sched_cls")

        // Before the filter, the counter sees every datagram, the dropped ones too; none reaches a socket.
        #expect(try veth.udpReceived(count: 10, port: 9) == 0, "the filter drops UDP")
        let (counted, dropped) = (try count(fs, "counted"), try count(fs, "dropped"))
        try veth.sendFromPeer(count: 20)
        #expect(try eventually(within: 5) { try count(fs, "dropped") >= dropped + 20 })
        #expect(try count(fs, "counted") >= counted + 20, "placed before the filter, the counter counts what it drops")

        // A second apply changes nothing.
        let again = try bpftree(["diff"] + args)
        #expect(again.status == 0, "\(again.output)")

        // Placed after the filter, the counter is made again there, and never sees a dropped datagram.
        try manifest(veth.host, counter: "after: net/tc/filter").write(toFile: files.path + "/tcx.yaml", atomically: true, encoding: .utf8)
        let moved = try bpftree(["apply"] + args)
        #expect(moved.status == 0, "\(moved.output)")
        #expect(moved.output.contains("net/tc/counter") && moved.output.contains("after net/tc/filter (the old one is detached first"), "\(moved.output)")
        let (countedAfter, droppedAfter) = (try count(fs, "counted"), try count(fs, "dropped"))
        try veth.sendFromPeer(count: 20)
        #expect(try eventually(within: 5) { try count(fs, "dropped") >= droppedAfter + 20 })
        #expect(try count(fs, "counted") < countedAfter + 20, "after the filter, the counter does not see what it drops")
        #expect(try bpftree(["diff"] + args).status == 0)

        // Back before it; then count_all is rebuilt: its link moves to the new program in place while
        // traffic flows, so every datagram the filter drops was counted first (no moment without it).
        try manifest(veth.host).write(toFile: files.path + "/tcx.yaml", atomically: true, encoding: .utf8)
        #expect(try bpftree(["apply"] + args).status == 0)
        let before = try pinned("link", fs.at("net/tc/counter"))
        let built = try run(["env", "BPF_CFLAGS=-DREVISION=2", repositoryRoot + "/scripts/build-bpf.sh", files.path,
                             repositoryRoot + "/bpf/tcx_filter.bpf.c"])
        #expect(built.status == 0, "\(built.output)")
        let plan = try bpftree(["diff"] + args)
        #expect(plan.status == 2 && plan.output.contains("~ net/tc/counter") && plan.output.contains("in place"), "\(plan.output)")
        let (c0, d0) = (try count(fs, "counted"), try count(fs, "dropped"))
        let sender = try veth.startSendingFromPeer(seconds: 3)
        usleep(500_000)
        let updated = try bpftree(["apply"] + args)
        sender.waitUntilExit()
        #expect(updated.status == 0, "\(updated.output)")
        let (c1, d1) = (try count(fs, "counted"), try count(fs, "dropped"))
        #expect(d1 - d0 > 1000, "the generator ran through the apply (\(d1 - d0) dropped)")
        #expect(c1 - c0 >= d1 - d0, "every dropped datagram was counted: \(c1 - c0) counted, \(d1 - d0) dropped")
        let after = try pinned("link", fs.at("net/tc/counter"))
        #expect(after["id"] as? Int == before["id"] as? Int, "the same link, moved in place")
        #expect(after["prog_id"] as? Int == (try pinned("prog", fs.at("net/tc/count_all")))["id"] as? Int)
        #expect(after["prog_id"] as? Int != before["prog_id"] as? Int)
        #expect(try bpftree(["diff"] + args).status == 0)

        // Detached by hand: diff finds it, apply makes it again.
        #expect(try run([KernelSupport.bpftool, "link", "detach", "id", "\(filterID)"]).status == 0)
        let drift = try bpftree(["diff"] + args)
        #expect(drift.status == 2 && drift.output.contains("interface: declared \(veth.host)"), "\(drift.output)")
        #expect(try bpftree(["apply"] + args).status == 0)
        #expect(try veth.udpReceived(count: 10, port: 9) == 0, "the repaired filter drops again")

        // No longer declared: both links go with their pins, and UDP flows again.
        let without = try manifest(veth.host).components(separatedBy: "    filter:")[0]
        try without.write(toFile: files.path + "/tcx.yaml", atomically: true, encoding: .utf8)
        let pruned = try bpftree(["apply"] + args)
        #expect(pruned.status == 0, "\(pruned.output)")
        #expect(try tcxLinks().keys.allSatisfy { $0 != filterID && $0 != counterID })
        #expect(try veth.udpReceived(count: 10, port: 9) == 10)
    }

    /// A declared position is checked against the hook's order (`BPF_PROG_QUERY`): another tree's link
    /// put first in front of a counter declared first is found, and the counter is made first again,
    /// where it sees what that link drops.
    @Test func aPositionLostToAnotherLinkIsFoundAndRestored() throws {
        let fs = try ScratchBPFFS(), other = try ScratchBPFFS()
        let veth = try ScratchVeth()
        let first = try manifest(veth.host, counter: "position: first")
        let foreign = try manifest(veth.host).components(separatedBy: "    count_all:")[0]
            + "    filter:\n      link: {program: net/tc/drop_udp9, attachType: tcx_ingress, interface: \(veth.host), position: first}\n"
        let files = try ManifestDirectory(["tcx.yaml": first, "foreign.yaml": foreign, "policy.yaml": try policy])
        try buildBPF([repositoryRoot + "/bpf/tcx_filter.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/tcx.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        #expect(try bpftree(["apply"] + args).status == 0)
        #expect(try bpftree(["diff"] + args).status == 0)

        // Another tree puts its own UDP 9 filter first: the counter is second and no longer sees those.
        let foreignArgs = ["-f", files.path + "/foreign.yaml", "--policy", files.path + "/policy.yaml", "--anchor", other.path]
        #expect(try bpftree(["apply"] + foreignArgs).status == 0)
        let drift = try bpftree(["diff"] + args)
        #expect(drift.status == 2 && drift.output.contains("position: declared first, live 2 of 3 on the hook"), "\(drift.output)")
        var counted = try count(fs, "counted")
        try veth.sendFromPeer(count: 20)
        usleep(300_000)
        #expect(try count(fs, "counted") < counted + 20, "behind the other filter, the counter misses what it drops")

        // Repaired: first again, it counts every datagram, the ones the other filter drops too.
        let repaired = try bpftree(["apply"] + args)
        #expect(repaired.status == 0 && repaired.output.contains("net/tc/counter"), "\(repaired.output)")
        #expect(try bpftree(["diff"] + args).status == 0)
        counted = try count(fs, "counted")
        try veth.sendFromPeer(count: 20)
        #expect(try eventually(within: 5) { try count(fs, "counted") >= counted + 20 })
    }

    /// The repro: two links on one hook, then an edit that moves one before a declared program no
    /// link attaches (the kernel's ENOENT, after the links to move were detached). Refused at its place
    /// before anything changes: both links stay attached and the filter keeps dropping, datagram by datagram.
    @Test func aPositionNextToAProgramNotOnTheHookIsRefusedAndTheHookKeepsFiltering() throws {
        let fs = try ScratchBPFFS()
        let veth = try ScratchVeth()
        let spare = "    spare:\n      program: {object: tcx_filter.bpf.o, name: count_all, maps: {counted: net/tc/counted, dropped: net/tc/dropped}}\n"
        let placed = try manifest(veth.host, counter: "position: first")
            .replacingOccurrences(of: "interface: \(veth.host)}\n      onIncompatible: replace\n    counter:", with: "interface: \(veth.host), position: last}\n      onIncompatible: replace\n    counter:")
        let files = try ManifestDirectory(["tcx.yaml": placed + spare, "policy.yaml": try policy])
        try buildBPF([repositoryRoot + "/bpf/tcx_filter.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/tcx.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftree(["apply"] + args)
        try #require(applied.status == 0, "\(applied.output)")
        let links = try tcxLinks()
        #expect(links.count == 2)

        let moved = placed.replacingOccurrences(of: ", position: first}", with: "}")
            .replacingOccurrences(of: ", position: last}", with: ", before: net/tc/spare}")
        try (moved + spare).write(toFile: files.path + "/tcx.yaml", atomically: true, encoding: .utf8)
        let before = try fs.snapshot()
        for command in ["diff", "apply"] {
            let result = try bpftree([command] + args)
            #expect(result.status == 1, "\(command): \(result.output)")
            #expect(result.stderr.contains("spec.entries.filter.link.before: 'net/tc/spare' is a declared program that no declared tcx link attaches at tcx_ingress of interface \(veth.host)"),
                    "\(result.output)")
        }
        #expect(try fs.snapshot() == before)
        #expect(try tcxLinks() == links, "both links are still on the hook")
        // No datagram unfiltered: every one to port 9 is dropped, none reaches a socket.
        let dropped = try count(fs, "dropped")
        #expect(try veth.udpReceived(count: 20, port: 9) == 0, "the filter drops UDP")
        #expect(try eventually(within: 5) { try count(fs, "dropped") >= dropped + 20 })
    }

    /// Links detached for their successors go back where they were when the kernel refuses a later link of
    /// the same apply (a netkit link on a veth): the hook holds the counter and then the filter again, the
    /// filter keeps dropping, the counter sees what it drops, and the old manifest finds nothing to change.
    @Test func linksDetachedBeforeAKernelRefusalAreAttachedAgainWhereTheyWere() throws {
        let fs = try ScratchBPFFS()
        let veth = try ScratchVeth()
        let placed = try manifest(veth.host, counter: "position: first")
            .replacingOccurrences(of: "interface: \(veth.host)}\n      onIncompatible: replace\n    counter:", with: "interface: \(veth.host), position: last}\n      onIncompatible: replace\n    counter:")
        let files = try ManifestDirectory(["tcx.yaml": placed, "policy.yaml": try policy])
        try buildBPF([repositoryRoot + "/bpf/tcx_filter.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/tcx.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        try #require(try bpftree(["apply"] + args).status == 0)
        let programs = Set(try tcxLinks().values)
        try #require(programs.count == 2)

        // The counter loses its position and the filter goes first: both are detached and made again; the
        // netkit link made in the same run is refused.
        let moved = placed.replacingOccurrences(of: ", position: first}", with: "}")
            .replacingOccurrences(of: ", position: last}", with: ", position: first}")
            + "    primary:\n      link: {program: net/tc/drop_udp9, attachType: netkit_primary, interface: \(veth.host)}\n"
        try moved.write(toFile: files.path + "/tcx.yaml", atomically: true, encoding: .utf8)
        let shape = try fs.shape()
        let failed = try bpftree(["apply"] + args)
        #expect(failed.status == 1 && failed.output.contains("net/tc/primary") && failed.output.contains("BPF_LINK_CREATE"), "\(failed.output)")
        #expect(failed.output.contains("the detached links net/tc/counter, net/tc/filter are attached again where they were")
                || failed.output.contains("the detached links net/tc/filter, net/tc/counter are attached again where they were"), "\(failed.output)")
        #expect(try fs.shape() == shape)
        #expect(Set(try tcxLinks().values) == programs, "the same two programs on the hook")

        // In their old order: the counter counts every datagram the filter drops.
        let (counted, dropped) = (try count(fs, "counted"), try count(fs, "dropped"))
        #expect(try veth.udpReceived(count: 20, port: 9) == 0, "the filter drops UDP")
        #expect(try eventually(within: 5) { try count(fs, "dropped") >= dropped + 20 })
        #expect(try count(fs, "counted") >= counted + 20, "the counter is still before the filter")

        // Recorded as bpftree's, with what was declared: the old manifest has nothing to change.
        try placed.write(toFile: files.path + "/tcx.yaml", atomically: true, encoding: .utf8)
        let settled = try bpftree(["diff", "--verify"] + args)
        #expect(settled.status == 0, "\(settled.output)")
    }

    /// Another set puts its program first on the hook, before this set's filter (`position: first`), whose
    /// counter is placed right after it: one apply places both anew, and the next diff finds nothing.
    @Test func aProgramPutFirstByAnotherSetIsSettledInOneApply() throws {
        let fs = try ScratchBPFFS()
        let veth = try ScratchVeth()
        let placed = try manifest(veth.host, counter: "after: net/tc/filter")
            .replacingOccurrences(of: "interface: \(veth.host)}\n      onIncompatible: replace\n    counter:", with: "interface: \(veth.host), position: first}\n      onIncompatible: replace\n    counter:")
        let other = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: other, owner: other-team}
            spec:
              root: net/other
              entries:
                counted: {map: {type: array, keySize: 4, valueSize: 8, maxEntries: 1}}
                dropped: {map: {type: array, keySize: 4, valueSize: 8, maxEntries: 1}}
                count_all: {program: {object: tcx_filter.bpf.o, name: count_all, maps: {counted: net/other/counted, dropped: net/other/dropped}}}
                first: {link: {program: net/other/count_all, attachType: tcx_ingress, interface: \(veth.host), position: first}}

            """
        let files = try ManifestDirectory(["tcx.yaml": placed, "other.yaml": other, "policy.yaml": try policy])
        try buildBPF([repositoryRoot + "/bpf/tcx_filter.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/tcx.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        try #require(try bpftree(["apply"] + args).status == 0)
        let others = try bpftree(["apply", "-f", files.path + "/other.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path])
        try #require(others.status == 0, "\(others.output)")
        let drift = try bpftree(["diff"] + args)
        #expect(drift.status == 2 && drift.output.contains("net/tc/filter") && drift.output.contains("net/tc/counter"), "\(drift.output)")
        let applied = try bpftree(["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")
        let after = try bpftree(["diff"] + args)
        #expect(after.status == 0, "one apply converges: \(after.output)")
    }

    /// netkit (Linux 6.7) takes tcx's link layout on a netkit device; this kernel has no netkit
    /// (`CONFIG_NETKIT` is off, `ip link add type netkit` fails), so a netkit link on a veth is what can be
    /// tried: the kernel refuses it during apply and the tree is left as it was.
    @Test func aNetkitLinkTheKernelRefusesLeavesTheTreeAsItWas() throws {
        let fs = try ScratchBPFFS()
        let veth = try ScratchVeth()
        let text = try manifest(veth.host).components(separatedBy: "    filter:")[0] + """
                primary:
                  link: {program: net/tc/drop_udp9, attachType: netkit_primary, interface: \(veth.host)}
            """
        let files = try ManifestDirectory(["netkit.yaml": text, "policy.yaml": try policy])
        try buildBPF([repositoryRoot + "/bpf/tcx_filter.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/netkit.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let planned = try bpftree(["diff"] + args)
        #expect(planned.status == 2 && planned.output.contains("netkit net/tc/drop_udp9 on interface \(veth.host)"), "\(planned.output)")
        let result = try bpftree(["apply"] + args)
        #expect(result.status == 1 && result.output.contains("BPF_LINK_CREATE"), "\(result.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: fs.path).filter { !$0.hasPrefix("bpftree_") && !$0.hasSuffix(".debug") }.isEmpty,
                "the staged maps and programs are gone again")
    }

    @Test func aTCXLinkOnAnInterfaceThatDoesNotExistIsRefusedWithItsPlace() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["tcx.yaml": try manifest("btnosuch0"), "policy.yaml": try policy])
        try buildBPF([repositoryRoot + "/bpf/tcx_filter.bpf.c"], into: files.path)
        let result = try bpftree(["apply", "-f", files.path + "/tcx.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path])
        #expect(result.status == 1)
        #expect(result.output.contains("tcx.yaml:27:") && result.output.contains("spec.entries.filter.link.interface"), "\(result.output)")
        #expect(result.output.contains("interface 'btnosuch0'"), "\(result.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: fs.path).filter { !$0.hasPrefix("bpftree_") && !$0.hasSuffix(".debug") }.isEmpty)
    }
}
