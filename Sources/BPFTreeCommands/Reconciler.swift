import BPFTreeCore
import BPFTreeKernel
import Logging
import ServiceLifecycle
import UnixSignals

/// The reconcile service: a pass at start, then one every `interval`, at once on SIGHUP or when a watched
/// cgroup directory gains or loses a cgroup, and after a failed pass again after a backoff that doubles
/// (1s, 2s, 4s, ... up to `maxBackoff`). A graceful shutdown (SIGTERM, SIGINT) lets the pass in progress
/// finish, then `run` returns.
struct Reconciler: Service {
    var options: CommonOptions
    var interval: Duration
    var maxBackoff: Duration
    var lockTimeout: Double
    var logger: Logger
    var metrics: ReconcileMetrics

    /// Why a pass starts.
    enum Trigger: String, Sendable {
        case start, timer, hangup, cgroups, backoff, shutdown
    }

    func run() async throws {
        let (triggers, continuation) = AsyncStream.makeStream(of: Trigger.self, bufferingPolicy: .bufferingNewest(16))
        let watcher: DirectoryWatcher?
        do {
            watcher = try DirectoryWatcher { continuation.yield(.cgroups) }
        } catch {
            logger.warning("cannot watch cgroup directories; new cgroups wait for the timer", metadata: ["error": "\(error)"])
            watcher = nil
        }
        // Trapped before the first pass, which reads the files anew anyway: a SIGHUP that came earlier was
        // only counted (`StartupSignals`). An early SIGTERM or SIGINT stops the service before or after it.
        let signals = await UnixSignalsSequence(trapping: .sighup)
        let hangups = Task {
            for await _ in signals { continuation.yield(.hangup) }
        }
        defer { hangups.cancel() }
        var inputs = ReconcileInputs(manifests: options.files, policies: options.policies)
        var iterator = triggers.makeAsyncIterator()
        var failures = 0
        var trigger = Trigger.start
        var number = 0
        await withGracefulShutdownHandler {
            while !StartupSignals.stopRequested {
                number += 1
                let succeeded = pass(number, trigger, &inputs, watcher)
                failures = succeeded ? 0 : failures + 1
                if Task.isShuttingDownGracefully || StartupSignals.stopRequested { break }
                let delay = failures == 0 ? interval : backoff(failures)
                if failures > 0 { logger.info("next pass after a backoff", metadata: ["seconds": "\(delay.components.seconds)"]) }
                let reason: Trigger = failures == 0 ? .timer : .backoff
                let timer = Task {
                    try await Task.sleep(for: delay)
                    continuation.yield(reason)
                }
                let next = await iterator.next()
                timer.cancel()
                guard let next, next != .shutdown, !Task.isShuttingDownGracefully else { break }
                if next == .cgroups {
                    // A job makes or removes its cgroups in bursts: one pass for the burst.
                    try? await Task.sleep(for: .milliseconds(50))
                }
                trigger = next
            }
        } onGracefulShutdown: {
            continuation.yield(.shutdown)
        }
        logger.info("stopped", metadata: ["passes": "\(number)"])
    }

    /// The wait after `failures` failed passes in a row.
    func backoff(_ failures: Int) -> Duration {
        let seconds = Double(1 << min(failures - 1, 30))
        return min(.seconds(seconds), maxBackoff)
    }

    /// One pass; logs its one-line summary and records its metrics. Returns whether it succeeded.
    private func pass(_ number: Int, _ trigger: Trigger, _ inputs: inout ReconcileInputs, _ watcher: DirectoryWatcher?) -> Bool {
        let clock = ContinuousClock()
        let start = clock.now
        let logger = self.logger
        let console = Console(format: .text) { lines, isError in
            for line in lines {
                if line.hasPrefix("warning:") {
                    logger.warning("\(line.dropFirst(8).drop { $0 == " " })")
                } else if isError {
                    logger.error("\(line.hasPrefix("error: ") ? line.dropFirst(7) : Substring(line))")
                } else {
                    logger.debug("\(line)")
                }
            }
        }
        var report = RunReport(command: "reconcile", anchor: options.anchorDisplayName, keepsRecords: false)
        var succeeded = false
        if let current = inputs.current(logger: logger) {
            if current.rejected { metrics.error(stage: "inputs") }
            let pass = ApplyPass(options: options, lockTimeout: lockTimeout, console: console)
            let outcome = pass.run(inputs: current.inputs, decoded: current.decoded, report: &report)
            succeeded = outcome.succeeded
            if succeeded { watcher?.watch(outcome.watched) }
        } else {
            metrics.error(stage: "inputs")
        }
        if !succeeded { metrics.error(stage: "pass") }
        let duration = clock.now - start
        metrics.record(succeeded: succeeded, report: report, duration: duration)
        let milliseconds = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        var metadata: Logger.Metadata = [
            "pass": "\(number)", "trigger": "\(trigger.rawValue)", "result": "\(succeeded ? "converged" : "failed")",
            "changes": "\(report.counts.planned)", "done": "\(report.counts.done)", "failed": "\(report.counts.failed)",
            "ms": "\(Int(milliseconds.rounded()))",
        ]
        if let stamp = report.stamp { metadata["stamp"] = "\(stamp)" }
        if let observed = report.observed { metadata["entries"] = "\(observed.entries)" }
        if succeeded {
            logger.info("pass", metadata: metadata)
        } else {
            logger.error("pass", metadata: metadata)
        }
        return succeeded
    }
}
