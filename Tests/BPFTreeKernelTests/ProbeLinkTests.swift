import Foundation
import Glibc
import Testing

/// Mounts tracefs at /sys/kernel/tracing when nothing is there (tracepoint links find their tracepoint
/// through it; a fresh VM boots without it).
func mountTracefs() throws {
    if FileManager.default.fileExists(atPath: "/sys/kernel/tracing/events") { return }
    let mounted = try run(["mount", "-t", "tracefs", "tracefs", "/sys/kernel/tracing"])
    guard mounted.status == 0 else { throw HarnessError(description: "mount tracefs: \(mounted.output)") }
    print("mounted tracefs at /sys/kernel/tracing for tracepoint links")
}

/// The u64 slots of an array map, read with bpftool.
func slots(_ path: String) throws -> [UInt64] { try slots(of: ["pinned", path]) }

/// The u64 slots of the array map bpftool names with `map` (`["id", "12"]`, `["pinned", PATH]`).
func slots(of map: [String]) throws -> [UInt64] {
    let dump = try #require(try bpftool(["map", "dump"] + map) as? [[String: Any]])
    return dump.map { entry in
        let bytes = (entry["value"] as? [String] ?? []).compactMap { UInt8($0.dropFirst(2), radix: 16) }
        return bytes.prefix(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// A small binary of the tests: `adder N` calls `bt_traced_add` N times. `padding` puts a function
/// before it, so that a rebuild moves it.
func buildAdder(into directory: String, padding: Bool = false) throws -> String {
    let pad = padding ? "__attribute__((noinline)) int bt_pad(int a) { __asm__ volatile(\"nop;nop;nop;nop;nop;nop;nop;nop\"); return a * 3; }\n" : ""
    let source = pad + """
        #include <stdlib.h>
        __attribute__((noinline)) int bt_traced_add(int a, int b) { __asm__ volatile(""); return a + b; }
        int main(int argc, char **argv) {
            int n = argc > 1 ? atoi(argv[1]) : 1, s = 0;
            for (int i = 0; i < n; i++) s = bt_traced_add(s, i);
            return s == -1;
        }

        """
    try source.write(toFile: directory + "/adder.c", atomically: true, encoding: .utf8)
    // Built beside it and renamed over it, as a package upgrade installs a binary.
    let built = try run(["gcc", "-O1", "-o", directory + "/adder.new", directory + "/adder.c"])
    guard built.status == 0 else { throw HarnessError(description: "gcc: \(built.output)") }
    guard rename(directory + "/adder.new", directory + "/adder") == 0 else { throw HarnessError(description: "rename adder") }
    return directory + "/adder"
}


/// Tracepoint, raw tracepoint, BTF tracepoint and uprobe links against the real kernel, doing their job
/// (exec()s and a test binary's calls counted), checked with bpftool.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct ProbeLinkTests {
    private var policy: String {
        get throws { try String(contentsOfFile: repositoryRoot + "/policies/tracing.yaml", encoding: .utf8) }
    }

    @Test func tracepointRawAndBTFTracepointLinksCountExecsAreRepairedAndPruned() throws {
        try mountTracefs()
        let fs = try ScratchBPFFS()
        let example = try String(contentsOfFile: repositoryRoot + "/examples/exec-count/exec-count.yaml", encoding: .utf8)
        let files = try ManifestDirectory(["exec.yaml": example, "policy.yaml": try policy])
        try buildBPF([repositoryRoot + "/bpf/exec_count.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/exec.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftree(["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")

        // What the kernel holds, as bpftool sees it: a perf event link and two raw tracepoint links on
        // sched_process_exec, each holding its pinned program.
        for (link, program, type) in [("on_tracepoint", "exec_tracepoint", "perf_event"), ("on_raw", "exec_raw", "raw_tracepoint"),
                                      ("on_btf", "exec_btf", "raw_tracepoint")] {
            let shown = try pinned("link", fs.at("tracing/exec/" + link))
            let loaded = try pinned("prog", fs.at("tracing/exec/" + program))
            #expect(shown["type"] as? String == type && shown["prog_id"] as? Int == loaded["id"] as? Int, "\(link): \(shown)")
            if type == "raw_tracepoint" { #expect(shown["tp_name"] as? String == "sched_process_exec", "\(shown)") }
        }

        // They do their job: every exec is counted three times.
        let before = try slots(fs.at("tracing/exec/execs"))
        for _ in 0..<5 { #expect(try run(["/bin/true"]).status == 0) }
        let after = try slots(fs.at("tracing/exec/execs"))
        #expect(zip(before, after).allSatisfy { $1 >= $0 + 5 } && after.count == 3, "\(before) -> \(after)")

        // A second apply changes nothing.
        #expect(try bpftree(["diff"] + args).status == 0)

        // Removed by hand (these links cannot be detached): diff finds the gap, apply makes the link again.
        #expect(unlink(fs.at("tracing/exec/on_raw")) == 0)
        let drift = try bpftree(["diff"] + args)
        #expect(drift.status == 2 && drift.output.contains("tracing/exec/on_raw"), "\(drift.output)")
        #expect(try bpftree(["apply"] + args).status == 0)
        let repaired = try slots(fs.at("tracing/exec/execs"))
        #expect(try run(["/bin/true"]).status == 0)
        #expect(try slots(fs.at("tracing/exec/execs"))[1] > repaired[1], "the repaired raw tracepoint link counts again")

        // No longer declared: the link goes with its pin, and its program stops counting.
        let without = example.components(separatedBy: "    on_tracepoint:")[0]
            + "    on_raw:" + example.components(separatedBy: "    on_raw:")[1]
        try without.write(toFile: files.path + "/exec.yaml", atomically: true, encoding: .utf8)
        let pruned = try bpftree(["apply"] + args)
        #expect(pruned.status == 0 && pruned.output.contains("tracing/exec/on_tracepoint: remove link"), "\(pruned.output)")
        let stopped = try slots(fs.at("tracing/exec/execs"))
        #expect(try run(["/bin/true"]).status == 0)
        let later = try slots(fs.at("tracing/exec/execs"))
        #expect(later[0] == stopped[0] && later[1] > stopped[1], "\(stopped) -> \(later)")
    }

    @Test func uprobeLinksCountATestBinarysCallsAndFollowItWhenItIsRebuilt() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["policy.yaml": try policy])
        let adder = try buildAdder(into: files.path)
        let example = try String(contentsOfFile: repositoryRoot + "/examples/uprobe-count/uprobe-count.yaml", encoding: .utf8)
        try example.replacingOccurrences(of: "binary: /bin/bash, symbol: readline", with: "binary: \(adder), symbol: bt_traced_add")
            .write(toFile: files.path + "/uprobe.yaml", atomically: true, encoding: .utf8)
        try buildBPF([repositoryRoot + "/bpf/uprobe_count.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/uprobe.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftree(["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")
        #expect(try pinned("link", fs.at("tracing/readline/entered"))["type"] as? String == "perf_event")

        // Calls and returns of bt_traced_add are counted, in a process started after the apply.
        #expect(try run([adder, "7"]).status == 0)
        #expect(try slots(fs.at("tracing/readline/calls")) == [7, 7])
        #expect(try bpftree(["diff"] + args).status == 0)

        // Installed again unchanged (a new file by rename): the links hold the old file, which
        // bpf_link_info does not show; the ledger's digest of the file's identity does.
        _ = try buildAdder(into: files.path)
        let reinstalled = try bpftree(["diff"] + args)
        #expect(reinstalled.status == 2 && reinstalled.output.contains("as it is now (device:inode"), "\(reinstalled.output)")
        #expect(try bpftree(["apply"] + args).status == 0)
        #expect(try run([adder, "3"]).status == 0)
        #expect(try slots(fs.at("tracing/readline/calls")) == [10, 10])

        // Rebuilt, the function moved: diff names the moved symbol, apply makes the links again on it.
        _ = try buildAdder(into: files.path, padding: true)
        let drift = try bpftree(["diff"] + args)
        #expect(drift.status == 2 && drift.output.contains("uprobe.symbol"), "\(drift.output)")
        let repaired = try bpftree(["apply"] + args)
        #expect(repaired.status == 0, "\(repaired.output)")
        #expect(try run([adder, "5"]).status == 0)
        #expect(try slots(fs.at("tracing/readline/calls")) == [15, 15])
        #expect(try bpftree(["diff"] + args).status == 0)
    }

    /// One uprobe_multi link (Linux 6.6) on every function that matches the patterns; a rebuilt binary
    /// moves them, which the offsets' digest in bpf_link_info shows.
    @Test func aUprobeMultiLinkCountsEveryMatchingFunctionAndFollowsARebuild() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["policy.yaml": try policy])
        let adder = try buildAdder(into: files.path)
        try buildBPF([repositoryRoot + "/bpf/uprobe_count.bpf.c"], into: files.path)
        let manifest = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: multi}
            spec:
              root: tracing/multi
              entries:
                calls:
                  map: {type: array, keySize: 4, valueSize: 8, maxEntries: 2}
                count_calls:
                  program: {object: uprobe_count.bpf.o, name: count_calls, attachType: trace_uprobe_multi, maps: {calls: tracing/multi/calls}}
                  onIncompatible: replace
                entered:
                  link:
                    program: tracing/multi/count_calls
                    uprobe: {binary: \(adder), symbols: ["bt_*", main]}
                  onIncompatible: replace

            """
        try manifest.write(toFile: files.path + "/multi.yaml", atomically: true, encoding: .utf8)
        let args = ["-f", files.path + "/multi.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftree(["apply"] + args)
        #expect(applied.status == 0 && applied.output.contains("(2 functions)"), "\(applied.output)")
        #expect(try pinned("link", fs.at("tracing/multi/entered"))["type"] as? Int == 12, "bpftool 7.1 shows uprobe_multi by number")

        // main once and bt_traced_add four times.
        #expect(try run([adder, "4"]).status == 0)
        #expect(try slots(fs.at("tracing/multi/calls")) == [5, 0])
        #expect(try bpftree(["diff"] + args).status == 0)

        // Rebuilt with bt_pad and installed by rename: the link still holds the old, deleted file.
        _ = try buildAdder(into: files.path, padding: true)
        let drift = try bpftree(["diff"] + args)
        #expect(drift.status == 2 && drift.output.contains("uprobe.binary") && drift.output.contains("(deleted)"), "\(drift.output)")
        #expect(try bpftree(["apply"] + args).status == 0)
        #expect(try run([adder, "2"]).status == 0)
        #expect(try slots(fs.at("tracing/multi/calls")) == [8, 0])
    }

    /// Targets that do not exist, and kinds this kernel cannot attach, are refused with the link's
    /// place before anything changes.
    @Test func badProbeTargetsAreRefusedWithTheirPlaceAndNothingChanges() throws {
        try mountTracefs()
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["policy.yaml": try policy])
        try buildBPF([repositoryRoot + "/bpf/exec_count.bpf.c", repositoryRoot + "/bpf/uprobe_count.bpf.c"], into: files.path)
        let cases: [(program: String, link: String, field: String, message: String)] = [
            ("exec_count.bpf.o, name: exec_tracepoint", "tracepoint: sched/bt_no_such_event", "link.tracepoint",
             "this kernel has no tracepoint sched/bt_no_such_event"),
            ("exec_count.bpf.o, name: exec_raw", "rawTracepoint: bt_no_such_event", "link.rawTracepoint",
             "this kernel has no tracepoint bt_no_such_event"),
            ("uprobe_count.bpf.o, name: count_calls", "uprobe: {binary: /bt/no/such/binary, symbol: main}", "link.uprobe", "no such file"),
            ("uprobe_count.bpf.o, name: count_calls", "uprobe: {binary: /bin/true, symbol: bt_no_such_function}", "link.uprobe",
             "no function 'bt_no_such_function' among its symbols"),
            ("uprobe_count.bpf.o, name: count_calls", "uprobe: {binary: \(files.path)/policy.yaml, offset: 16}", "link.uprobe", "not an ELF executable or library"),
            ("exec_count.bpf.o, name: exec_raw", "tracepoint: sched/sched_process_exec", "link.program",
             "a tracepoint link needs a tracepoint program"),
            ("uprobe_count.bpf.o, name: count_calls, attachType: trace_uprobe_multi", "uprobe: {binary: /bin/true, symbols: [bt_none_*]}",
             "link.uprobe", "no function matches 'bt_none_*'"),
            ("uprobe_count.bpf.o, name: count_calls", "uprobe: {binary: /bin/true, symbols: [main]}", "link.program",
             "needs a kprobe program loaded for trace_uprobe_multi"),
            // The same function through a program loaded for uprobe_multi: the kernel's EINVAL, said before anything changes.
            ("uprobe_count.bpf.o, name: count_calls, attachType: trace_uprobe_multi", "uprobe: {binary: /bin/true, symbol: main}", "link.program",
             "loaded for trace_uprobe_multi; a link on one function of a binary (uprobe: {symbol}) needs a kprobe program loaded without it"),
        ]
        var kprobeMessage = "this kernel has no kprobe PMU"
        if FileManager.default.fileExists(atPath: "/sys/bus/event_source/devices/kprobe") { kprobeMessage = "no function bt_no_such_function" }
        let symbols = try String(contentsOfFile: "/proc/kallsyms", encoding: .utf8)
        let multiMessage = symbols.contains(" register_fprobe_ips\n") ? "no kernel function matches 'bt_no_such_*'"
            : "this kernel cannot attach kprobe_multi links (built without CONFIG_FPROBE"
        for (program, link, field, message) in cases + [("uprobe_count.bpf.o, name: count_calls", "kprobe: {function: bt_no_such_function}",
                                                          "link.kprobe", kprobeMessage),
                                                         ("uprobe_count.bpf.o, name: count_calls, attachType: trace_kprobe_multi",
                                                          "kprobe: {functions: [bt_no_such_*]}", "link.kprobe", multiMessage)] {
            let manifest = """
                apiVersion: bpftree/v1
                kind: Tree
                metadata: {name: bad}
                spec:
                  root: tracing/bad
                  entries:
                    prog:
                      program: {object: \(program)}
                    probe:
                      link: {program: tracing/bad/prog, \(link)}

                """
            try manifest.write(toFile: files.path + "/bad.yaml", atomically: true, encoding: .utf8)
            let result = try bpftree(["apply", "-f", files.path + "/bad.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path])
            #expect(result.status == 1, "\(link): \(result.output)")
            #expect(result.output.contains("bad.yaml:10:") && result.output.contains("spec.entries.probe.\(field)"), "\(link): \(result.output)")
            #expect(result.output.contains(message), "\(link): \(result.output)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: fs.path).filter { !$0.hasPrefix("bpftree_") && !$0.hasSuffix(".debug") }.isEmpty,
                    "\(link): nothing changed")
        }
    }

    /// fentry and LSM programs are refused by this kernel (EPERM, as `bpftool prog load` is): the refusal
    /// names the kernel, not libbpf's `ulimit -l` guess, and nothing changes. Where the kernel loads
    /// them, the link is made and found again.
    @Test func fentryAndLSMProgramsAreRefusedByThisKernelWithAClearMessage() throws {
        let fs = try ScratchBPFFS()
        let source = """
            #include <linux/bpf.h>
            #include <bpf/bpf_helpers.h>
            SEC("fentry/do_nanosleep") int on_sleep(void *ctx) { return 0; }
            SEC("lsm/file_open") int on_open(void *ctx) { return 0; }
            char LICENSE[] SEC("license") = "GPL";

            """
        let files = try ManifestDirectory(["policy.yaml": try policy, "trampoline.bpf.c": source])
        try buildBPF([files.path + "/trampoline.bpf.c"], into: files.path)
        for (program, attach) in [("on_sleep", "trace_fentry"), ("on_open", "lsm_mac")] {
            let manifest = """
                apiVersion: bpftree/v1
                kind: Tree
                metadata: {name: trampoline}
                spec:
                  root: tracing/trampoline
                  entries:
                    prog:
                      program: {object: trampoline.bpf.o, name: \(program)}
                    hook:
                      link: {program: tracing/trampoline/prog, attachType: \(attach)}

                """
            try manifest.write(toFile: files.path + "/t.yaml", atomically: true, encoding: .utf8)
            let args = ["-f", files.path + "/t.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
            let bpftoolLoad = try run([KernelSupport.bpftool, "prog", "load", files.path + "/trampoline.bpf.o", fs.at("probe_\(program)")])
            let result = try bpftree(["apply"] + args)
            if bpftoolLoad.status == 0 {
                // This kernel loads them: the link is made, and a second apply changes nothing.
                #expect(unlink(fs.at("probe_\(program)")) == 0)
                #expect(result.status == 0, "\(result.output)")
                #expect(try bpftree(["diff"] + args).status == 0)
                continue
            }
            #expect(result.status == 1, "\(result.output)")
            #expect(result.output.contains("t.yaml:8:") && result.output.contains("spec.entries.prog.program.name"), "\(result.output)")
            #expect(result.output.contains("this kernel refuses programs that attach through a BPF trampoline"), "\(result.output)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: fs.path).filter { !$0.hasPrefix("bpftree_") && !$0.hasSuffix(".debug") }.isEmpty)
        }
    }

    /// An iterator over a declared map's elements (examples/map-dump): this kernel refuses to load
    /// bpf_map_elem iterators (EPERM, as `bpftool prog load` is refused), which the refusal says; where
    /// it loads them, reading the pin prints the map's contents.
    @Test func aMapElementIteratorPrintsTheMapOrIsRefusedByThisKernel() throws {
        let fs = try ScratchBPFFS()
        let example = try String(contentsOfFile: repositoryRoot + "/examples/map-dump/map-dump.yaml", encoding: .utf8)
        let files = try ManifestDirectory(["dump.yaml": example, "policy.yaml": try policy])
        try buildBPF([repositoryRoot + "/bpf/map_dump.bpf.c"], into: files.path)
        let args = ["-f", files.path + "/dump.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let bpftoolLoad = try run([KernelSupport.bpftool, "prog", "load", files.path + "/map_dump.bpf.o", fs.at("probe_dump")])
        let result = try bpftree(["apply"] + args)
        guard bpftoolLoad.status != 0 else {
            #expect(unlink(fs.at("probe_dump")) == 0)
            #expect(result.status == 0, "\(result.output)")
            let dumped = try String(contentsOfFile: fs.at("tracing/counts/dump"), encoding: .utf8)
            #expect(dumped.split(separator: "\n").sorted() == ["1 10", "2 20", "3 30"], "\(dumped)")
            #expect(try bpftree(["diff"] + args).status == 0)
            return
        }
        #expect(result.status == 1 && result.output.contains("dump.yaml:21:") && result.output.contains("this kernel refuses this program"),
                "\(result.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: fs.path).filter { !$0.hasPrefix("bpftree_") && !$0.hasSuffix(".debug") }.isEmpty)
    }
}
