@testable import BPFTreeKernel
import BPFTreeCore
import Testing

/// Every link family has its kernel-layer code (`Kernel/Links/`): a family added to Core without it
/// would be refused at its place with "no kernel code", never attached.
struct KernelLinkTests {
    static let oneOfEachFamily: [LinkTarget] = [
        .cgroup(CgroupLink(attach: .cgroupInetEgress, cgroup: "/job")),
        .netDevice(NetDeviceLink(interface: "veth0", hook: .xdp(nil))),
        .netns(NetnsLink(attach: .skLookup, namespace: "/run/netns/a")),
        .probe(.tracepoint(category: "sched", name: "sched_switch")),
        .multiProbe(.kprobe(KprobeMultiTarget(functions: ["tcp_*"]))),
        .tracing(.rawTracepoint("sched_switch")),
        .iterator(.plain("task", nil)),
        .netfilter(NetfilterHook(family: .ipv4, hook: .input, priority: 1)),
        .sockmap(SockmapLink(attach: AttachType.sockmap[0], map: TreePath(joined: "socks"))),
    ]

    @Test func everyFamilyHasKernelCode() {
        for target in Self.oneOfEachFamily {
            #expect(target.familyValue is any KernelLink, "\(target)")
        }
    }
}
