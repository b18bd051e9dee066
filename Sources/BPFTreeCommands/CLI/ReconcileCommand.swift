import ArgumentParser
import BPFTreeCore
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// `bpftree reconcile`: keeps the tree converged, as a service (or one pass with `--once`).
struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Keep the tree converged: a pass now, then on a timer, on SIGHUP and when watched cgroups change.",
        discussion: """
            Each pass reads the manifests and policies again; after a bad edit it logs the errors and keeps \
            applying the last set that loaded. SIGTERM or SIGINT lets the pass in progress finish, then exits 0.
            Exit status: 0 stopped by a signal (or, with --once, the pass succeeded), 1 error.
            """
    )

    @OptionGroup var options: CommonOptions

    @Option(help: "Time between passes (e.g. 30s, 5m, 1h; at most 30 days).")
    var interval = Seconds(30)

    @Flag(help: "Run one pass and exit with apply's exit status (for a systemd timer or cron).")
    var once = false

    @Option(name: .customLong("metrics-address"),
            help: "Serve Prometheus metrics at http://ADDRESS/metrics and health at /healthz: PORT (on 127.0.0.1), HOST:PORT or [V6]:PORT.")
    var metricsAddress: String?

    @Option(name: .customLong("lock-timeout"),
            help: "How long each pass waits for another writer's lock on the anchor (e.g. 10s, 500ms, 0 to try once).")
    var lockTimeout = Seconds(10)

    @Option(name: .customLong("max-backoff"), help: "Longest wait after failed passes (the wait doubles from 1s).")
    var maxBackoff = Seconds(300)

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func validate() throws {
        try interval.check("--interval")
        try maxBackoff.check("--max-backoff")
        try lockTimeout.check("--lock-timeout")
        if interval.value < 0.01 { throw ValidationError("--interval must be at least 10ms") }
        if maxBackoff.value < 1 { throw ValidationError("--max-backoff must be at least 1s") }
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("unknown --log-level '\(logLevel)'") }
        if let metricsAddress, MetricsServer.parse(metricsAddress) == nil {
            throw ValidationError("--metrics-address '\(metricsAddress)' is not PORT, HOST:PORT or [V6]:PORT")
        }
        if !once, options.output == .json { throw ValidationError("-o json needs --once; the service logs each pass") }
    }

    func run() async throws {
        if once { return try ApplyPass.runCommand("reconcile", options: options, lockTimeout: lockTimeout) }
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "bpftree.reconcile")
        var services: [any Service] = []
        // Healthy while passes succeed: three intervals (at least a minute) without one is not.
        let health = PassHealth(maxAge: max(.seconds(interval.value * 3), .seconds(60)))
        let metrics = ReconcileMetrics(health: health)
        if let metricsAddress, let (host, port) = MetricsServer.parse(metricsAddress) {
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            metrics.declare()
            services.append(MetricsServer(host: host, port: port, registry: registry, health: health, logger: logger))
        }
        services.append(Reconciler(options: options, interval: .seconds(interval.value), maxBackoff: .seconds(maxBackoff.value),
                                   lockTimeout: lockTimeout.value, logger: logger, metrics: metrics))
        logger.info("reconciling", metadata: [
            "anchor": "\(options.anchorDisplayName)", "interval": "\(interval.value)s",
            "manifests": "\(options.files.joined(separator: ","))",
        ])
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            // The reconciler returns only to stop (a signal it saw before the group's handlers existed):
            // that is a graceful shutdown of the group, not a failure.
            services: services.map { service in
                ServiceGroupConfiguration.ServiceConfiguration(
                    service: service,
                    successTerminationBehavior: service is Reconciler ? .gracefullyShutdownGroup : .cancelGroup)
            },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}
