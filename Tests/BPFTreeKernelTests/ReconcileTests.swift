import BPFTreeTestSupport
import Foundation
import Glibc
import Testing

/// A `bpftree reconcile` service running in the background, its log in a file.
final class ReconcileService {
    let process = Process()
    let logPath = NSTemporaryDirectory() + "bpftree-reconcile-" + UUID().uuidString + ".log"

    /// `prefix`: a command that execs bpftree (e.g. `prlimit --nofile=N`), so that the pid stays bpftree's.
    init(_ arguments: [String], prefix: [String] = []) throws {
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: prefix.isEmpty ? bpftreeExecutable : "/usr/bin/env")
        process.arguments = (prefix.isEmpty ? [] : prefix + [bpftreeExecutable]) + ["reconcile"] + arguments
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: logPath)
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    /// Summary lines of passes that ended (`... result=converged ...`).
    var passes: [String] { log.split(separator: "\n").map(String.init).filter { $0.hasSuffix("] pass") } }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the process to exit; its status, or nil when it did not within `seconds`.
    func exit(within seconds: Double) -> Int32? {
        eventually(within: seconds) { !process.isRunning } ? process.terminationStatus : nil
    }
}

/// The reconcile service against real cgroup v2 cgroups and a private bpffs.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct ReconcileTests {
    let policy = policyText("      prune: owned\n      allowOnIncompatible: [replace, migrate]")

    /// `count` maps in jobs/B, enough for a pass to take a while.
    static func large(_ count: Int) -> String {
        manifest((0..<count).map { "    m\($0): {map: {type: array, valueSize: 8, maxEntries: 16}}" }.joined(separator: "\n"),
                 name: "job-b", root: "jobs/B")
    }

    @Test func aNewCgroupGetsItsSubtreeAtOnceAndARemovedOneLosesIt() throws {
        let fs = try ScratchBPFFS()
        let cgroups = try ScratchCgroup()
        let files = try ManifestDirectory(["t.yaml": cgroupTemplate(source: cgroups.relative), "policy.yaml": policy])
        // The timer is an hour away: only the cgroup watch can make the pass.
        let service = try ReconcileService(["-f", files.path + "/t.yaml", "--policy", files.path + "/policy.yaml",
                                            "--anchor", fs.path, "--interval", "60m"])
        try #require(eventually(within: 10) { service.passes.count >= 1 }, "\(service.log)")
        let id = try cgroups.make("w1")
        #expect(eventually(within: 5) { FileManager.default.fileExists(atPath: fs.at("jobs/A/\(id)/stats")) }, "\(service.log)")
        #expect(try mapInfo(fs.at("jobs/A/\(id)/stats"))["type"] as? String == "array")
        // The pass that made it was started by the watch (its summary is logged once it has stamped).
        #expect(eventually(within: 5) { service.passes.contains { $0.contains("trigger=cgroups") && !$0.contains("changes=0") } },
                "\(service.log)")
        try cgroups.remove("w1")
        #expect(eventually(within: 5) { !FileManager.default.fileExists(atPath: fs.at("jobs/A/\(id)")) }, "\(service.log)")
        service.signal(SIGTERM)
        #expect(service.exit(within: 10) == 0, "\(service.log)")
    }

    @Test func aBrokenEditKeepsTheLastGoodSetAndTheServiceAlive() throws {
        let fs = try ScratchBPFFS()
        let cgroups = try ScratchCgroup()
        let files = try ManifestDirectory(["t.yaml": cgroupTemplate(source: cgroups.relative), "policy.yaml": policy])
        let service = try ReconcileService(["-f", files.path + "/t.yaml", "--policy", files.path + "/policy.yaml",
                                            "--anchor", fs.path, "--interval", "60m"])
        try #require(eventually(within: 10) { service.passes.count >= 1 }, "\(service.log)")
        // A bad edit: an unknown field on line 8. SIGHUP makes a pass now.
        try cgroupTemplate(source: cgroups.relative).replacing("maxEntries: 4,", with: "maxEntries: 4, colour: red,")
            .write(toFile: files.path + "/t.yaml", atomically: true, encoding: .utf8)
        service.signal(SIGHUP)
        #expect(eventually(within: 5) { service.log.contains("keeping the last good set") }, "\(service.log)")
        #expect(service.log.contains("t.yaml:8:73: unknown field 'colour'"), "\(service.log)")
        #expect(service.log.contains("colour"), "\(service.log)")
        // Still alive and still applying the last good set.
        let id = try cgroups.make("w1")
        #expect(eventually(within: 5) { FileManager.default.fileExists(atPath: fs.at("jobs/A/\(id)/stats")) }, "\(service.log)")
        #expect(service.process.isRunning)
        // Fixed: the new set is used.
        try cgroupTemplate(source: cgroups.relative, root: "jobs/C/{cgroup.id}").write(toFile: files.path + "/t.yaml", atomically: true, encoding: .utf8)
        service.signal(SIGHUP)
        #expect(eventually(within: 5) { FileManager.default.fileExists(atPath: fs.at("jobs/C/\(id)/stats")) }, "\(service.log)")
        #expect(eventually(within: 5) { !FileManager.default.fileExists(atPath: fs.at("jobs/A/\(id)")) }, "\(service.log)")
        service.signal(SIGTERM)
        #expect(service.exit(within: 10) == 0, "\(service.log)")
    }

    @Test func sigtermDuringAPassFinishesItAndExitsZero() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["b.yaml": Self.large(3000), "policy.yaml": policy])
        let service = try ReconcileService(["-f", files.path + "/b.yaml", "--policy", files.path + "/policy.yaml",
                                            "--anchor", fs.path, "--interval", "60m"])
        // Mid-pass: the first maps are pinned, the pass has not ended.
        try #require(eventually(within: 20) { FileManager.default.fileExists(atPath: fs.at("jobs/B/m0")) })
        try #require(service.passes.isEmpty, "the pass ended before SIGTERM could interrupt it; make it larger")
        service.signal(SIGTERM)
        #expect(service.exit(within: 60) == 0, "\(service.log)")
        #expect(service.passes.count == 1 && service.passes[0].contains("result=converged"), "\(service.log)")
        #expect(service.log.contains("stopped"), "\(service.log)")
        // The tree is consistent: nothing left to do.
        let diff = try bpftree(["diff", "-f", files.path + "/b.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path])
        #expect(diff.status == 0, "\(diff.output)")
    }

    @Test func sigkillDuringAPassThenOneMorePassConverges() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["b.yaml": Self.large(3000), "policy.yaml": policy])
        let args = ["-f", files.path + "/b.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path]
        let service = try ReconcileService(args + ["--interval", "60m"])
        try #require(eventually(within: 20) { FileManager.default.fileExists(atPath: fs.at("jobs/B/m0")) })
        service.signal(SIGKILL)
        _ = service.exit(within: 10)
        try #require(service.passes.isEmpty, "the pass ended before SIGKILL; make it larger")
        let once = try bpftree(["reconcile", "--once"] + args)
        #expect(once.status == 0, "\(once.output)")
        #expect(try bpftree(["diff"] + args).status == 0)
        let names = try run(["find", fs.path, "-name", "bpftree_tmp_*"]).stdout
        #expect(names.isEmpty, "temporary pins left: \(names)")
    }

    @Test func twoWritersStartedTogetherSerialise() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["b.yaml": Self.large(1500), "policy.yaml": policy])
        let args = ["-f", files.path + "/b.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path,
                    "--lock-timeout", "60s", "-o", "json"]
        // Without the lock both would plan on the empty tree and one would fail on pins the other made.
        var results: [RunResult?] = [nil, nil]
        let commands = [["reconcile", "--once"] + args, ["apply"] + args]
        DispatchQueue.concurrentPerform(iterations: 2) { index in
            let result = try? bpftree(commands[index])
            DispatchQueue.main.sync { results[index] = result }
        }
        let done = try results.map { result -> Int in
            let result = try #require(result)
            #expect(result.status == 0, "\(result.output)")
            let counts = try json(result.stdout)["counts"] as? [String: Any]
            return counts?["done"] as? Int ?? -1
        }
        // One writer made all 1500 maps and their directories; the other found nothing to do.
        #expect(done.sorted() == [0, 1502], "\(done)")
    }

    @Test func failingPassesBackOffDoublingAndTheServiceRecovers() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["j.yaml": jobManifest])
        // Another writer holds the lock for 3.5 s; every pass tries once (--lock-timeout 0) and fails.
        let (holder, pid) = try holdLock(on: fs.path, seconds: 3.5)
        defer { holder.terminate() }
        let service = try ReconcileService(["-f", files.path + "/j.yaml", "--anchor", fs.path, "--interval", "60m",
                                            "--lock-timeout", "0"])
        #expect(eventually(within: 15) { service.passes.contains { $0.contains("result=converged") } }, "\(service.log)")
        let passes = service.passes
        // Passes at about 0 s, 1 s, 3 s (and 7 s): failures with waits of 1 s, then 2 s (then 4 s), until the
        // lock is free.
        #expect(passes.count >= 3, "\(service.log)")
        #expect(passes.dropLast().allSatisfy { $0.contains("result=failed") }, "\(service.log)")
        #expect(passes.last?.contains("trigger=backoff") == true, "\(service.log)")
        #expect(service.log.contains("another writer holds it (pid \(pid))"), "\(service.log)")
        #expect(service.log.contains("seconds=1 ") && service.log.contains("seconds=2 "), "\(service.log)")
        #expect(try fs.shape().contains("jobs/A/config f 640"))
        service.signal(SIGTERM)
        #expect(service.exit(within: 10) == 0, "\(service.log)")
    }

    @Test func aConfigMapStyleSymlinkSwapIsPickedUpByTheTimer() throws {
        let fs = try ScratchBPFFS()
        // As the kubelet lays out a ConfigMap volume: t.yaml -> ..data/t.yaml, ..data -> ..v1, swapped atomically.
        let volume = try ManifestDirectory([:])
        func version(_ name: String, root: String) throws {
            try FileManager.default.createDirectory(atPath: volume.path + "/" + name, withIntermediateDirectories: true)
            try manifest("    m: {map: {type: array, valueSize: 8, maxEntries: 2}}", root: root)
                .write(toFile: volume.path + "/\(name)/t.yaml", atomically: true, encoding: .utf8)
            try FileManager.default.createSymbolicLink(atPath: volume.path + "/..data_tmp", withDestinationPath: name)
            try #require(rename(volume.path + "/..data_tmp", volume.path + "/..data") == 0)
        }
        try version("..v1", root: "jobs/A")
        try FileManager.default.createSymbolicLink(atPath: volume.path + "/t.yaml", withDestinationPath: "..data/t.yaml")
        let service = try ReconcileService(["-f", volume.path, "--anchor", fs.path, "--interval", "300ms"])
        #expect(eventually(within: 10) { FileManager.default.fileExists(atPath: fs.at("jobs/A/m")) }, "\(service.log)")
        try version("..v2", root: "jobs/Z")
        #expect(eventually(within: 10) { FileManager.default.fileExists(atPath: fs.at("jobs/Z/m")) }, "\(service.log)")
        #expect(eventually(within: 5) { service.passes.contains { $0.contains("trigger=timer") && !$0.contains("changes=0") } },
                "\(service.log)")
        service.signal(SIGTERM)
        #expect(service.exit(within: 10) == 0, "\(service.log)")
    }

    @Test func badOptionsAreRefusedBeforeAnythingIsTouched() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["j.yaml": jobManifest])
        let base = ["reconcile", "-f", files.path + "/j.yaml", "--anchor", fs.path]
        for (extra, message) in [
            (["--metrics-address", "nowhere"], "--metrics-address 'nowhere' is not PORT, HOST:PORT or [V6]:PORT"),
            (["-o", "json"], "-o json needs --once"),
            (["--interval", "0"], "--interval must be at least 10ms"),
            (["--log-level", "loud"], "unknown --log-level 'loud'"),
        ] {
            let result = try bpftree(base + extra)
            #expect(result.status != 0)
            #expect(result.stderr.contains(message), "\(result.output)")
        }
        #expect(try fs.snapshot().isEmpty)
    }

    @Test func theMetricsEndpointServesTheDocumentedSeries() throws {
        let fs = try ScratchBPFFS()
        let cgroups = try ScratchCgroup()
        try cgroups.make("w1")
        let files = try ManifestDirectory(["t.yaml": cgroupTemplate(source: cgroups.relative), "policy.yaml": policy])
        let service = try ReconcileService(["-f", files.path + "/t.yaml", "--policy", files.path + "/policy.yaml",
                                            "--anchor", fs.path, "--interval", "60m", "--metrics-address", "127.0.0.1:0"])
        try #require(eventually(within: 10) { service.passes.count >= 1 }, "\(service.log)")
        let port = try #require(service.log.split(separator: "\n").first { $0.contains("serving metrics") }?
            .split(separator: ":").compactMap { Int($0.prefix { $0.isNumber }) }.last, "\(service.log)")
        let fetched = try run(["python3", "-c", "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())",
                               "http://127.0.0.1:\(port)/metrics"])
        #expect(fetched.status == 0, "\(fetched.output)")
        let text = fetched.stdout
        for series in [
            "bpftree_reconcile_passes_total{result=\"succeeded\"} 1",
            "bpftree_reconcile_actions_total{category=\"create\",outcome=\"done\"} 4",
            "bpftree_reconcile_drift_total 4", "bpftree_reconcile_drift 4",
            "bpftree_reconcile_errors_total{stage=\"inputs\"} 0", "bpftree_reconcile_errors_total{stage=\"pass\"} 0",
            "bpftree_reconcile_pass_duration_seconds_count 1", "bpftree_reconcile_last_success_timestamp_seconds ",
        ] {
            #expect(text.contains(series), "\(series) missing from:\n\(text)")
        }
        service.signal(SIGTERM)
        #expect(service.exit(within: 10) == 0, "\(service.log)")
    }

    /// `GET URL`: the status and the body (an error status too).
    private func fetch(_ url: String) throws -> (status: Int, body: String) {
        let script = """
            import sys, urllib.request, urllib.error
            try:
                r = urllib.request.urlopen(sys.argv[1]); print(r.status); print(r.read().decode(), end="")
            except urllib.error.HTTPError as e:
                print(e.code); print(e.read().decode(), end="")
            """
        let fetched = try run(["python3", "-c", script, url])
        let lines = fetched.stdout.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        return (Int(lines.first ?? "") ?? -1, lines.count > 1 ? String(lines[1]) : fetched.output)
    }

    private func metricsPort(_ service: ReconcileService) throws -> Int {
        try #require(service.log.split(separator: "\n").first { $0.contains("serving metrics") }?
            .split(separator: ":").compactMap { Int($0.prefix { $0.isNumber }) }.last, "\(service.log)")
    }

    @Test func theHealthEndpointIsOKOnlyWhileTheLastPassSucceeded() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["j.yaml": jobManifest])
        let service = try ReconcileService(["-f", files.path + "/j.yaml", "--anchor", fs.path, "--interval", "60m",
                                            "--metrics-address", "127.0.0.1:0"])
        try #require(eventually(within: 10) { service.passes.count >= 1 }, "\(service.log)")
        let port = try metricsPort(service)
        let healthy = try fetch("http://127.0.0.1:\(port)/healthz")
        #expect(healthy.status == 200 && healthy.body.hasPrefix("ok: the last pass succeeded"), "\(healthy)")

        // A pass that fails (a foreign map where a new entry is declared) makes it unhealthy at once.
        try pinMapWithBpftool(fs.at("jobs/A/extra"), type: "hash", key: 4, value: 4, entries: 4, name: "foreign")
        try (jobManifest + "\n    extra: {map: {type: array, keySize: 4, valueSize: 8, maxEntries: 4}}\n")
            .write(toFile: files.path + "/j.yaml", atomically: true, encoding: .utf8)
        service.signal(SIGHUP)
        try #require(eventually(within: 10) { service.passes.count >= 2 }, "\(service.log)")
        let failed = try fetch("http://127.0.0.1:\(port)/healthz")
        #expect(failed.status == 503 && failed.body.hasPrefix("the last pass failed"), "\(failed) \(service.log)")
        #expect(try fetch("http://127.0.0.1:\(port)/nothing").status == 404)
        service.signal(SIGTERM)
        #expect(service.exit(within: 10) == 0, "\(service.log)")
    }

    /// The clients, scaled to a test: 60 that pipeline 5,000 GETs each and never read, then 300 that
    /// connect and idle, against a service allowed 128 descriptors. Its memory stays bounded, its passes go
    /// on converging, and a scraper is answered afterwards.
    @Test func theMetricsServerHoldsAgainstClientsThatNeverReadOrNeverLeave() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["j.yaml": jobManifest])
        let service = try ReconcileService(["-f", files.path + "/j.yaml", "--anchor", fs.path, "--interval", "200ms",
                                            "--metrics-address", "127.0.0.1:0"], prefix: ["prlimit", "--nofile=128:128"])
        try #require(eventually(within: 10) { service.passes.count >= 1 }, "\(service.log)")
        let port = try metricsPort(service)
        let script = """
            import socket, sys, time
            port, pid, clients, requests, hold = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
            def rss():
                for line in open("/proc/%s/status" % pid):
                    if line.startswith("VmRSS:"): return int(line.split()[1])
            request = b"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n" * requests
            held, peak = [], 0
            for _ in range(clients):
                s = socket.socket()
                s.settimeout(2)
                try:
                    s.connect(("127.0.0.1", port))
                    s.setblocking(False)
                    if requests: s.send(request)
                except OSError:
                    pass
                held.append(s)
            end = time.time() + hold
            while time.time() < end:
                peak = max(peak, rss())
                time.sleep(0.1)
            for s in held: s.close()
            time.sleep(0.5)
            print(peak, rss())
            """
        for (clients, requests) in [(60, 5000), (300, 0)] {
            let before = service.passes.count
            let result = try run(["python3", "-c", script, String(port), String(service.process.processIdentifier), String(clients),
                                  String(requests), "4"])
            let rss = result.stdout.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            try #require(rss.count == 2, "\(result.output)")
            #expect(rss[0] < 96 << 10 && rss[1] < 96 << 10, "RSS peak \(rss[0]) KiB, after \(rss[1]) KiB with \(clients) clients")
            let during = service.passes.dropFirst(before)
            #expect(during.count >= 5 && during.allSatisfy { $0.contains("result=converged") }, "\(service.log)")
        }
        #expect(try fetch("http://127.0.0.1:\(port)/healthz").status == 200)
        service.signal(SIGTERM)
        #expect(service.exit(within: 10) == 0, "\(service.log)")
    }

    @Test func anAnchorThatIsNoBPFFSIsNeverHealthy() throws {
        let directory = try ManifestDirectory([:])
        let files = try ManifestDirectory(["j.yaml": jobManifest])
        let service = try ReconcileService(["-f", files.path + "/j.yaml", "--anchor", directory.path, "--interval", "60m",
                                            "--metrics-address", "127.0.0.1:0"])
        try #require(eventually(within: 10) { service.passes.count >= 1 }, "\(service.log)")
        let answer = try fetch("http://127.0.0.1:\(try metricsPort(service))/healthz")
        #expect(answer.status == 503 && answer.body.hasPrefix("the last pass failed"), "\(answer)")
        #expect(service.log.contains("not on a bpffs"), "\(service.log)")
        service.signal(SIGTERM)
        #expect(service.exit(within: 10) == 0, "\(service.log)")
    }
}
