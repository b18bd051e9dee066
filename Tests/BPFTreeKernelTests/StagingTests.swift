import BPFTreeCore
import BPFTreeKernel
import BPFTreeTestSupport
import Foundation
import Glibc
import Testing

/// New objects are staged and committed together: a refusal leaves the tree as it was, a kill never
/// lets bpftree claim what it did not make, and a directory's mode and owner come after its children.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct StagingTests {
    static let prune = policyText("      prune: owned")

    @Test func aMapTheKernelRefusesLeavesTheTreeAsItWas() throws {
        let fs = try ScratchBPFFS()
        try FileManager.default.createDirectory(atPath: fs.at("jobs/A"), withIntermediateDirectories: true)
        try pinMapWithBpftool(fs.at("jobs/A/existing"), type: "array", key: 4, value: 4, entries: 1, name: "existing")
        // NUMA node 200 does not exist: validation cannot know, the kernel refuses the last map.
        let files = try ManifestDirectory(["m.yaml": manifest("""
                new: {directory: {entries: {inner: {directory: {entries: {a: {map: {type: array, valueSize: 8, maxEntries: 4}}}}}}}}
                b: {map: {type: hash, keySize: 4, valueSize: 8, maxEntries: 4, contents: [{key: 1, value: 2}]}}
                z: {map: {type: hash, keySize: 4, valueSize: 8, maxEntries: 4, numaNode: 200}}
            """), "policy.yaml": Self.prune])
        // Entries with mode, owner and inode (the directory's ctime moves with the staging names).
        func tree() throws -> [String] { try listing(fs.path, format: "%P %y %m %U %G %i") }
        let before = try tree()
        let result = try bpftree(["apply", "-f", files.path + "/m.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path])
        #expect(result.status == 1, "\(result.output)")
        #expect(result.stdout.contains("FAILED") && result.output.contains("jobs/A/z"), "\(result.output)")
        #expect(result.stdout.contains("(declared at \(files.path)/m.yaml:9:5, spec.entries.z)"), "\(result.output)")
        #expect(try tree() == before, "the tree changed: \(result.output)")
        // Nothing is left for the next run to settle either.
        let ledger = try #require(try bpftool(["map", "dump", "pinned", fs.at("bpftree_ledger")]) as? [Any])
        #expect(ledger.isEmpty, "\(ledger)")
    }

    @Test func contentsLargerThanOneBatchRunAreAllWritten() throws {
        let fs = try ScratchBPFFS()
        let count = 10_000
        let contents = (0..<count).map { "{key: \($0), value: \($0 * 3)}" }.joined(separator: ", ")
        let files = try ManifestDirectory(["m.yaml": manifest("""
                big: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: \(count), contents: [\(contents)], freeze: true}}
            """)])
        let result = try bpftree(["apply", "-f", files.path + "/m.yaml", "--anchor", fs.path])
        #expect(result.status == 0, "\(result.output)")
        let found = try entries(fs.at("jobs/A/big"))
        #expect(found.count == count && found[9_999] == 29_997 && found[0] == 0)
        #expect(try mapInfo(fs.at("jobs/A/big"))["frozen"] as? Int == 1)
    }

    @Test func aDirectoryOwnedByAnotherUserGetsItsPinsWithoutDACOverride() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["m.yaml": manifest("""
                tenant:
                  directory:
                    uid: 1000
                    gid: 1000
                    mode: "0750"
                    entries:
                      stats: {map: {type: array, valueSize: 8, maxEntries: 4}}
                      sub: {directory: {mode: "0550", entries: {deep: {map: {type: array, valueSize: 8, maxEntries: 4}}}}}
                sealed:
                  directory:
                    mode: "0550"
                    entries:
                      config: {map: {type: array, valueSize: 8, maxEntries: 4}}
            """)])
        // The capabilities the shipped units list: no CAP_DAC_OVERRIDE, no CAP_DAC_READ_SEARCH.
        let result = try run(["setpriv", "--inh-caps=-all", "--bounding-set", "-all,+bpf,+sys_admin,+perfmon,+chown,+fowner", "--",
                              bpftreeExecutable, "apply", "-f", files.path + "/m.yaml", "--anchor", fs.path])
        #expect(result.status == 0, "\(result.output)")
        #expect(try listing(fs.at("jobs/A"), format: "%P %y %m %U %G") == [
            "sealed d 550 0 0", "sealed/config f 600 0 0",
            "tenant d 750 1000 1000", "tenant/stats f 600 0 0", "tenant/sub d 550 0 0", "tenant/sub/deep f 600 0 0",
        ])
        #expect(try mapInfo(fs.at("jobs/A/tenant/sub/deep"))["type"] as? String == "array")
    }

    @Test func aLegacyCreatingRecordNeverClaimsAForeignPin() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["v1.yaml": manifest("    kept: {map: {type: array, valueSize: 8, maxEntries: 4}}"),
                                           "policy.yaml": Self.prune])
        let args = ["-f", files.path + "/v1.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        try #require(try bpftree(["apply"] + args).status == 0)
        // What an older bpftree killed mid-create left: `creating`, no inode; then another tool pins there.
        try plantLedgerRecord(fs.at("bpftree_ledger"), key: Array("jobs/A/foreign".utf8), kind: 2, state: 1, inode: 0, manifest: "job-a")
        try pinMapWithBpftool(fs.at("jobs/A/foreign"), type: "hash", key: 4, value: 4, entries: 8, name: "foreign")
        let result = try bpftree(["apply", "--verify"] + args)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdout.contains("jobs/A/foreign: forget ledger record"), "\(result.output)")
        #expect(try mapInfo(fs.at("jobs/A/foreign"))["name"] as? String == "foreign")
        #expect(try bpftree(["apply"] + args).status == 0)
        #expect(FileManager.default.fileExists(atPath: fs.at("jobs/A/foreign")), "a pin bpftree never made was pruned")
    }

    /// The issue's reproduction: apply 300 maps into an existing directory, SIGKILL it, let another tool
    /// pin at every declared path still missing, then apply a manifest that declares none of them.
    @Test func aKilledApplyNeverLetsALaterOnePruneSomeoneElsesPin() throws {
        let maps = 300
        let files = try ManifestDirectory([
            "v1.yaml": manifest((0..<maps).map { "    m\($0): {map: {type: array, valueSize: 8, maxEntries: 4}}" }.joined(separator: "\n")
                                + "\n    keep: {directory: {}}"),
            "v2.yaml": manifest("    keep: {directory: {}}"),
            "policy.yaml": Self.prune,
        ])
        var foreignPinned = 0
        var generator = SystemRandomNumberGenerator()
        for trial in 0..<8 {
            let fs = try ScratchBPFFS()
            let common = ["--policy", files.path + "/policy.yaml", "--anchor", fs.path]
            try #require(try bpftree(["apply", "-f", files.path + "/v2.yaml"] + common).status == 0)
            let victim = Process()
            victim.executableURL = URL(fileURLWithPath: bpftreeExecutable)
            victim.arguments = ["apply", "-f", files.path + "/v1.yaml"] + common
            victim.standardOutput = FileHandle.nullDevice
            victim.standardError = FileHandle.nullDevice
            try victim.run()
            usleep(UInt32.random(in: 20_000...120_000, using: &generator))
            kill(victim.processIdentifier, SIGKILL)
            victim.waitUntilExit()
            // Another tool takes every free declared name (one bpftool batch run).
            let missing = (0..<maps).map { fs.at("jobs/A/m\($0)") }.filter { !FileManager.default.fileExists(atPath: $0) }
            let batch = fs.path + "-foreign.txt"
            try missing.map { "map create \($0) type array key 4 value 4 entries 1 name foreign" }.joined(separator: "\n")
                .write(toFile: batch, atomically: true, encoding: .utf8)
            defer { unlink(batch) }
            if !missing.isEmpty { try #require(try run([KernelSupport.bpftool, "batch", "file", batch]).status == 0) }
            foreignPinned += missing.count
            let pruned = try bpftree(["apply", "-f", files.path + "/v2.yaml"] + common)
            #expect(pruned.status == 0, "trial \(trial): \(pruned.output)")
            for path in missing {
                #expect(FileManager.default.fileExists(atPath: path), "trial \(trial): someone else's \(path) was pruned")
            }
            #expect(try run(["find", fs.path, "-name", "bpftree_tmp_*"]).stdout.isEmpty, "trial \(trial): temporaries left")
        }
        #expect(foreignPinned > 0, "no kill landed before the maps were made")
    }
}

/// A seccomp profile written before Linux 6.6 (podman's default) answers fchmodat2 with ENOSYS.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment))
struct OldSeccompProfileTests {
    /// A C wrapper that installs a seccomp filter refusing fchmodat2 (452) with `errno`, then execs argv[2...].
    static func wrapper(errno: String, in directory: String) throws -> String {
        let source = directory + "/no-fchmodat2.c", binary = directory + "/no-fchmodat2"
        try """
            #include <errno.h>
            #include <linux/filter.h>
            #include <linux/seccomp.h>
            #include <stddef.h>
            #include <stdio.h>
            #include <sys/prctl.h>
            #include <unistd.h>
            int main(int argc, char **argv) {
                struct sock_filter code[] = {
                    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 452, 0, 1),
                    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (\(errno) & SECCOMP_RET_DATA)),
                    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
                };
                struct sock_fprog program = { sizeof(code) / sizeof(code[0]), code };
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program)) {
                    perror("seccomp");
                    return 99;
                }
                execv(argv[1], argv + 1);
                perror("execv");
                return 98;
            }
            """.write(toFile: source, atomically: true, encoding: .utf8)
        let built = try run(["cc", "-O1", "-o", binary, source])
        guard built.status == 0 else { throw HarnessError(description: "cc: \(built.output)") }
        return binary
    }

    @Test(arguments: ["ENOSYS", "EPERM"])
    func modesAreSetWhenFchmodat2IsRefused(_ errno: String) throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["m.yaml": manifest("""
                config: {map: {type: array, valueSize: 8, maxEntries: 4}, mode: "0640"}
                shared: {directory: {mode: "0751", entries: {stats: {map: {type: hash, keySize: 4, valueSize: 8, maxEntries: 4}, mode: "0444"}}}}
            """)])
        let wrapper = try Self.wrapper(errno: errno, in: files.path)
        // fchmodat2 itself is refused under the wrapper: the probe shows the filter works.
        let probe = try run([wrapper, "/usr/bin/python3", "-c", "import ctypes,os; print(ctypes.CDLL(None, use_errno=True).syscall(452, -100, b'/', 0o755, 0), ctypes.get_errno())"])
        #expect(probe.stdout.hasPrefix("-1 "), "\(probe.output)")
        let result = try run([wrapper, bpftreeExecutable, "apply", "-f", files.path + "/m.yaml", "--anchor", fs.path])
        #expect(result.status == 0, "\(result.output)")
        #expect(try listing(fs.at("jobs/A"), format: "%P %m") == ["config 640", "shared 751", "shared/stats 444"])
        #expect(try run([wrapper, bpftreeExecutable, "diff", "-f", files.path + "/m.yaml", "--anchor", fs.path]).status == 0)
    }

    /// A batch run's pins are made on several threads, each stopping at its first refusal: every outcome
    /// says whether its pin exists, and each pin made has the inode find(1) sees.
    @Test func manyPinsAreMadeOnSeveralThreadsAndEachOutcomeIsTrue() throws {
        let fs = try ScratchBPFFS()
        for directory in ["a", "b"] { try FileManager.default.createDirectory(atPath: fs.at(directory), withIntermediateDirectories: false) }
        try pinMapWithBpftool(fs.at("a/source"), type: "array", key: 4, value: 4, entries: 1, name: "source")
        let anchor = try Anchor.open(path: fs.path)
        let ledger = try #require(try LedgerStore.open(anchor, create: true))
        let kernel = LiveKernel(anchor: anchor, ledger: ledger)
        let object = try kernel.openPin(TreePath(["a", "source"]))
        // 120 pins, half in each directory; number 10 goes where no directory is (its opening is refused).
        var paths = (0..<120).map { TreePath([$0 < 60 ? "a" : "b", "p\($0)"]) }
        paths[10] = TreePath(["missing", "p10"])
        let outcomes = kernel.pin(paths.map { (object, $0) })
        #expect(outcomes.count == 120)
        #expect(outcomes[10]?.pinned == false)
        if case .failure(let error)? = outcomes[10]?.status { #expect(error.errno == .noSuchFileOrDirectory, "\(error)") }
        else { Issue.record("pin 10: \(String(describing: outcomes[10]))") }
        let inodes = Dictionary(uniqueKeysWithValues: try listing(fs.path, format: "%P %i").map {
            let parts = $0.split(separator: " ")
            return (String(parts[0]), UInt64(parts[1]) ?? 0)
        })
        for (index, path) in paths.enumerated() where index != 10 {
            let outcome = outcomes[index]
            #expect((outcome == nil) == (inodes[path.description] == nil), "pin \(index)")
            if case .success(let status)? = outcome?.status { #expect(status.inode == inodes[path.description], "pin \(index)") }
        }
        // One run per thread: the first's pins before the refused one were made and the rest not tried;
        // every other run's were made.
        let firstRun = 120 / TreeObserver.availableWorkers
        #expect((0..<10).allSatisfy { outcomes[$0]?.succeeded == true })
        #expect((11..<firstRun).allSatisfy { outcomes[$0] == nil })
        #expect((firstRun..<120).allSatisfy { outcomes[$0]?.succeeded == true })
    }
}
