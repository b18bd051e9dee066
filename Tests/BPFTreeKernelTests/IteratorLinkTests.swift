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
}
