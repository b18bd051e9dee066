import Foundation
import Glibc
import Testing

/// Network namespace links (`sk_lookup`) on a namespace made by the tests, with real traffic.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct NetnsLinkTests {
    /// examples/sk-lookup-count on `netns`, and policies/network.yaml, with the object built.
    private func files(netns: String) throws -> ManifestDirectory {
        let example = try String(contentsOfFile: repositoryRoot + "/examples/sk-lookup-count/sk-lookup-count.yaml", encoding: .utf8)
        let policy = try String(contentsOfFile: repositoryRoot + "/policies/network.yaml", encoding: .utf8)
        let files = try ManifestDirectory(["lookups.yaml": example.replacingOccurrences(of: "netns: /run/netns/blue}", with: "netns: \(netns)}"),
                                           "policy.yaml": policy])
        try buildBPF([repositoryRoot + "/bpf/sk_lookup_count.bpf.c"], into: files.path)
        return files
    }

    /// UDP lookups counted in `net/lookups/counts` (key 1), read with bpftool.
    private func udpLookups(_ fs: ScratchBPFFS) throws -> UInt64 {
        let entry = try #require(try bpftool(["map", "lookup", "pinned", fs.at("net/lookups/counts"), "key", "1", "0", "0", "0"]) as? [String: Any])
        let bytes = (entry["value"] as? [String] ?? []).compactMap { UInt8($0.dropFirst(2), radix: 16) }
        return bytes.prefix(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    @Test func anSKLookupLinkCountsTheNamespacesLookupsAndIsPrunedWhenUndeclared() throws {
        let fs = try ScratchBPFFS()
        let veth = try ScratchVeth()
        let netns = "/run/netns/\(veth.namespace)"
        let files = try files(netns: netns)
        let args = ["-f", files.path + "/lookups.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftree(["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")

        // As bpftool sees it: a netns link of the pinned program, on the namespace's inode.
        let program = try pinned("prog", fs.at("net/lookups/count_lookups"))
        let link = try pinned("link", fs.at("net/lookups/blue"))
        var st = stat()
        #expect(stat(netns, &st) == 0)
        #expect(link["type"] as? String == "netns" && link["prog_id"] as? Int == program["id"] as? Int, "\(link)")
        #expect(link["netns_ino"] as? UInt64 == UInt64(st.st_ino) && link["attach_type"] as? String == "sk_lookup", "\(link)")

        // It does its job: datagrams the namespace receives are looked up, and counted.
        let before = try udpLookups(fs)
        try veth.sendToPeer(count: 12)
        #expect(try eventually(within: 5) { try udpLookups(fs) >= before + 12 })
        #expect(try bpftree(["diff"] + args).status == 0)

        // Detached by hand: found by diff, repaired by apply.
        let id = try #require(link["id"] as? Int)
        #expect(try run([KernelSupport.bpftool, "link", "detach", "id", "\(id)"]).status == 0)
        let drift = try bpftree(["diff"] + args)
        #expect(drift.status == 2 && drift.output.contains("netns: declared \(netns)"), "\(drift.output)")
        #expect(try bpftree(["apply"] + args).status == 0)
        let counted = try udpLookups(fs)
        try veth.sendToPeer(count: 5)
        #expect(try eventually(within: 5) { try udpLookups(fs) >= counted + 5 }, "the repaired link counts again")

        // No longer declared: pruned; the namespace's lookups are no longer counted.
        let example = try String(contentsOfFile: files.path + "/lookups.yaml", encoding: .utf8)
        try example.components(separatedBy: "    blue:")[0].write(toFile: files.path + "/lookups.yaml", atomically: true, encoding: .utf8)
        #expect(try bpftree(["apply"] + args).status == 0)
        #expect(!FileManager.default.fileExists(atPath: fs.at("net/lookups/blue")))
        let pruned = try udpLookups(fs)
        try veth.sendToPeer(count: 5)
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try udpLookups(fs) == pruned)
    }

    @Test(arguments: [("/etc/hostname", "not a namespace file"), ("/proc/self/ns/uts", "not of a network namespace"),
                      ("/run/netns/bpftree-no-such-namespace", "no such file")])
    func aLinkOnWhatIsNoNetworkNamespaceIsRefusedWithItsPlace(_ path: String, _ reason: String) throws {
        let fs = try ScratchBPFFS()
        let files = try files(netns: path)
        let result = try bpftree(["apply", "-f", files.path + "/lookups.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path])
        #expect(result.status == 1)
        #expect(result.output.contains("lookups.yaml:22:"), "\(result.output)")
        #expect(result.output.contains("spec.entries.blue.link.netns") && result.output.contains(reason), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: fs.at("net")))
    }
}
