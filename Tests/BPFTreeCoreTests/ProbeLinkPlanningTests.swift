import BPFTreeCore
import Testing

/// Tracepoint, raw tracepoint, uprobe, kprobe and tracing links: decoded with their places, checked
/// against their programs, and compared with what bpf_link_info reports.
@Suite struct ProbeLinkPlanningTests {
    static func text(_ link: String, program: String = "{object: p.o, name: probe}") -> String {
        """
        apiVersion: bpftree/v1
        kind: Tree
        metadata: {name: probes}
        spec:
          root: tracing/p
          entries:
            probe: {program: \(program), onIncompatible: replace}
            hook: {link: {program: tracing/p/probe, \(link)}, onIncompatible: replace}
        """
    }

    /// The link of `text`, its target not resolved.
    static func link(_ text: String) throws -> ResolvedLink {
        let tree = try desired(text)
        guard case .link(let spec)? = tree[path("tracing/p/hook")]?.kind else { throw Failure(description: "no link") }
        return ResolvedLink(spec)
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    @Test(arguments: [
        ("tracepoint: sched/sched_process_exec", LinkTarget.probe(.tracepoint(category: "sched", name: "sched_process_exec")), UInt32(7), AttachType.perfEvent),
        ("rawTracepoint: sched_switch", .tracing(.rawTracepoint("sched_switch")), 1, .traceRawTP),
        ("uprobe: {binary: /bin/bash, symbol: readline}", .probe(.uprobe(UprobeTarget(binary: "/bin/bash", symbol: "readline"))), 7, .perfEvent),
        ("uprobe: {binary: /lib/libc.so.6, offset: 0x1234, pid: 42, return: true}",
         .probe(.uprobe(UprobeTarget(binary: "/lib/libc.so.6", symbol: nil, offset: 0x1234, pid: 42, isReturn: true))), 7, .perfEvent),
        ("uprobe: {binary: /bin/app, symbols: [\"handle_*\", main], pid: 7}",
         .multiProbe(.uprobe(UprobeMultiTarget(binary: "/bin/app", symbols: ["handle_*", "main"], pid: 7))), 12, .traceUprobeMulti),
        ("kprobe: {functions: [\"tcp_*\"], return: true}", .multiProbe(.kprobe(KprobeMultiTarget(functions: ["tcp_*"], isReturn: true))), 8, .traceKprobeMulti),
        ("kprobe: {function: tcp_connect, offset: 4}", .probe(.kprobe(KprobeTarget(function: "tcp_connect", offset: 4))), 7, .perfEvent),
        ("attachType: trace_fentry", .tracing(.attach(AttachType(name: "trace_fentry")!)), 2, AttachType(name: "trace_fentry")!),
        ("attachType: trace_raw_tp", .tracing(.attach(.traceRawTP)), 1, .traceRawTP),
        ("tracepoint: sched/sched_process_exec, attachType: perf_event",
         .probe(.tracepoint(category: "sched", name: "sched_process_exec")), 7, .perfEvent),
    ])
    func probeTargetsDecode(field: String, target: LinkTarget, type: UInt32, attach: AttachType) throws {
        let spec = try Self.link(Self.text(field)).spec
        #expect(spec.target == target && spec.kernelType == type && spec.attachType == attach, "\(spec.target)")
        #expect(!spec.updatable && !spec.exclusive)
    }

    @Test(arguments: [
        ("tracepoint: sched_process_exec", "spec.entries.hook.link.tracepoint", "write CATEGORY/NAME as tracefs lists it"),
        ("tracepoint: sched/../x", "spec.entries.hook.link.tracepoint", "is not a tracepoint"),
        ("rawTracepoint: sched/sched_switch", "spec.entries.hook.link.rawTracepoint", "write its name alone"),
        ("uprobe: {binary: bin/bash, symbol: readline}", "spec.entries.hook.link.uprobe.binary", "must be the absolute path"),
        ("uprobe: {binary: /bin/bash}", "spec.entries.hook.link.uprobe", "a uprobe needs symbol"),
        ("uprobe: {binary: /bin/bash, symbol: readline, pid: 0}", "spec.entries.hook.link.uprobe.pid", "pid 0 is no process"),
        ("uprobe: {binary: /bin/bash, symbol: 'read line'}", "spec.entries.hook.link.uprobe.symbol", "not a function's symbol name"),
        ("uprobe: {binary: /bin/bash, symbol: readline, retprobe: true}", "spec.entries.hook.link.uprobe.retprobe", "unknown field 'retprobe'"),
        ("uprobe: {binary: /bin/bash, symbols: [readline], offset: 4}", "spec.entries.hook.link.uprobe.offset", "symbols makes a uprobe_multi link"),
        ("uprobe: {binary: /bin/bash, symbols: []}", "spec.entries.hook.link.uprobe.symbols", "symbols needs at least one pattern"),
        ("uprobe: {binary: /bin/bash, symbols: [readline]}, attachType: perf_event", "spec.entries.hook.link.attachType",
         "a uprobe link's attach type is trace_uprobe_multi"),
        ("kprobe: {functions: [tcp_connect], function: tcp_connect}", "spec.entries.hook.link.kprobe.function", "functions makes a kprobe_multi link"),
        ("kprobe: {offset: 8}", "spec.entries.hook.link.kprobe", "a kprobe needs function"),
        ("kprobe: {function: tcp_connect, offset: 8, return: true}", "spec.entries.hook.link.kprobe.offset", "a kretprobe is on the function's return"),
        ("tracepoint: sched/sched_switch, attachType: xdp", "spec.entries.hook.link.attachType", "a tracepoint link's attach type is perf_event"),
        ("tracepoint: sched/sched_switch, rawTracepoint: sched_switch", "spec.entries.hook.link.rawTracepoint", "not tracepoint and rawTracepoint"),
        ("tracepoint: sched/sched_switch, cgroup: /x", "spec.entries.hook.link.cgroup", "this link is a tracepoint link"),
        ("attachType: perf_event", "spec.entries.hook.link.attachType", "a perf_event link needs one of tracepoint, uprobe or kprobe"),
        ("attachType: trace_fentry, interface: eth0", "spec.entries.hook.link.interface", "this link is a trace_fentry link"),
    ])
    func badProbeFieldsAreRefusedWithTheirPlace(field: String, at: String, message: String) {
        let found = diagnostics(Self.text(field)).map(\.description)
        #expect(found.contains { $0.contains(at) && $0.contains(message) && $0.contains("m.yaml:8:") }, "\(found)")
    }

    /// The tree as the kernel layer resolves it: the program loaded as `type`/`attach` from `section`.
    static func problems(_ link: String, type: ProgramType, attach: UInt32 = 0, section: String) throws -> [String] {
        let tree = ResolvedTree(try desired(Self.text(link))) { _ in
            ProgramImage(tag: 1, type: type.kernelValue, expectedAttachType: attach, name: "probe", section: section)
        }
        return tree.linkProblems().map(\.description)
    }

    @Test func eachProbeLinkNeedsItsProgramType() throws {
        #expect(try Self.problems("tracepoint: sched/sched_switch", type: .tracepoint, section: "tp/sched/sched_switch").isEmpty)
        #expect(try Self.problems("rawTracepoint: sched_switch", type: .rawTracepoint, section: "raw_tp/sched_switch").isEmpty)
        #expect(try Self.problems("uprobe: {binary: /bin/bash, symbol: readline}", type: .kprobe, section: "uprobe").isEmpty)
        #expect(try Self.problems("attachType: trace_raw_tp", type: .tracing, attach: 23, section: "tp_btf/sched_switch").isEmpty)
        let wrong = try Self.problems("tracepoint: sched/sched_switch", type: .rawTracepoint, section: "raw_tp/sched_switch")
        #expect(wrong.count == 1 && wrong[0].contains("'tracing/p/probe' is a raw_tracepoint program (section 'raw_tp/sched_switch'); a tracepoint link needs a tracepoint program")
                && wrong[0].contains("spec.entries.hook.link.program"), "\(wrong)")
        let btf = try Self.problems("rawTracepoint: sched_switch", type: .tracing, attach: 23, section: "tp_btf/sched_switch")
        #expect(btf.count == 1 && btf[0].contains("a tp_btf program takes attachType: trace_raw_tp"), "\(btf)")
        let fexit = try Self.problems("attachType: trace_fentry", type: .tracing, attach: 25, section: "fexit/do_nanosleep")
        #expect(fexit.count == 1 && fexit[0].contains("loaded for trace_fexit; this link is trace_fentry"), "\(fexit)")
    }

    /// bpf_link_info of a uprobe link: its kind, file and file offset; the pid is not reported.
    @Test func aUprobeLinkIsComparedByKindFileAndOffset() throws {
        var spec = try Self.link(Self.text("uprobe: {binary: /bin/bash, symbol: readline, return: true}"))
        spec.resolution = .uprobe(file: "/usr/bin/bash", offset: 0x1000, identity: "")
        var probe = ProbeLink.Live(kind: PerfEventKind.uretprobe.rawValue, name: "/usr/bin/bash", offset: 0x1000)
        var live: LiveLinkInfo { LiveLinkInfo(id: 1, type: 7, programID: 5, details: .probe(probe)) }
        #expect(spec.differences(from: live, programID: 5).isEmpty)
        probe.offset = 0x2000
        #expect(spec.differences(from: live, programID: 5).map(\.field) == ["uprobe.symbol"])
        probe.kind = PerfEventKind.uprobe.rawValue
        #expect(spec.differences(from: live, programID: 5).map { "\($0.field) \($0.declared) \($0.live)" } == ["event uretprobe uprobe"])
        spec.resolution = .uprobe(file: "/usr/bin/bash", offset: 0x1000, identity: "8:42")
        #expect(spec.unobserved?.field == "uprobe" && spec.unobserved?.value == "/bin/bash as it is now (device:inode 8:42), in every process")
        var replaced = spec
        replaced.resolution = .uprobe(file: "/usr/bin/bash", offset: 0x1000, identity: "8:43")
        #expect(replaced.fingerprint != spec.fingerprint, "a replaced binary makes the link again")
    }

    @Test func aTracepointLinkIsComparedByName() throws {
        let spec = try Self.link(Self.text("tracepoint: sched/sched_process_exec"))
        var live = LiveLinkInfo(id: 1, type: 7, programID: 5, details: .probe(ProbeLink.Live(kind: PerfEventKind.tracepoint.rawValue, name: "sched_process_exec")))
        #expect(spec.differences(from: live, programID: 5).isEmpty)
        live.details = .probe(ProbeLink.Live(kind: PerfEventKind.tracepoint.rawValue, name: "sched_switch"))
        #expect(spec.differences(from: live, programID: 5).map(\.field) == ["tracepoint"])
        let raw = try Self.link(Self.text("rawTracepoint: sched_process_exec"))
        #expect(raw.differences(from: LiveLinkInfo(id: 1, type: 7, programID: 5), programID: 5).map(\.field) == ["type"])
    }
}
