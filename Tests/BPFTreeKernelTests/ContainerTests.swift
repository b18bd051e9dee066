import Foundation
import Glibc
import Testing

/// A "container": python3 in a new mount namespace with a bpffs mounted at `bpf` under `root`, then
/// chrooted to `root`; `prepare` runs inside before it reports ready. Killed when released.
final class ScratchContainer {
    let root: String
    let process = Process()
    var pid: Int32 { process.processIdentifier }

    init(prepare: String = "") throws {
        root = NSTemporaryDirectory() + "bpftree-container-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root + "/bpf", withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = ["--mount", "--propagation", "private", "python3", "-c", """
            import os, sys, time
            if os.system("mount -t bpf bpf " + sys.argv[1] + "/bpf") != 0: sys.exit("mount failed")
            os.chroot(sys.argv[1]); os.chdir("/")
            \(prepare)
            print("ready", flush=True)
            time.sleep(60)
            """, root]
        try startAndAwaitLine(process, what: "the container")
    }

    deinit {
        kill(pid, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: root)
    }

    /// `path type mode` of every entry of the container's bpffs, seen through /proc/PID/root.
    func shape() throws -> [String] {
        try listing("/proc/\(pid)/root/bpf", format: "%P %y %m")
    }
}

let containerManifest = """
    apiVersion: bpftree/v1
    kind: Tree
    metadata: {name: job}
    spec:
      root: jobs/A
      mode: "0750"
      entries:
        config: {map: {type: array, keySize: 4, valueSize: 8, maxEntries: 16, contents: [{key: 1, value: 7}]}, mode: "0640"}
        stats:
          directory:
            entries:
              packets: {map: {type: lru_hash, keySize: 8, valueSize: 16, maxEntries: 1024}}
    """

/// The three ways bpftree reaches a container's bpffs, on real mount namespaces.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct ContainerTests {
    /// `path type mode` and, for maps, their shape as bpftool reports it.
    func tree(_ fs: ScratchBPFFS, under directory: String = "") throws -> [String] {
        let base = directory.isEmpty ? fs.path : fs.at(directory)
        var entries: [String] = []
        for line in try listing(base, format: "%P %y %m") {
            guard line.contains(" f ") else {
                entries.append(line)
                continue
            }
            let info = try mapInfo(base + "/" + String(line.split(separator: " ")[0]))
            entries.append("\(line) \(info["type"] ?? "?") \(info["bytes_key"] ?? "?") \(info["bytes_value"] ?? "?") \(info["max_entries"] ?? "?")")
        }
        return entries
    }

    @Test func anAnchorFDFromAnotherMountNamespaceGivesTheSameTreeAsTheHostPath() throws {
        let host = try ScratchBPFFS(), reference = try ScratchBPFFS()
        #expect(mkdir(host.at("job"), 0o755) == 0)
        let files = try ManifestDirectory(["m.yaml": containerManifest])
        // The runtime side as the README shows it: open, unshare + bind mount at /sys/fs/bpf, exec.
        let script = repositoryRoot + "/examples/containers/anchor-fd.sh"
        let applied = try run([script, host.at("job"), "apply", "-f", files.path], environment: ["BPFTREE": bpftreeExecutable])
        #expect(applied.status == 0, "\(applied.output)")
        #expect(applied.stderr.contains("in the container: /sys/fs/bpf is bpf_fs, anchor is fd 3"), "\(applied.output)")
        #expect(applied.stdout.contains("Apply complete under fd 3"), "\(applied.output)")
        #expect(try bpftree(["apply", "-f", files.path, "--anchor", reference.path]).status == 0)
        let viaFD = try tree(host, under: "job"), viaPath = try tree(reference)
        #expect(!viaFD.isEmpty && viaFD == viaPath, "\(viaFD) vs \(viaPath)")
        // The host path now converges too: it is the same tree.
        #expect(try bpftree(["diff", "-f", files.path, "--anchor", host.at("job")]).status == 0)
    }

    @Test func theHostConvergesAContainersTreeThroughItsRootAndCannotBeLedOutOfIt() throws {
        let hostTree = try ScratchBPFFS()
        try pinMapWithBpftool(hostTree.at("secret"), type: "array", key: 4, value: 4, entries: 1, name: "secret")
        let before = try hostTree.snapshot()
        // Inside: an absolute symlink to the host's bpffs, and one planted where the manifest wants a directory.
        let container = try ScratchContainer(prepare: """
            os.symlink("\(hostTree.path)", "/escape")
            os.makedirs("/bpf/other")
            os.symlink("\(hostTree.path)", "/bpf/other/jobs")
            """)
        let files = try ManifestDirectory(["m.yaml": containerManifest])
        let applied = try bpftree(["apply", "-f", files.path, "--anchor-pid", String(container.pid), "--anchor", "/bpf"])
        #expect(applied.status == 0, "\(applied.output)")
        let shape = try container.shape()
        #expect(shape.contains("jobs/A/config f 640"), "\(shape)")
        // The same path on the host is the empty directory under the container's mount, untouched.
        #expect(try FileManager.default.contentsOfDirectory(atPath: container.root + "/bpf").isEmpty)
        // /proc/PID/root/... given as --anchor is resolved the same way.
        #expect(try bpftree(["diff", "-f", files.path, "--anchor", "/proc/\(container.pid)/root/bpf"]).status == 0)

        // Ways out of the container's root: `..` past it, an absolute symlink, a symlink in the tree.
        let attempts: [([String], String)] = [
            (["--anchor", "/proc/\(container.pid)/root/../..\(hostTree.path)"], "open anchor"),
            (["--anchor-pid", String(container.pid), "--anchor", "/escape"], "open anchor"),
            (["--anchor", "/proc/\(container.pid)/root/escape"], "open anchor"),
            (["--anchor", "/proc/\(container.pid)/root/bpf/other"], "jobs: is a symlink where a directory is declared"),
        ]
        for (anchor, message) in attempts {
            let result = try bpftree(["apply", "-f", files.path] + anchor)
            #expect(result.status == 1, "\(anchor): \(result.output)")
            #expect(result.stderr.contains(message), "\(anchor): \(result.output)")
        }
        #expect(try hostTree.snapshot() == before, "nothing outside the container's root changed")
    }

    @Test func badAnchorOptionsAreRefused() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["m.yaml": containerManifest])
        let cases: [([String], Int32, String)] = [
            (["--anchor-pid", "1", "--anchor-fd", "0"], 64, "give --anchor-pid (with --anchor) or --anchor-fd, not both"),
            (["--anchor-pid", "0"], 64, "--anchor-pid must be a process id"),
            (["--anchor-pid", "999999999", "--anchor", fs.path], 1, "no process 999999999"),
        ]
        for (options, status, message) in cases {
            let result = try bpftree(["apply", "-f", files.path] + options)
            #expect(result.status == status && result.stderr.contains(message), "\(options): \(result.output)")
        }
        #expect(try fs.snapshot().isEmpty)
    }
}
