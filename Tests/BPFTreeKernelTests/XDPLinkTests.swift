import Foundation
import Glibc
import Testing

/// XDP links on a veth pair made by the tests, with real traffic, checked with bpftool.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct XDPLinkTests {
    /// examples/xdp-count for interface `interface`, with extra link fields.
    private func manifest(_ interface: String, link extra: String = "") throws -> String {
        let example = try String(contentsOfFile: repositoryRoot + "/examples/xdp-count/xdp-count.yaml", encoding: .utf8)
        return example.replacingOccurrences(of: "interface: veth0}", with: "interface: \(interface)\(extra)}")
    }

    private var policy: String {
        get throws { try String(contentsOfFile: repositoryRoot + "/policies/network.yaml", encoding: .utf8) }
    }

    /// Packets counted in the `received` map (u64 packets, u64 bytes), read with bpftool.
    private func received(_ fs: ScratchBPFFS) throws -> UInt64 {
        let dump = try #require(try bpftool(["map", "dump", "pinned", fs.at("net/edge/received")]) as? [[String: Any]])
        let bytes = (dump.first?["value"] as? [String] ?? []).compactMap { UInt8($0.dropFirst(2), radix: 16) }
        return bytes.prefix(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    @Test func anXDPLinkCountsTrafficIsRepairedWhenDetachedAndPrunedWhenUndeclared() throws {
        let fs = try ScratchBPFFS()
        let veth = try ScratchVeth()
        let files = try ManifestDirectory(["xdp.yaml": try manifest(veth.host), "policy.yaml": try policy])
        try buildBPF([repositoryRoot + "/bpf/xdp_count.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/xdp.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftree(["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")

        // What is attached, as bpftool sees it: the pinned program, in the driver (veth has native XDP).
        let program = try pinned("prog", fs.at("net/edge/xdp_count"))
        let link = try pinned("link", fs.at("net/edge/ingress"))
        #expect(link["type"] as? String == "xdp" && link["prog_id"] as? Int == program["id"] as? Int, "\(link)")
        #expect(try veth.attached().map(\.id) == [try #require(program["id"] as? Int)])
        #expect(try veth.attached().first?.mode == "driver")

        // It does its job: the peer's datagrams are counted.
        let before = try received(fs)
        try veth.sendFromPeer(count: 20)
        #expect(try eventually(within: 5) { try received(fs) >= before + 20 })

        // A second apply changes nothing.
        #expect(try bpftree(["diff"] + args).status == 0)

        // Detached by hand: the link is still pinned but holds no interface; diff finds it, apply repairs.
        let id = try #require(link["id"] as? Int)
        #expect(try run([KernelSupport.bpftool, "link", "detach", "id", "\(id)"]).status == 0)
        #expect(try veth.attached().isEmpty)
        let drift = try bpftree(["diff"] + args)
        #expect(drift.status == 2, "\(drift.output)")
        #expect(drift.output.contains("interface: declared \(veth.host)"), "\(drift.output)")
        #expect(try bpftree(["apply"] + args).status == 0)
        #expect(try veth.attached().map(\.id) == [try #require(program["id"] as? Int)])
        let counted = try received(fs)
        try veth.sendFromPeer(count: 10)
        #expect(try eventually(within: 5) { try received(fs) >= counted + 10 }, "the repaired link counts again")

        // No longer declared: the link's pin goes, and with it the attachment; the map and program stay.
        let without = try manifest(veth.host).components(separatedBy: "    ingress:")[0]
        try without.write(toFile: files.path + "/xdp.yaml", atomically: true, encoding: .utf8)
        let pruned = try bpftree(["apply"] + args)
        #expect(pruned.status == 0, "\(pruned.output)")
        #expect(!FileManager.default.fileExists(atPath: fs.at("net/edge/ingress")))
        #expect(try veth.attached().isEmpty)
        #expect(FileManager.default.fileExists(atPath: fs.at("net/edge/xdp_count")))
    }

    /// A rebuilt program and another mode in one edit: one apply makes the link again in the new mode on
    /// the new program (moving it in place would keep the old mode, and the next diff would differ).
    @Test func aRebuiltProgramAndAnotherModeInOneEditConvergeInOneApply() throws {
        let fs = try ScratchBPFFS()
        let veth = try ScratchVeth()
        let files = try ManifestDirectory(["xdp.yaml": try manifest(veth.host), "policy.yaml": try policy])
        let source = try String(contentsOfFile: repositoryRoot + "/bpf/xdp_count.bpf.c", encoding: .utf8)
        try source.write(toFile: files.path + "/xdp_count.bpf.c", atomically: true, encoding: .utf8)
        try buildBPF([files.path + "/xdp_count.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/xdp.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        try #require(try bpftree(["apply"] + args).status == 0)
        #expect(try veth.attached().first?.mode == "driver")
        let old = try #require(try pinned("prog", fs.at("net/edge/xdp_count"))["id"] as? Int)

        // Rebuilt (it counts bytes no more: other instructions, another tag) and declared in generic mode.
        try source.replacingOccurrences(of: "__sync_fetch_and_add(&c->bytes, ctx->data_end - ctx->data);", with: "")
            .write(toFile: files.path + "/xdp_count.bpf.c", atomically: true, encoding: .utf8)
        try buildBPF([files.path + "/xdp_count.bpf.c"], into: files.path)
        try (try manifest(veth.host, link: ", xdpMode: generic")).write(toFile: files.path + "/xdp.yaml", atomically: true, encoding: .utf8)
        let applied = try bpftree(["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")
        #expect(!applied.output.contains("in place"), "\(applied.output)")
        let program = try #require(try pinned("prog", fs.at("net/edge/xdp_count"))["id"] as? Int)
        #expect(program != old)
        #expect(try veth.attached().map(\.id) == [program] && veth.attached().first?.mode == "generic")
        let diff = try bpftree(["diff"] + args)
        #expect(diff.status == 0, "\(diff.output)")
        let before = try received(fs)
        try veth.sendFromPeer(count: 10)
        #expect(try eventually(within: 5) { try received(fs) >= before + 10 })
    }

    /// A link moved to a mode the driver refuses (veth has no offload) is detached first, then refused: its
    /// program goes back to the interface in the mode it had, and the old manifest finds nothing to change.
    @Test func aModeTheDriverRefusesPutsTheOldLinkBackInItsMode() throws {
        let fs = try ScratchBPFFS()
        let veth = try ScratchVeth()
        let generic = try manifest(veth.host, link: ", xdpMode: generic")
        let files = try ManifestDirectory(["xdp.yaml": generic, "policy.yaml": try policy])
        try buildBPF([repositoryRoot + "/bpf/xdp_count.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/xdp.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        try #require(try bpftree(["apply"] + args).status == 0)
        let program = try #require(try pinned("prog", fs.at("net/edge/xdp_count"))["id"] as? Int)
        let link = try #require(try pinned("link", fs.at("net/edge/ingress"))["id"] as? Int)

        try (try manifest(veth.host, link: ", xdpMode: offload")).write(toFile: files.path + "/xdp.yaml", atomically: true, encoding: .utf8)
        let failed = try bpftree(["apply"] + args)
        #expect(failed.status == 1 && failed.output.contains("BPF_LINK_CREATE"), "\(failed.output)")
        #expect(failed.output.contains("the detached link net/edge/ingress is attached again where it was"), "\(failed.output)")
        #expect(try veth.attached().map(\.id) == [program] && veth.attached().first?.mode == "generic")
        let restored = try pinned("link", fs.at("net/edge/ingress"))
        #expect(restored["id"] as? Int != link && restored["prog_id"] as? Int == program, "a new link of the same program: \(restored)")
        let before = try received(fs)
        try veth.sendFromPeer(count: 10)
        #expect(try eventually(within: 5) { try received(fs) >= before + 10 }, "it counts again")

        try generic.write(toFile: files.path + "/xdp.yaml", atomically: true, encoding: .utf8)
        let settled = try bpftree(["diff", "--verify"] + args)
        #expect(settled.status == 0, "\(settled.output)")
    }

    /// Debian's xdp-filter object for UDP with the default policy deny (nobody here wrote it), attached in
    /// generic mode: while it is linked no UDP datagram reaches a socket behind the interface; once the
    /// link is no longer declared and pruned, all do.
    @Test func xdpToolsUDPFilterInGenericModeDropsUDPUntilItsLinkIsPruned() throws {
        let object = "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_dny_udp.o"
        try #require(FileManager.default.fileExists(atPath: object), "xdp-tools is installed by scripts/install-deps.sh")
        let fs = try ScratchBPFFS()
        let veth = try ScratchVeth()
        let program = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: xdp-filter}
            spec:
              root: net/filter
              entries:
                udp:
                  program: {object: \(object), name: xdpfilt_dny_udp}

            """
        let link = "    ingress:\n      link: {program: net/filter/udp, attachType: xdp, interface: \(veth.host), xdpMode: generic}\n"
        let files = try ManifestDirectory(["filter.yaml": program + link, "policy.yaml": try policy])
        let args = ["-f", files.path + "/filter.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        #expect(try veth.udpReceived(count: 10) == 10, "without a filter every datagram arrives")

        let applied = try bpftree(["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")
        let loaded = try pinned("prog", fs.at("net/filter/udp"))
        #expect(loaded["type"] as? String == "xdp")
        let attached = try veth.attached()
        #expect(attached.map(\.id) == [try #require(loaded["id"] as? Int)] && attached.first?.mode == "generic", "\(attached)")
        #expect(try veth.udpReceived(count: 10) == 0, "the filter drops UDP")
        #expect(try bpftree(["diff"] + args).status == 0)

        try program.write(toFile: files.path + "/filter.yaml", atomically: true, encoding: .utf8)
        #expect(try bpftree(["apply"] + args).status == 0)
        #expect(try veth.attached().isEmpty)
        #expect(try veth.udpReceived(count: 10) == 10, "the pruned link took the filter with it")
    }

    @Test func aLinkOnAnInterfaceThatDoesNotExistIsRefusedWithItsPlaceAndNothingChanges() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["xdp.yaml": try manifest("btnosuch0"), "policy.yaml": try policy])
        try buildBPF([repositoryRoot + "/bpf/xdp_count.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/xdp.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let result = try bpftree(["apply"] + args)
        #expect(result.status == 1)
        #expect(result.output.contains("xdp.yaml:22:"), "\(result.output)")
        #expect(result.output.contains("spec.entries.ingress.link.interface"), "\(result.output)")
        #expect(result.output.contains("interface 'btnosuch0'"), "\(result.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: fs.path).filter { !$0.hasPrefix("bpftree_") && !$0.hasSuffix(".debug") }.isEmpty)
    }

    /// An XDP link's program must be an XDP program: the task iterator of examples/task-iter on `lo` is
    /// refused with the link's place before anything changes.
    @Test func anXDPLinkOnAProgramOfAnotherTypeIsRefusedWithItsPlace() throws {
        let fs = try ScratchBPFFS()
        let text = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: wrong}
            spec:
              root: net/wrong
              entries:
                tasks:
                  program: {object: task_iter.bpf.o, name: list_tasks}
                ingress:
                  link: {program: net/wrong/tasks, attachType: xdp, interface: lo}

            """
        let files = try ManifestDirectory(["wrong.yaml": text])
        try buildBPF([repositoryRoot + "/bpf/task_iter.bpf.c"], into: files.path)
        let result = try bpftree(["apply", "-f", files.path + "/wrong.yaml", "--anchor", fs.path])
        #expect(result.status == 1)
        #expect(result.output.contains("wrong.yaml:10:"), "\(result.output)")
        #expect(result.output.contains("spec.entries.ingress.link.program"), "\(result.output)")
        #expect(result.output.contains("is a tracing program; an XDP link needs an xdp program"), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: fs.at("net")))
    }
}

