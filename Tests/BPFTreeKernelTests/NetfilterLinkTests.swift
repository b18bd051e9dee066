import Foundation
import Glibc
import Testing

/// Netfilter links (Linux 6.4) in a network namespace of their own (bpftree run there with nsenter), with
/// real traffic into it over a veth pair.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct NetfilterLinkTests {
    private var policy: String {
        get throws { try String(contentsOfFile: repositoryRoot + "/policies/network.yaml", encoding: .utf8) }
    }

    /// bpftree in the peer end's network namespace, where its netfilter hooks are.
    private func bpftreeIn(_ veth: ScratchVeth, _ arguments: [String]) throws -> RunResult {
        try run(["nsenter", "--net=/run/netns/\(veth.namespace)", bpftreeExecutable] + arguments, environment: ["NO_COLOR": "1"])
    }

    @Test func aNetfilterLinkCountsTheNamespacesInputIsRepairedAndFollowsItsPriority() throws {
        let fs = try ScratchBPFFS()
        let veth = try ScratchVeth()
        let example = try String(contentsOfFile: repositoryRoot + "/examples/nf-count/nf-count.yaml", encoding: .utf8)
        let files = try ManifestDirectory(["nf.yaml": example, "policy.yaml": try policy])
        try buildBPF([repositoryRoot + "/bpf/nf_count.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/nf.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftreeIn(veth, ["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")
        let link = try pinned("link", fs.at("net/nf/input"))
        let program = try pinned("prog", fs.at("net/nf/count_packets"))
        #expect(link["type"] as? Int == 10 && link["prog_id"] as? Int == program["id"] as? Int,
                "bpftool 7.1 shows netfilter by number: \(link)")

        // Datagrams into the namespace pass its input hook; bpftree's own namespace has no such hook.
        let before = try slots(fs.at("net/nf/packets"))[0]
        try veth.sendToPeer(count: 20)
        #expect(try eventually(within: 5) { try slots(fs.at("net/nf/packets"))[0] >= before + 20 })
        #expect(try bpftreeIn(veth, ["diff"] + args).status == 0)

        // Another priority declared: the live hook differs and the link is made again.
        try example.replacingOccurrences(of: "priority: -100", with: "priority: 50")
            .write(toFile: files.path + "/nf.yaml", atomically: true, encoding: .utf8)
        let moved = try bpftreeIn(veth, ["diff"] + args)
        #expect(moved.status == 2 && moved.output.contains("netfilter: declared netfilter ipv4 input priority 50, live netfilter ipv4 input priority -100"),
                "\(moved.output)")
        #expect(try bpftreeIn(veth, ["apply"] + args).status == 0)
        #expect(try bpftreeIn(veth, ["diff"] + args).status == 0)

        // Removed by hand: found and made again, and it counts again.
        #expect(unlink(fs.at("net/nf/input")) == 0)
        #expect(try bpftreeIn(veth, ["diff"] + args).status == 2)
        #expect(try bpftreeIn(veth, ["apply"] + args).status == 0)
        let repaired = try slots(fs.at("net/nf/packets"))[0]
        try veth.sendToPeer(count: 10)
        #expect(try eventually(within: 5) { try slots(fs.at("net/nf/packets"))[0] >= repaired + 10 })
    }

    @Test func badNetfilterHooksAreRefusedWithTheirPlace() throws {
        let cases = [("{family: ipv5, hook: input, priority: 0}", "spec.entries.input.link.netfilter.family", "'ipv5' is not one of ipv4, ipv6"),
                     ("{family: ipv4, hook: local_in, priority: 0}", "spec.entries.input.link.netfilter.hook", "'local_in' is not one of prerouting"),
                     ("{family: ipv4, hook: input, priority: 2147483647}", "spec.entries.input.link.netfilter.priority", "out of range"),
                     ("{family: ipv4, hook: input}", "spec.entries.input.link.netfilter.priority", "missing required field 'priority'")]
        let example = try String(contentsOfFile: repositoryRoot + "/examples/nf-count/nf-count.yaml", encoding: .utf8)
        for (hook, field, message) in cases {
            let files = try ManifestDirectory(["nf.yaml": example.replacingOccurrences(of: "{family: ipv4, hook: input, priority: -100}", with: hook),
                                               "policy.yaml": try policy])
            let fs = try ScratchBPFFS()
            let result = try bpftree(["diff", "-f", files.path + "/nf.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path])
            #expect(result.status == 1 && result.output.contains("nf.yaml:23:") && result.output.contains(field) && result.output.contains(message),
                    "\(hook): \(result.output)")
        }
    }
}
