import BPFTreeCore
import Testing

/// Reading a bpffs mount's delegate_* options and checking a tree against them: pure values.
struct DelegationTests {
    @Test func aMountinfoLineGivesTheMountAndItsOptions() throws {
        let line = "63 43 0:39 / /tmp/a\\040b rw,relatime shared:5 - bpf none rw,uid=100000,delegate_cmds=map_create:prog_load,delegate_attachs=any"
        let mount = try #require(MountInfo(line: line))
        #expect(mount.mountID == 63 && mount.mountPoint == "/tmp/a b" && mount.fileSystemType == "bpf")
        #expect(mount.superOptions == "rw,uid=100000,delegate_cmds=map_create:prog_load,delegate_attachs=any")
        #expect(MountInfo(line: "63 43 0:39 / /tmp rw") == nil)
        #expect(MountInfo.parse("garbage\n" + line + "\n").map(\.mountID) == [63])
    }

    @Test func delegateOptionsAreReadAsTheKernelShowsThem() {
        let delegation = BPFDelegation(superOptions: "rw,uid=100000,delegate_cmds=map_create:prog_load,delegate_maps=hash:array,delegate_progs=0x1f,delegate_attachs=any")
        #expect(delegation.commands == .only(["map_create", "prog_load"]))
        #expect(delegation.maps == .only(["hash", "array"]))
        #expect(delegation.programs == .unknown)
        #expect(delegation.attachTypes == .any)
        #expect(delegation.isDelegated)
        #expect(delegation.allows(.maps, "array") && !delegation.allows(.maps, "lru_hash"))
        #expect(delegation.allows(.programs, "xdp"), "a mask the kernel printed as a number is left to the kernel")
        #expect(!BPFDelegation(superOptions: "rw,relatime").isDelegated)
    }

    @Test func bpftreeNeedsAreNamedWithTheirPurpose() {
        let all = BPFDelegation(commands: .any, maps: .any, programs: .any, attachTypes: .any)
        #expect(DelegationCheck.missingBPFTreeNeeds(all).isEmpty)
        let partial = BPFDelegation(commands: .only(["map_create", "prog_load"]), maps: .any, programs: .only(["syscall"]),
                                    attachTypes: .any)
        #expect(DelegationCheck.missingBPFTreeNeeds(partial) == [
            "command btf_load not delegated on this bpffs (delegate_cmds=map_create:prog_load), needed for the batch program's BTF (its bpf_loop callback)",
            "program type socket_filter not delegated on this bpffs (delegate_progs=syscall), needed for libbpf's probes of kernel features",
        ])
        #expect(DelegationCheck.missingBPFTreeNeeds(BPFDelegation()).count == DelegationCheck.bpftreeNeeds.count)
    }

    @Test func eachUndelegatedMapAndProgramTypeIsADiagnosticAtItsEntry() throws {
        let tree = try desired("""
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: t}
            spec:
              root: app
              entries:
                config: {map: {type: array, keySize: 4, valueSize: 4, maxEntries: 1}}
                flows: {map: {type: lru_hash, keySize: 8, valueSize: 8, maxEntries: 64}}
                count:
                  program: {object: o.bpf.o, name: count, type: cgroup_skb, attachType: cgroup_inet_egress}
                ingress:
                  link: {program: app/count, cgroup: /sys/fs/cgroup/a, attachType: cgroup_inet_ingress}
                egress:
                  link: {program: app/count, cgroup: /sys/fs/cgroup/a, attachType: cgroup_inet_egress}
            """)
        let delegation = BPFDelegation(commands: .any, maps: .only(["array", "hash"]), programs: .only(["syscall"]),
                                       attachTypes: .only(["cgroup_inet_ingress"]))
        let found = DelegationCheck.violations(tree, delegation).map(\.description).sorted()
        #expect(found == [
            "m0.yaml:13:5: spec.entries.egress.link.attachType: app/egress: attach type cgroup_inet_egress not delegated on this bpffs (delegate_attachs=cgroup_inet_ingress)",
            "m0.yaml:8:5: spec.entries.flows.map.type: app/flows: map type lru_hash not delegated on this bpffs (delegate_maps=array:hash)",
            "m0.yaml:9:5: spec.entries.count.program.attachType: app/count: attach type cgroup_inet_egress not delegated on this bpffs (delegate_attachs=cgroup_inet_ingress)",
            "m0.yaml:9:5: spec.entries.count.program.type: app/count: program type cgroup_skb not delegated on this bpffs (delegate_progs=syscall)",
        ])
        #expect(DelegationCheck.violations(tree, BPFDelegation(commands: .any, maps: .any, programs: .any, attachTypes: .any)).isEmpty)
    }

    @Test func aRefusedLoadIsExplainedOnlyByWhatTheDelegationLacks() {
        let delegation = BPFDelegation(commands: .any, maps: .any, programs: .only(["syscall", "tracing"]), attachTypes: .any)
        #expect(DelegationCheck.refusal(type: .cgroupSKB, attach: .cgroupInetEgress, delegation)
            == "program type cgroup_skb not delegated on this bpffs (delegate_progs=syscall:tracing)")
        #expect(DelegationCheck.refusal(type: .tracing, attach: .traceIter, delegation) == nil)
    }
}
