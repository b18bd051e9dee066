import Foundation
import Glibc
import Testing

/// Debian xdp-tools' BPF objects (installed by scripts/install-deps.sh): programs nobody here wrote.
enum XDPTools {
    static let objects = "/usr/lib/x86_64-linux-gnu/bpf"
    /// Declares `xdp_stats_map` and `filter_ethernet` with `__uint(pinning, LIBBPF_PIN_BY_NAME)`.
    static let denyEthernet = objects + "/xdpfilt_dny_eth.o"
}

/// Runs `script` with `sh -c` in a new private mount namespace whose /sys/fs/bpf is a new, empty bpffs;
/// "$1" is the bpftree executable. Prints `SYSFSBPF:` and the names in /sys/fs/bpf at the end.
func inPrivateSysFSBPF(_ script: String) throws -> RunResult {
    try run(["unshare", "--mount", "--propagation", "private", "sh", "-c", """
        mount -t bpf bpf /sys/fs/bpf || exit 99
        \(script)
        status=$?
        echo "SYSFSBPF:$(ls -A /sys/fs/bpf | grep -v -e '^maps.debug$' -e '^progs.debug$' | tr '\\n' ' ')"
        exit $status
        """, "sh", bpftreeExecutable], environment: ["NO_COLOR": "1"])
}

/// Objects whose maps ask libbpf to pin them by name must never reach a path outside the anchor.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct ForeignObjectTests {
    static func manifest() -> String {
        """
        apiVersion: bpftree/v1
        kind: Tree
        metadata: {name: filter}
        spec:
          root: jobs/filter
          entries:
            stats: {map: {type: percpu_array, keySize: 4, valueSize: 16, maxEntries: 5}}
            ethernet: {map: {type: percpu_hash, keySize: 6, valueSize: 8, maxEntries: 10000}}
            deny:
              program:
                object: \(XDPTools.denyEthernet)
                name: xdpfilt_dny_eth
                maps: {xdp_stats_map: jobs/filter/stats, filter_ethernet: jobs/filter/ethernet}
        """
    }

    @Test func pinByNameMapsOfAnObjectNeverLandInSysFSBPF() throws {
        try #require(FileManager.default.fileExists(atPath: XDPTools.denyEthernet), "xdp-tools is not installed")
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["m.yaml": Self.manifest(), "policy.yaml": policyText("      prune: owned")])
        let args = "-f \(files.path)/m.yaml --policy \(files.path)/policy.yaml --anchor \(fs.path)"
        let diff = try inPrivateSysFSBPF("\"$1\" diff \(args)")
        #expect(diff.status == 2, "\(diff.output)")
        #expect(diff.stdout.hasSuffix("SYSFSBPF:\n"), "libbpf pinned outside the anchor: \(diff.output)")
        let apply = try inPrivateSysFSBPF("\"$1\" apply \(args) && \"$1\" diff \(args)")
        #expect(apply.status == 0, "\(apply.output)")
        #expect(apply.stdout.contains("No changes."), "a second pass finds drift: \(apply.output)")
        #expect(apply.stdout.hasSuffix("SYSFSBPF:\n"), "libbpf pinned outside the anchor: \(apply.output)")

        // The program uses the declared pins' maps, as bpftool sees them.
        let program = try pinned("prog", fs.at("jobs/filter/deny"))
        let ids = program["map_ids"] as? [Int] ?? []
        for map in ["stats", "ethernet"] {
            let id = try mapInfo(fs.at("jobs/filter/\(map)"))["id"] as? Int
            #expect(id.map(ids.contains) == true, "\(map) (id \(id ?? -1)) not in \(ids)")
        }
    }

    @Test func withoutABPFFSAtSysFSBPFTheObjectStillLoads() throws {
        try #require(FileManager.default.fileExists(atPath: XDPTools.denyEthernet), "xdp-tools is not installed")
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["m.yaml": Self.manifest(), "policy.yaml": policyText("      prune: owned")])
        // A tmpfs over /sys/fs/bpf: libbpf's pinning would fail there with "not a bpffs".
        let result = try run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                              "mount -t tmpfs none /sys/fs/bpf && \"$1\" apply -f \"$2\" --policy \"$3\" --anchor \"$4\"",
                              "sh", bpftreeExecutable, files.path + "/m.yaml", files.path + "/policy.yaml", fs.path])
        #expect(result.status == 0, "\(result.output)")
        #expect(try listing(fs.path, format: "%P %y") == ["jobs d", "jobs/filter d", "jobs/filter/deny f",
                                                          "jobs/filter/ethernet f", "jobs/filter/stats f"])
    }
}
