import Foundation
import Glibc
import Testing

/// libbpf-bootstrap's `bootstrap` example (Tests/Fixtures/libbpf-bootstrap, nobody here wrote it),
/// compiled as its Makefile does and declared as a user porting its skeleton code would: both tracepoint
/// programs from one object, `min_duration_ns` set through `globals`.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct LibbpfBootstrapTests {
    static let manifest = """
        apiVersion: bpftree/v1
        kind: Tree
        metadata: {name: bootstrap}
        spec:
          root: tracing/bootstrap
          entries:
            handle_exec:
              program: {object: bootstrap.bpf.o, name: handle_exec, globals: {min_duration_ns: 1000000}}
            handle_exit:
              program: {object: bootstrap.bpf.o, name: handle_exit, globals: {min_duration_ns: 1000000}}
            exec:
              link: {program: tracing/bootstrap/handle_exec, tracepoint: sched/sched_process_exec}
            exit:
              link: {program: tracing/bootstrap/handle_exit, tracepoint: sched/sched_process_exit}

        """

    /// Compiles the fixture into `directory` against a vmlinux.h of the running kernel.
    private func build(into directory: String) throws {
        let fixture = repositoryRoot + "/Tests/Fixtures/libbpf-bootstrap"
        for file in ["bootstrap.bpf.c", "bootstrap.h"] {
            try FileManager.default.copyItem(atPath: "\(fixture)/\(file)", toPath: "\(directory)/\(file)")
        }
        let vmlinux = try run([KernelSupport.bpftool, "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"])
        try #require(vmlinux.status == 0, "\(vmlinux.stderr)")
        try vmlinux.stdout.write(toFile: directory + "/vmlinux.h", atomically: true, encoding: .utf8)
        // Their Makefile's flags; their code is not held to this project's -Werror.
        let built = try run([repositoryRoot + "/scripts/build-bpf.sh", directory, directory + "/bootstrap.bpf.c"],
                            environment: ["BPF_CFLAGS": "-D__TARGET_ARCH_x86 -I\(directory) -Wno-error -w"])
        try #require(built.status == 0, "\(built.output)")
    }

    /// The pids (u32 keys) in the hash map `id`.
    private func pids(_ id: Int) throws -> Set<Int32> {
        let dump = try #require(try bpftool(["map", "dump", "id", "\(id)"]) as? [[String: Any]])
        return Set(dump.map { entry in
            let bytes = (entry["key"] as? [String] ?? []).compactMap { UInt8($0.dropFirst(2), radix: 16) }
            return Int32(bitPattern: bytes.prefix(4).reversed().reduce(0) { $0 << 8 | UInt32($1) })
        })
    }

    @Test func bootstrapsTwoProgramsShareTheirMapsAndReadTheirGlobal() throws {
        try mountTracefs()
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["bootstrap.yaml": Self.manifest,
                                           "policy.yaml": try String(contentsOfFile: repositoryRoot + "/policies/tracing.yaml", encoding: .utf8)])
        try build(into: files.path)
        let args = ["-f", files.path + "/bootstrap.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftree(["apply"] + args)
        try #require(applied.status == 0, "\(applied.output)")
        #expect(try bpftree(["diff"] + args).status == 0)

        // One load: both hold exec_start, rb and .rodata, and .rodata says what the manifest set.
        let exec = Set(try pinned("prog", fs.at("tracing/bootstrap/handle_exec"))["map_ids"] as? [Int] ?? [])
        let exit = Set(try pinned("prog", fs.at("tracing/bootstrap/handle_exit"))["map_ids"] as? [Int] ?? [])
        #expect(exec.count == 3 && exec == exit, "\(exec) and \(exit)")
        var names: [String: Int] = [:]
        for id in exec {
            let info = try #require(try bpftool(["map", "show", "id", "\(id)"]) as? [String: Any])
            names[info["name"] as? String ?? ""] = id
        }
        let rodata = try #require(names.first { $0.key.hasSuffix(".rodata") }?.value, "\(names)")
        let dump = try #require(try bpftool(["map", "dump", "id", "\(rodata)"]) as? [[String: Any]])
        let formatted = (dump.first?["formatted"] as? [String: Any])?["value"] as? [String: Any]
        #expect((formatted?[".rodata"] as? [[String: Any]])?.first?["min_duration_ns"] as? Int == 1_000_000, "\(dump)")

        // handle_exec records a process's start in exec_start; handle_exit, the other program, finds it
        // there and deletes it: only one map shared by both makes the entry go.
        let table = try #require(names["exec_start"], "\(names)")
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["1"]
        try sleeper.run()
        let pid = sleeper.processIdentifier
        #expect(try eventually(within: 2) { try pids(table).contains(pid) }, "handle_exec recorded \(pid)")
        sleeper.waitUntilExit()
        #expect(try eventually(within: 2) { try !pids(table).contains(pid) }, "handle_exit removed \(pid) from the same map")
    }
}
