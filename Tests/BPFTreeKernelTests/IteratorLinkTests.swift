import Foundation
import Glibc
import Testing

/// Iterator links of targets that take no parameters (here `task`), against the real kernel.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct IteratorLinkTests {
    /// examples/task-iter and policies/tracing.yaml, with `iter: task` replaced by `iter`.
    private func files(iter: String = "task") throws -> ManifestDirectory {
        let example = try String(contentsOfFile: repositoryRoot + "/examples/task-iter/task-iter.yaml", encoding: .utf8)
        let policy = try String(contentsOfFile: repositoryRoot + "/policies/tracing.yaml", encoding: .utf8)
        let files = try ManifestDirectory(["task-iter.yaml": example.replacingOccurrences(of: "iter: task}", with: "iter: \(iter)}"),
                                           "policy.yaml": policy])
        try buildBPF([repositoryRoot + "/bpf/task_iter.bpf.c"], into: files.path)
        return files
    }

    @Test func aTaskIteratorListsThisProcessIsANoOpAgainAndIsPrunedWhenUndeclared() throws {
        let fs = try ScratchBPFFS()
        let files = try files()
        let args = ["-f", files.path + "/task-iter.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftree(["apply"] + args)
        #expect(applied.status == 0, "\(applied.output)")
        let program = try pinned("prog", fs.at("tracing/tasks/list_tasks"))
        let link = try pinned("link", fs.at("tracing/tasks/all"))
        #expect(link["type"] as? String == "iter" && link["target_name"] as? String == "task", "\(link)")
        #expect(link["prog_id"] as? Int == program["id"] as? Int)

        // It does its job: reading the pin runs the iterator, which lists this very process.
        let listing = try String(contentsOfFile: fs.at("tracing/tasks/all"), encoding: .utf8)
        let pid = getpid()
        #expect(listing.split(separator: "\n").contains { $0.hasPrefix("\(pid) \(pid) ") }, "\(listing.prefix(500))")

        #expect(try bpftree(["diff"] + args).status == 0)

        // No longer declared: the link goes, the program stays.
        let example = try String(contentsOfFile: files.path + "/task-iter.yaml", encoding: .utf8)
        try example.components(separatedBy: "    all:")[0].write(toFile: files.path + "/task-iter.yaml", atomically: true, encoding: .utf8)
        let pruned = try bpftree(["apply"] + args)
        #expect(pruned.status == 0, "\(pruned.output)")
        #expect(!FileManager.default.fileExists(atPath: fs.at("tracing/tasks/all")))
        #expect(FileManager.default.fileExists(atPath: fs.at("tracing/tasks/list_tasks")))
    }

    /// The kernel takes an iterator's target from its program: a link declared over another target would
    /// be made over the program's and differ on every pass, so it is refused before anything changes.
    @Test func anIteratorOverAnotherTargetThanItsProgramsIsRefusedWithItsPlace() throws {
        let fs = try ScratchBPFFS()
        let files = try files(iter: "bpf_map")
        let result = try bpftree(["apply", "-f", files.path + "/task-iter.yaml", "--policy", files.path + "/policy.yaml",
                                  "--anchor", fs.path])
        #expect(result.status == 1)
        #expect(result.output.contains("task-iter.yaml:17:"), "\(result.output)")
        #expect(result.output.contains("spec.entries.all.link.program"), "\(result.output)")
        #expect(result.output.contains("is an iterator over task; this link is an iterator over bpf_map"), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: fs.at("tracing")))
    }

    /// `pid: N` makes a task iterator walk that one process (`bpf_iter_link_info.task`); the kernel reports
    /// it in `bpf_link_info`, so another pid is found as drift; a process that does not exist is refused.
    @Test func aTaskIteratorOfOneProcessListsOnlyItsThreads() throws {
        let fs = try ScratchBPFFS()
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["30"]
        try sleeper.run()
        defer { sleeper.terminate() }
        let pid = sleeper.processIdentifier
        let files = try files(iter: "task, pid: \(pid)")
        let args = ["-f", files.path + "/task-iter.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let applied = try bpftree(["apply"] + args)
        #expect(applied.status == 0 && applied.output.contains("over task of process \(pid)"), "\(applied.output)")
        let lines = try String(contentsOfFile: fs.at("tracing/tasks/all"), encoding: .utf8).split(separator: "\n")
        #expect(!lines.isEmpty && lines.allSatisfy { $0.hasPrefix("\(pid) ") }, "\(lines.prefix(5))")
        #expect(try bpftree(["diff"] + args).status == 0)

        // Declared for another process: the live link walks this one, so it differs and is made again.
        let other = getpid()
        let moved = try files.path + "/task-iter.yaml"
        try String(contentsOfFile: moved, encoding: .utf8).replacingOccurrences(of: "pid: \(pid)", with: "pid: \(other)")
            .write(toFile: moved, atomically: true, encoding: .utf8)
        let drift = try bpftree(["diff"] + args)
        #expect(drift.status == 2 && drift.output.contains("pid: declared process \(other), live process \(pid)"), "\(drift.output)")
        #expect(try bpftree(["apply"] + args).status == 0)
        let listed = try String(contentsOfFile: fs.at("tracing/tasks/all"), encoding: .utf8).split(separator: "\n")
        #expect(listed.allSatisfy { $0.hasPrefix("\(other) ") }, "\(listed.prefix(5))")

        // A process that is not there is refused with its place, before anything changes.
        let gone = try ScratchBPFFS()
        let missing = try self.files(iter: "task, pid: 2147483646")
        let result = try bpftree(["apply", "-f", missing.path + "/task-iter.yaml", "--policy", missing.path + "/policy.yaml", "--anchor", gone.path])
        #expect(result.status == 1 && result.output.contains("task-iter.yaml:17:") && result.output.contains("spec.entries.all.link.pid"), "\(result.output)")
        #expect(result.output.contains("no process 2147483646"), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: gone.at("tracing")))

        // A thread of this test process given as a pid: refused, naming its process, and nothing made.
        let own = getpid()
        let thread = try #require(try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap(Int32.init).first { $0 != own })
        let threaded = try self.files(iter: "task, pid: \(thread)")
        let refused = try bpftree(["apply", "-f", threaded.path + "/task-iter.yaml", "--policy", threaded.path + "/policy.yaml", "--anchor", gone.path])
        #expect(refused.status == 1 && refused.output.contains("task-iter.yaml:17:"), "\(refused.output)")
        #expect(refused.output.contains("\(thread) is a thread of process \(own), not a process: declare tid: \(thread)"), "\(refused.output)")
        #expect(!FileManager.default.fileExists(atPath: gone.at("tracing")))
    }
}
