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
        var inputs = ReconcileInputs(manifests: options.files, policies: options.policies, owner: options.owner)
        var knowledge: ServiceKnowledge?
        let cache = Pipeline.ValidationCache()
        var iterator = triggers.makeAsyncIterator()
        var failures = 0
        var trigger = Trigger.start
        var number = 0
        let clock = ContinuousClock()
        var nextFullPass = clock.now
        await withGracefulShutdownHandler {
            while !StartupSignals.stopRequested {
                if trigger == .cgroups, failures == 0, let changes = watcher?.drain() {
                    // At once, for what inotify named; what arrives meanwhile is the next pass's.
                    if !changes.isEmpty, let why = cgroupPass(&number, changes, &knowledge, watcher) {
                        logger.debug("cgroup events need a full pass", metadata: ["why": "\(why)"])
                        trigger = .cgroups
                        number += 1
                        failures = fullPass(number, trigger, &inputs, &knowledge, cache, watcher) ? 0 : 1
                        nextFullPass = clock.now + (failures == 0 ? interval : backoff(failures))
                    }
                } else {
                    _ = watcher?.drain()
                    number += 1
                    let succeeded = fullPass(number, trigger, &inputs, &knowledge, cache, watcher)
                    failures = succeeded ? 0 : failures + 1
                    nextFullPass = clock.now + (failures == 0 ? interval : backoff(failures))
                    if failures > 0 { logger.info("next pass after a backoff", metadata: ["seconds": "\(backoff(failures).components.seconds)"]) }
                }
                if Task.isShuttingDownGracefully || StartupSignals.stopRequested { break }
                // The timer keeps its schedule however many cgroup passes run in between.
                let reason: Trigger = failures == 0 ? .timer : .backoff
                let deadline = nextFullPass
                let timer = Task {
                    try await Task.sleep(until: deadline, clock: clock)
                    continuation.yield(reason)
                }
                let next = await iterator.next()
                timer.cancel()
                guard let next, next != .shutdown, !Task.isShuttingDownGracefully else { break }
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

    /// A full pass: the files read again, the cgroups scanned, the whole tree planned. Returns whether it
    /// succeeded; a success leaves what the next cgroup pass works from in `knowledge`.
    private func fullPass(_ number: Int, _ trigger: Trigger, _ inputs: inout ReconcileInputs,
                          _ knowledge: inout ServiceKnowledge?, _ cache: Pipeline.ValidationCache,
                          _ watcher: DirectoryWatcher?) -> Bool {
        logged(number, trigger) { console, report in
            guard let current = inputs.current(logger: logger) else {
                metrics.error(stage: "inputs")
                return false
            }
            if current.rejected { metrics.error(stage: "inputs") }
            let pass = ApplyPass(options: options, lockTimeout: lockTimeout, console: console)
            let outcome = pass.run(inputs: current.inputs, decoded: current.decoded, cache: cache, report: &report)
            guard outcome.succeeded, let scan = outcome.scan else {
                knowledge = nil
                return false
            }
            watcher?.watch(scan.watched)
            // Kept while the inputs and the cgroups are those it was made for (cgroup passes keep it current).
            if knowledge?.key != outcome.inputs {
                knowledge = ServiceKnowledge(decoded: current.decoded, scan: scan, delegation: nil)
                knowledge?.key = outcome.inputs
            }
            return true
        }
    }

    /// A pass for the cgroups `changes` name (`CgroupPass`); returns why a full pass must decide instead,
    /// or nil when done (a failed pass drops `knowledge`, so the next event gets a full pass).
    private func cgroupPass(_ number: inout Int, _ changes: DirectoryWatcher.Changes, _ knowledge: inout ServiceKnowledge?,
                            _ watcher: DirectoryWatcher?) -> String? {
        guard var known = knowledge else { return "nothing is known yet" }
        var why: String?
        var planned = 0
        var succeeded = true
        var report = RunReport(command: "reconcile", anchor: options.anchorDisplayName, keepsRecords: false)
        let clock = ContinuousClock(), start = clock.now
        let pass = CgroupPass(options: options, lockTimeout: lockTimeout, console: console(for: logger))
        switch pass.run(changes, &known, watcher: watcher, report: &report) {
        case .done(let roots): planned = roots
        case .needsFullPass(let reason): why = reason
        case .failed: succeeded = false
        }
        known.key = []
        knowledge = succeeded && why == nil ? known : nil
        if why != nil { return why }
        guard planned > 0 || !succeeded else { return nil }
        number += 1
        finish(number, .cgroups, succeeded: succeeded, report: report, duration: clock.now - start, extra: ["subtrees": "\(planned)"])
        return succeeded ? nil : "the cgroup pass failed"
    }

    /// The console a pass writes to: lines become log records.
    private func console(for logger: Logger) -> Console {
        var console = Console(format: .text) { lines, severity in
            for line in lines {
                switch severity {
                case .warning: logger.warning("\(line)")
                case .error: logger.error("\(line)")
                case .output: logger.debug("\(line)")
                }
            }
        }
        console.showsProgress = logger.logLevel <= .debug
        return console
    }

    /// Runs `body` as pass `number`, then logs its one-line summary and records its metrics.
    private func logged(_ number: Int, _ trigger: Trigger, _ body: (Console, inout RunReport) -> Bool) -> Bool {
        let clock = ContinuousClock()
        let start = clock.now
        var report = RunReport(command: "reconcile", anchor: options.anchorDisplayName, keepsRecords: false)
        let succeeded = body(console(for: logger), &report)
        finish(number, trigger, succeeded: succeeded, report: report, duration: clock.now - start)
        return succeeded
    }

    private func finish(_ number: Int, _ trigger: Trigger, succeeded: Bool, report: RunReport, duration: Duration,
                        extra: Logger.Metadata = [:]) {
        if !succeeded { metrics.error(stage: "pass") }
        metrics.record(succeeded: succeeded, report: report, duration: duration)
        let milliseconds = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        var metadata: Logger.Metadata = [
            "pass": "\(number)", "trigger": "\(trigger.rawValue)", "result": "\(succeeded ? "converged" : "failed")",
            "changes": "\(report.counts.planned)", "done": "\(report.counts.done)", "failed": "\(report.counts.failed)",
            "ms": "\((milliseconds * 10).rounded() / 10)",
        ]
        metadata.merge(extra) { _, new in new }
        if let stamp = report.stamp { metadata["stamp"] = "\(stamp)" }
        if let observed = report.observed { metadata["entries"] = "\(observed.entries)" }
        if succeeded {
            logger.info("pass", metadata: metadata)
        } else {
            logger.error("pass", metadata: metadata)
        }
    }
}
