import Foundation
import Glibc
import Testing

/// What `scripts/install.sh` installed under a DESTDIR: the staged root, or why it failed. scripts/test.sh
/// installs before the tests run (`BPFTREE_INSTALLED`), so that its release build does not compete with
/// them for the CPU; without it, once per test run here, in a build folder of its own (minutes).
let installation: Result<String, HarnessError> = {
    if let staged = ProcessInfo.processInfo.environment["BPFTREE_INSTALLED"], !staged.isEmpty { return .success(staged) }
    let stage = NSTemporaryDirectory() + "bpftree-install-" + UUID().uuidString
    do {
        let result = try run([repositoryRoot + "/scripts/install.sh", "/usr/local"],
                             environment: ["DESTDIR": stage, "SCRATCH": repositoryRoot + "/.build-install"])
        guard result.status == 0 else { return .failure(HarnessError(description: "install.sh: \(result.output)")) }
        return .success(stage)
    } catch {
        return .failure(HarnessError(description: "install.sh: \(error)"))
    }
}()

/// The shipped deployment files, as an operator uses them: the installed binary, man pages and
/// completions; the image under podman with runc; the systemd units; the Kubernetes files.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct DeploymentTests {
    @Test func installShInstallsAStaticBinaryManPagesAndCompletions() throws {
        let stage = try installation.get()
        let binary = stage + "/usr/local/bin/bpftree"
        let version = try run([binary, "--version"])
        #expect(version.status == 0 && !version.stdout.isEmpty, "\(version.output)")
        let libraries = try run(["ldd", binary]).stdout
        #expect(!libraries.contains("libswift") && !libraries.contains("libFoundation") && libraries.contains("libbpf.so.1"), "\(libraries)")
        // FoundationEssentials only: CoreFoundation (whose start-up every command would pay) is not linked in.
        let image = try #require(FileManager.default.contents(atPath: binary))
        #expect(image.range(of: Data("CFRunLoop".utf8)) == nil, "CoreFoundation is linked into bpftree")
        let manual = try run(["man", "-l", stage + "/usr/local/share/man/man1/bpftree.apply.1"], environment: ["MANPAGER": "cat", "MANWIDTH": "100"])
        #expect(manual.status == 0 && manual.stdout.contains("--lock-timeout"), "\(manual.output)")
        for page in ["bpftree", "bpftree.diff", "bpftree.apply", "bpftree.reconcile"] {
            #expect(FileManager.default.fileExists(atPath: stage + "/usr/local/share/man/man1/\(page).1"), "\(page)")
        }
        let bash = try run(["bash", "-c", "source \"$1\" && complete -p bpftree", "-",
                            stage + "/usr/local/share/bash-completion/completions/bpftree"])
        #expect(bash.status == 0 && bash.stdout.contains("-F _bpftree bpftree"), "\(bash.output)")
        for script in ["zsh/site-functions/_bpftree", "fish/vendor_completions.d/bpftree.fish"] {
            let text = try String(contentsOfFile: stage + "/usr/local/share/" + script, encoding: .utf8)
            #expect(text.contains("reconcile") && text.contains("metrics-address"), "\(script)")
        }
    }

    /// `podman run` as the README gives it, with runc, on a bpffs bind-mounted from the host.
    private func podmanRun(_ image: String, _ fs: ScratchBPFFS, _ files: ManifestDirectory, security: [String],
                           capabilities: String = "BPF,PERFMON") throws -> RunResult {
        // Root here lacks CAP_SYS_RESOURCE, and podman raises both limits to the maximum unless told.
        try run(["podman", "--runtime", "runc", "run", "--rm", "--pull=never", "--ulimit", "nofile=4096:4096",
                 "--ulimit", "nproc=4096:4096"] + security + [
                    "--cap-drop", "all", "--cap-add", capabilities,
                    "-v", "\(fs.path):/sys/fs/bpf", "-v", "\(files.path):/etc/bpftree/manifests:ro",
                    image, "apply", "-f", "/etc/bpftree/manifests"])
    }

    @Test func theImageConvergesATreeUnderPodmanWithRuncAndLeastPrivilege() throws {
        let stage = try installation.get()
        let tag = "localhost/bpftree-test:\(UUID().uuidString.prefix(8).lowercased())"
        let built = try run([repositoryRoot + "/scripts/build-image.sh", tag], environment: ["INSTALLED": stage])
        try #require(built.status == 0, "\(built.output)")
        defer { _ = try? run(["podman", "rmi", "-f", tag]) }
        // One image and nothing else: no intermediate layers left on the machine.
        let images = try run(["podman", "images", "-a", "--filter", "since=\(tag)", "-q"])
        #expect(images.status == 0 && images.stdout.isEmpty, "\(images.output)")
        let files = try ManifestDirectory(["job.yaml": containerManifest])

        // Debian 12's podman profile lets bpf(2) through only with CAP_SYS_ADMIN: a clear refusal, nothing made.
        let defaultFS = try ScratchBPFFS()
        let refused = try podmanRun(tag, defaultFS, files, security: [])
        #expect(refused.status == 1 && refused.stderr.contains("a seccomp filter refuses bpf(2)"), "\(refused.output)")
        #expect(try defaultFS.shape().isEmpty)
        // The same profile with CAP_SYS_ADMIN added, as the README offers.
        let admitted = try podmanRun(tag, defaultFS, files, security: [], capabilities: "BPF,PERFMON,SYS_ADMIN")
        #expect(admitted.status == 0 && admitted.stdout.contains("Apply complete under /sys/fs/bpf"), "\(admitted.output)")
        #expect(try mapInfo(defaultFS.at("jobs/A/config"))["max_entries"] as? Int == 16)

        // The default profile with bpf and perf_event_open allowed for CAP_BPF and CAP_PERFMON.
        let profile = NSTemporaryDirectory() + "bpftree-seccomp-\(UUID().uuidString).json"
        defer { unlink(profile) }
        let made = try run([repositoryRoot + "/scripts/seccomp-profile.py", profile])
        try #require(made.status == 0, "\(made.output)")
        let fs = try ScratchBPFFS()
        let applied = try podmanRun(tag, fs, files, security: ["--security-opt", "seccomp=\(profile)"])
        #expect(applied.status == 0 && applied.stdout.contains("Apply complete under /sys/fs/bpf"), "\(applied.output)")
        let config = try mapInfo(fs.at("jobs/A/config"))
        #expect(config["type"] as? String == "array" && config["max_entries"] as? Int == 16, "\(config)")
        let again = try podmanRun(tag, fs, files, security: ["--security-opt", "seccomp=\(profile)"])
        #expect(again.status == 0 && again.stdout.contains("No changes."), "\(again.output)")
    }

    @Test func buildahBuildsTheSameImage() throws {
        let stage = try installation.get()
        let tag = "localhost/bpftree-test:\(UUID().uuidString.prefix(8).lowercased())"
        let built = try run([repositoryRoot + "/scripts/build-image.sh", tag], environment: ["INSTALLED": stage, "BUILDER": "buildah"])
        try #require(built.status == 0, "\(built.output)")
        defer { _ = try? run(["podman", "rmi", "-f", tag]) }
        let version = try run(["podman", "--runtime", "runc", "run", "--rm", "--pull=never", "--ulimit", "nofile=4096:4096",
                               "--ulimit", "nproc=4096:4096", "--cap-drop", "all", tag, "--version"])
        let host = try run([stage + "/usr/local/bin/bpftree", "--version"])
        #expect(version.status == 0 && version.stdout == host.stdout, "\(version.output)")
    }

    private let units = ["bpftree-reconcile.service", "bpftree-reconcile-once.service", "bpftree-reconcile-once.timer"]
        .map { repositoryRoot + "/examples/systemd/" + $0 }

    @Test func theSystemdUnitsVerifyAndHoldTheirExposureScore() throws {
        let stage = try installation.get()
        // The installed binary at /usr/local/bin, in a mount namespace of the test's own.
        let script = "mount --bind \"$1/usr/local/bin\" /usr/local/bin && shift && exec systemd-analyze verify --man=no \"$@\""
        let verified = try run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "-", stage] + units)
        #expect(verified.status == 0 && verified.output.isEmpty, "\(verified.output)")
        for (unit, most) in [("bpftree-reconcile.service", 3.0), ("bpftree-reconcile-once.service", 3.0)] {
            let security = try run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                                    repositoryRoot + "/examples/systemd/" + unit])
            let line = security.stdout.split(separator: "\n").first { $0.contains("Overall exposure level") } ?? ""
            let score = line.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) }
            #expect(score.map { $0 <= most } == true, "\(unit): \(line)\n\(security.output)")
        }
        // No such unit as sys-fs-bpf.mount: the mount is required by path.
        let service = try String(contentsOfFile: units[0], encoding: .utf8)
        #expect(service.contains("RequiresMountsFor=/sys/fs/bpf") && !service.contains("sys-fs-bpf.mount"))
    }

    @Test func bpftreeConvergesATreeUnderTheServicesSystemCallFilterAndCapabilities() throws {
        let veth = try ScratchVeth()
        let cgroups = try ScratchCgroup()
        try cgroups.make("w1")
        let files = try jobStatsFiles(source: cgroups.relative)
        let xdp = try String(contentsOfFile: repositoryRoot + "/examples/xdp-count/xdp-count.yaml", encoding: .utf8)
        try xdp.replacingOccurrences(of: "interface: veth0}", with: "interface: \(veth.host)}")
            .write(toFile: files.path + "/xdp.yaml", atomically: true, encoding: .utf8)
        try buildBPF([repositoryRoot + "/bpf/xdp_count.bpf.c"], into: files.path)
        try (policyText("      prune: owned\n      allowOnIncompatible: [replace, migrate]", name: "net", paths: "[\"net/**\"]"))
            .write(toFile: files.path + "/net-policy.yaml", atomically: true, encoding: .utf8)
        let sandbox = repositoryRoot + "/Tests/Fixtures/systemd-sandbox.py"
        func apply(_ unit: String, _ fs: ScratchBPFFS) throws -> RunResult {
            try run(["/usr/bin/python3", sandbox, unit, bpftreeExecutable, "apply", "-f", files.path + "/job-stats.yaml",
                     "-f", files.path + "/xdp.yaml", "--policy", files.path + "/policy.yaml",
                     "--policy", files.path + "/net-policy.yaml", "--anchor", fs.path], environment: ["NO_COLOR": "1"])
        }
        let fs = try ScratchBPFFS()
        let applied = try apply(units[0], fs)
        #expect(applied.status == 0, "\(applied.output)")
        #expect(try veth.attached().count == 1)
        let again = try apply(units[0], fs)
        #expect(again.status == 0 && again.stdout.contains("No changes."), "\(again.output)")

        // The sandbox is no formality: without bpf in the filter, nothing works, and bpftree says why.
        let unit = try String(contentsOfFile: units[0], encoding: .utf8)
        let narrowed = try ManifestDirectory(["narrow.service": unit.replacingOccurrences(of: "@system-service bpf perf_event_open",
                                                                                          with: "@system-service perf_event_open")])
        let empty = try ScratchBPFFS()
        let refused = try apply(narrowed.path + "/narrow.service", empty)
        #expect(refused.status == 1 && refused.stderr.contains("a seccomp filter refuses bpf(2)"), "\(refused.output)")
        #expect(try empty.shape().isEmpty)
    }

    @Test func theKubernetesFilesValidateStrictlyAndAskForTheDocumentedSet() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot + "/examples/kubernetes")
            .filter { $0.hasSuffix(".yaml") }.map { repositoryRoot + "/examples/kubernetes/" + $0 }
        #expect(!files.isEmpty)
        let validated = try run(["python3", "-m", "kubernetes_validate", "--strict"] + files)
        #expect(validated.status == 0 && !validated.output.contains("ERROR"), "\(validated.output)")
        // The validator is no formality: a misspelt field fails.
        let text = try String(contentsOfFile: repositoryRoot + "/examples/kubernetes/daemonset.yaml", encoding: .utf8)
        let misspelt = try ManifestDirectory(["d.yaml": text.replacingOccurrences(of: "readOnlyRootFilesystem", with: "readOnlyRootFilesysten")])
        let refused = try run(["python3", "-m", "kubernetes_validate", "--strict", misspelt.path + "/d.yaml"])
        #expect(refused.status != 0 && refused.output.contains("readOnlyRootFilesysten"), "\(refused.output)")

        for wanted in ["pod-security.kubernetes.io/enforce: privileged", "seccompProfile: {type: RuntimeDefault}",
                       "runAsUser: 0", "automountServiceAccountToken: false", "priorityClassName: system-node-critical",
                       "- operator: Exists", "httpGet: {path: /healthz, port: metrics}",
                       "add: [BPF, PERFMON, NET_ADMIN, CHOWN, FOWNER, DAC_OVERRIDE]"] {
            #expect(text.contains(wanted), "\(wanted)")
        }
        // The same set as the systemd service's bounding set.
        let service = try String(contentsOfFile: units[0], encoding: .utf8)
        #expect(service.contains("CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE"))
    }
}
