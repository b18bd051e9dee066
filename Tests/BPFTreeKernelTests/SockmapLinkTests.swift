import Foundation
import Glibc
import Testing

/// Sockmap links (Linux 6.10): sk_skb and sk_msg programs on a declared sockmap, checked against bpftool,
/// which cannot attach another program of the same kind to the map while the link holds it.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct SockmapLinkTests {
    private static let source = """
        #include <linux/bpf.h>
        #include <bpf/bpf_helpers.h>
        char LICENSE[] SEC("license") = "GPL";
        SEC("sk_skb/stream_verdict") int verdict(struct __sk_buff *skb) { return SK_PASS; }
        SEC("sk_msg") int msg_verdict(struct sk_msg_md *msg) { return SK_PASS; }

        """

    private static func manifest(maxEntries: Int = 16, mapType: String = "sockmap", links: Bool = true) -> String {
        var text = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: sk}
            spec:
              root: net/sk
              entries:
                socks:
                  map: {type: \(mapType), keySize: 4, valueSize: 4, maxEntries: \(maxEntries)}
                  onIncompatible: replace
                verdict:
                  program: {object: sk.bpf.o, name: verdict}
                msg_verdict:
                  program: {object: sk.bpf.o, name: msg_verdict}

            """
        if links {
            text += """
                    stream:
                      link: {program: net/sk/verdict, attachType: sk_skb_stream_verdict, map: net/sk/socks}
                      onIncompatible: replace
                    msg:
                      link: {program: net/sk/msg_verdict, attachType: sk_msg_verdict, map: net/sk/socks}
                      onIncompatible: replace

                """
        }
        return text
    }

    /// Whether bpftool can attach `program` to the map at `attach` (it cannot while a link holds one).
    private func bpftoolAttaches(_ fs: ScratchBPFFS, _ program: String, _ attach: String) throws -> Bool {
        let attached = try run([KernelSupport.bpftool, "prog", "attach", "pinned", fs.at("net/sk/\(program)"), attach, "pinned", fs.at("net/sk/socks")])
        if attached.status == 0 {
            _ = try run([KernelSupport.bpftool, "prog", "detach", "pinned", fs.at("net/sk/\(program)"), attach, "pinned", fs.at("net/sk/socks")])
        }
        return attached.status == 0
    }

    @Test func sockmapLinksHoldTheMapFollowItsReplacementAndArePruned() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["sk.yaml": Self.manifest(), "sk.bpf.c": Self.source,
                                           "policy.yaml": try String(contentsOfFile: repositoryRoot + "/policies/network.yaml", encoding: .utf8)])
        try buildBPF([files.path + "/sk.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/sk.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftree(["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")
        for (link, program) in [("stream", "verdict"), ("msg", "msg_verdict")] {
            let shown = try pinned("link", fs.at("net/sk/" + link))
            let loaded = try pinned("prog", fs.at("net/sk/" + program))
            #expect(shown["type"] as? Int == 14 && shown["prog_id"] as? Int == loaded["id"] as? Int, "bpftool 7.1 shows sockmap by number: \(shown)")
        }
        #expect(try !bpftoolAttaches(fs, "verdict", "sk_skb_stream_verdict"), "the map's stream verdict is taken")
        #expect(try !bpftoolAttaches(fs, "msg_verdict", "sk_msg_verdict"), "the map's msg verdict is taken")
        #expect(try bpftree(["diff"] + args).status == 0)

        // The map is replaced (another size): its links are made again on the new map.
        try Self.manifest(maxEntries: 32).write(toFile: files.path + "/sk.yaml", atomically: true, encoding: .utf8)
        let replaced = try bpftree(["apply"] + args)
        #expect(replaced.status == 0 && replaced.output.contains("net/sk/stream") && replaced.output.contains("net/sk/msg"), "\(replaced.output)")
        #expect(try !bpftoolAttaches(fs, "verdict", "sk_skb_stream_verdict"), "the new map's stream verdict is taken")
        #expect(try bpftree(["diff"] + args).status == 0)

        // Undeclared, the links go with their pins and the map is free again.
        try Self.manifest(maxEntries: 32, links: false).write(toFile: files.path + "/sk.yaml", atomically: true, encoding: .utf8)
        #expect(try bpftree(["apply"] + args).status == 0)
        #expect(try bpftoolAttaches(fs, "verdict", "sk_skb_stream_verdict"))
    }

    /// A replaced map's sockmap links are detached to be made again on the new map; when the kernel refuses a
    /// later link of the same apply (a netkit link on a veth), the new map goes and the old links are put
    /// back on the old map: it stays taken for bpftool, and the old manifest finds nothing to change.
    @Test func sockmapLinksDetachedBeforeAKernelRefusalAreAttachedAgain() throws {
        let fs = try ScratchBPFFS()
        let veth = try ScratchVeth()
        let tc = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n"
            + "SEC(\"tc\") int pass_tc(struct __sk_buff *skb) { return 0; }\n"
        let files = try ManifestDirectory(["sk.yaml": Self.manifest(), "sk.bpf.c": Self.source, "tc.bpf.c": tc,
                                           "policy.yaml": try String(contentsOfFile: repositoryRoot + "/policies/network.yaml", encoding: .utf8)])
        try buildBPF([files.path + "/sk.bpf.c", files.path + "/tc.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/sk.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        try #require(try bpftree(["apply"] + args).status == 0)
        let map = try #require(try pinned("map", fs.at("net/sk/socks"))["id"] as? Int)

        let refused = Self.manifest(maxEntries: 32)
            + "    pass_tc:\n      program: {object: tc.bpf.o, name: pass_tc}\n"
            + "    primary:\n      link: {program: net/sk/pass_tc, attachType: netkit_primary, interface: \(veth.host)}\n"
        try refused.write(toFile: files.path + "/sk.yaml", atomically: true, encoding: .utf8)
        let failed = try bpftree(["apply"] + args)
        #expect(failed.status == 1 && failed.output.contains("net/sk/primary") && failed.output.contains("BPF_LINK_CREATE"), "\(failed.output)")
        #expect(failed.output.contains("net/sk/msg, net/sk/stream are attached again where they were")
                || failed.output.contains("net/sk/stream, net/sk/msg are attached again where they were"), "\(failed.output)")
        #expect(try pinned("map", fs.at("net/sk/socks"))["id"] as? Int == map, "the old map stays")
        #expect(try !bpftoolAttaches(fs, "verdict", "sk_skb_stream_verdict"), "the old map's stream verdict is taken again")
        #expect(try !bpftoolAttaches(fs, "msg_verdict", "sk_msg_verdict"), "the old map's msg verdict is taken again")

        try Self.manifest().write(toFile: files.path + "/sk.yaml", atomically: true, encoding: .utf8)
        let settled = try bpftree(["diff", "--verify"] + args)
        #expect(settled.status == 0, "\(settled.output)")
    }

    @Test func aSockmapLinkOnAnotherKindOfMapIsRefusedWithItsPlace() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["sk.yaml": Self.manifest(mapType: "hash"), "sk.bpf.c": Self.source,
                                           "policy.yaml": try String(contentsOfFile: repositoryRoot + "/policies/network.yaml", encoding: .utf8)])
        try buildBPF([files.path + "/sk.bpf.c"], into: files.path)
        let result = try bpftree(["apply", "-f", files.path + "/sk.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path])
        #expect(result.status == 1 && result.output.contains("sk.yaml:15:") && result.output.contains("spec.entries.stream.link.map")
                && result.output.contains("'net/sk/socks' is a hash map; this link needs a sockmap or sockhash"), "\(result.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: fs.path).filter { !$0.hasPrefix("bpftree_") && !$0.hasSuffix(".debug") }.isEmpty)
    }
}
