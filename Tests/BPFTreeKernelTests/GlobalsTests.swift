import Foundation
import Glibc
import Testing

/// `program.globals` and one load per object, with examples/port-filter on a veth pair made by the test
/// and real traffic; what was loaded is read back with bpftool (map ids, the `.rodata` BTF dump).
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct GlobalsTests {
    private func manifest(_ interface: String) throws -> String {
        let example = try String(contentsOfFile: repositoryRoot + "/examples/port-filter/port-filter.yaml", encoding: .utf8)
        return example.replacingOccurrences(of: "interface: veth0", with: "interface: \(interface)")
    }

    private var policy: String {
        get throws { try String(contentsOfFile: repositoryRoot + "/policies/network.yaml", encoding: .utf8) }
    }

    /// The map ids of the program pinned at `path`, as bpftool lists them.
    private func mapIDs(_ path: String) throws -> Set<Int> {
        Set(try pinned("prog", path)["map_ids"] as? [Int] ?? [])
    }

    /// The one map among `ids` whose name ends with `suffix`.
    private func map(_ ids: Set<Int>, named suffix: String) throws -> Int {
        let found = try ids.filter { id in
            let info = try #require(try bpftool(["map", "show", "id", "\(id)"]) as? [String: Any])
            return (info["name"] as? String)?.hasSuffix(suffix) == true
        }
        #expect(found.count == 1, "\(suffix) among \(ids)")
        return try #require(found.first)
    }

    /// The `.rodata` variables of map `id`, from bpftool's BTF-formatted dump.
    private func rodata(_ id: Int) throws -> [String: Any] {
        let dump = try #require(try bpftool(["map", "dump", "id", "\(id)"]) as? [[String: Any]])
        let variables = (dump.first?["formatted"] as? [String: Any])?["value"] as? [String: Any]
        var merged: [String: Any] = [:]
        for variable in variables?[".rodata"] as? [[String: Any]] ?? [] { merged.merge(variable) { $1 } }
        return merged
    }

    /// The u64 in entry 0 of the array map `id`.
    private func counter(_ id: Int) throws -> UInt64 { try slots(of: ["id", "\(id)"]).first ?? 0 }

    @Test func globalsConfigureTwoProgramsOfOneLoadThatShareTheObjectsMapsAndFilterBothDirections() throws {
        let fs = try ScratchBPFFS()
        let veth = try ScratchVeth()
        let files = try ManifestDirectory(["ports.yaml": try manifest(veth.host), "policy.yaml": try policy])
        try buildBPF([repositoryRoot + "/bpf/port_filter.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/ports.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftree(["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")

        // One load: both programs hold the same three maps (dropped, .rodata, .bss).
        let xdp = fs.at("net/ports/xdp_drop_ports"), tc = fs.at("net/ports/tc_drop_ports")
        let maps = try mapIDs(xdp), tcMaps = try mapIDs(tc)
        #expect(maps.count == 3 && maps == tcMaps, "\(maps) and \(tcMaps)")
        let values = try rodata(try map(maps, named: ".rodata"))
        #expect(values["blocked_ports"] as? [Int] == [9, 5353, 0, 0], "\(values)")
        #expect(values["enabled"] as? Bool == true && values["name"] as? String == "edge", "\(values)")

        // They do their job, into one `dropped` map: received datagrams to port 9 are dropped by XDP, sent
        // ones by tcx egress; to any other port they pass.
        #expect(try veth.udpReceived(count: 10, port: 9) == 0)
        #expect(try veth.udpReceived(count: 10) == 10)
        try veth.sendToPeer(count: 10)
        let dropped = try map(maps, named: "dropped")
        let counted = try eventually(within: 5) { try counter(dropped) == 20 }
        let total = try counter(dropped)
        #expect(counted, "both programs count into the one map: \(total)")
        #expect(try bpftree(["diff"] + args).status == 0)

        // New globals for both: both are loaded again, together, and their links move to them in place.
        let links = try ["ingress", "egress"].map { try pinned("link", fs.at("net/ports/\($0)"))["id"] as? Int }
        let changed = try manifest(veth.host).replacingOccurrences(of: "blocked_ports: [9, 5353]", with: "blocked_ports: [5353]")
        try changed.write(toFile: files.path + "/ports.yaml", atomically: true, encoding: .utf8)
        let drift = try bpftree(["diff"] + args)
        #expect(drift.status == 2 && drift.output.contains("globals: declared blocked_ports=[5353]"), "\(drift.output)")
        let reapplied = try bpftree(["apply"] + args)
        #expect(reapplied.status == 0 && reapplied.output.contains("2 updated, 2 replaced"), "\(reapplied.output)")
        #expect(try ["ingress", "egress"].map { try pinned("link", fs.at("net/ports/\($0)"))["id"] as? Int } == links)
        let reloaded = try mapIDs(xdp), tcReloaded = try mapIDs(tc)
        #expect(reloaded.count == 3 && reloaded == tcReloaded && reloaded.isDisjoint(with: maps), "\(reloaded)")
        #expect(try rodata(try map(reloaded, named: ".rodata"))["blocked_ports"] as? [Int] == [5353, 0, 0, 0])
        #expect(try veth.udpReceived(count: 10, port: 9) == 10, "port 9 is no longer blocked")
        #expect(try bpftree(["diff"] + args).status == 0)
    }

    @Test(arguments: [
        ("{blocked_prots: [9]}", "globals.blocked_prots", "no global variable 'blocked_prots' in .rodata, .data or .bss; it has: blocked_ports, enabled, name, received_seen, sent_seen; did you mean 'blocked_ports'?"),
        ("{blocked_ports: [70000]}", "globals.blocked_ports", "element 0: 70000 does not fit blocked_ports (const volatile __u16[4], 16-bit)"),
        ("{blocked_ports: [1, 2, 3, 4, 5]}", "globals.blocked_ports", "5 elements do not fit blocked_ports (const volatile __u16[4], 4 elements)"),
        ("{blocked_ports: 9}", "globals.blocked_ports", "blocked_ports is an array (const volatile __u16[4]): give a list"),
        ("{enabled: 1}", "globals.enabled", "enabled is const volatile bool: expected true or false, found 1"),
        ("{name: a-label-that-is-too-long}", "globals.name", "24 bytes do not fit name (const volatile char[16], 16 bytes)"),
        ("{sent_seen: -1}", "globals.sent_seen", "sent_seen is __u64, which is unsigned: -1 does not fit"),
        ("{sent_seen: true}", "globals.sent_seen", "sent_seen is __u64: expected an integer, found true (true and false are for bool variables)"),
        ("{sent_seen: 18446744073709551616}", "globals.sent_seen", "18446744073709551616 does not fit sent_seen (__u64, 64-bit)"),
    ])
    func aGlobalThatDoesNotFitItsVariableIsRefusedWithItsPlaceAndNothingChanges(globals: String, field: String, message: String) throws {
        let fs = try ScratchBPFFS()
        let before = try fs.snapshot()
        let manifest = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: bad}
            spec:
              root: net/bad
              entries:
                xdp:
                  program:
                    object: port_filter.bpf.o
                    name: xdp_drop_ports
                    globals: \(globals)

            """
        let files = try ManifestDirectory(["bad.yaml": manifest, "policy.yaml": try policy])
        try buildBPF([repositoryRoot + "/bpf/port_filter.bpf.c"], into: files.path)
        let result = try bpftree(["apply", "-f", files.path + "/bad.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path])
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("bad.yaml:11:") && result.output.contains("spec.entries.xdp.program.\(field)"), "\(result.output)")
        #expect(result.output.contains(message), "\(result.output)")
        #expect(try fs.snapshot() == before)
    }
}
