import BPFTreeCore
import BPFTreeTestSupport
import Testing

/// What a plan needs of the process's capabilities (the README's capability table), from plain plans.
@Suite struct CapabilityNeedsTests {
    private let root = ProcessUser(uid: 0, gid: 0)

    private func needs(_ plan: Plan, as user: ProcessUser? = nil) -> [String] {
        plan.capabilityNeeds(of: user ?? root).map { "\($0.capability) \($0.path)" }
    }

    @Test func anEmptyTreeOfProgramsAndLinksNeedsTheirCapabilitiesFirstActionEach() throws {
        let plan = try ProgramLinkPlanningTests.plan(LiveTree(), Ledger())
        // counters (map), count (cgroup_skb: CAP_BPF alone), egress (cgroup link: CAP_NET_ADMIN).
        #expect(needs(plan) == ["CAP_NET_ADMIN jobs/A/egress", "CAP_PERFMON jobs/A/counters", "CAP_BPF jobs/A/counters"])
        let reasons = plan.capabilityNeeds(of: root).map(\.description)
        #expect(reasons.contains { $0.hasPrefix("CAP_PERFMON: jobs/A/counters (declared at m0.yaml:7:5, spec.entries.counters): creating a map by the batch program") },
                "\(reasons)")
    }

    @Test func aConvergedTreeNeedsNothingAndOwnersNeedCAP_CHOWNOnlyForAnotherUserOrGroup() throws {
        let (live, ledger) = ProgramLinkPlanningTests.converged()
        #expect(needs(try ProgramLinkPlanningTests.plan(live, ledger)).isEmpty)

        let entry = path("jobs/A/x")
        let own = Plan(actions: [Action(path: entry, change: .setOwner(from: Owner(uid: 0, gid: 0), to: Owner(uid: 0, gid: 5)))])
        #expect(needs(own) == ["CAP_CHOWN jobs/A/x"])
        #expect(needs(own, as: ProcessUser(uid: 0, gid: 0, groups: [5])).isEmpty, "a group bpftree's user is in")
        let other = Plan(actions: [Action(path: entry, change: .createDirectory(mode: 0o755, owner: Owner(uid: 1000)))])
        #expect(needs(other) == ["CAP_CHOWN jobs/A/x"])
        #expect(needs(other, as: ProcessUser(uid: 1000, gid: 1000)).isEmpty, "its own uid")
        let foreign = Plan(actions: [Action(path: entry, change: .setOwner(from: Owner(uid: 1000, gid: 1000), to: Owner(uid: 1000, gid: 1001)))])
        #expect(needs(foreign, as: ProcessUser(uid: 0, gid: 0, groups: [1001])) == ["CAP_CHOWN jobs/A/x"], "not its file")
        let mode = Plan(actions: [Action(path: entry, change: .setMode(from: 0o600, to: 0o640))])
        #expect(needs(mode).isEmpty)
        // The live entry's owner, where the pass observed it: another user's takes CAP_FOWNER.
        #expect(mode.capabilityNeeds(of: root) { _ in 1000 }.map(\.description) == ["CAP_FOWNER: jobs/A/x: setting mode 0640 on an entry of uid 1000 (bpftree runs as 0)"])
        #expect(mode.capabilityNeeds(of: root) { _ in 0 }.isEmpty)
    }

    @Test func mapAndProgramTypesNeedCAP_NET_ADMINOrCAP_PERFMONAsTheKernelChecksThem() throws {
        #expect(MapType.allCases.filter(\.needsNetAdmin).map(\.rawValue) == ["devmap", "sockmap", "xskmap", "sockhash", "devmap_hash"])
        #expect(ProgramType(name: "xdp")?.needsNetAdmin == true && ProgramType(name: "xdp")?.needsPerfmon == false)
        #expect(ProgramType(name: "cgroup_skb")?.needsNetAdmin == false, "cgroup_skb loads unprivileged; its cgroup link needs CAP_NET_ADMIN")
        #expect(ProgramType(name: "sk_lookup")?.needsNetAdmin == false)
        #expect(ProgramType(name: "tracepoint")?.needsPerfmon == true && ProgramType(name: "netfilter")?.needsNetAdmin == true)
    }

    @Test func CAP_SYS_ADMINPassesTheChecksForCAP_BPFAndCAP_PERFMON() {
        let sysAdmin: UInt64 = 1 << 21
        #expect(Capability.bpf.isHeld(in: sysAdmin) && Capability.perfmon.isHeld(in: sysAdmin))
        #expect(!Capability.netAdmin.isHeld(in: sysAdmin) && !Capability.chown.isHeld(in: sysAdmin))
        #expect(Capability.dacReadSearch.isHeld(in: 1 << 1) && !Capability.dacOverride.isHeld(in: 1 << 2))
        #expect(Capability.allCases.map(\.description).contains("CAP_DAC_READ_SEARCH"))
    }
}
