import BPFTreeCore
import FoundationEssentials
import Metrics

/// The reconcile service's series (swift-metrics; exported by `MetricsServer` when `--metrics-address`
/// is given). Names and labels are documented in README.md.
struct ReconcileMetrics: Sendable {
    /// What `/healthz` answers from.
    var health: PassHealth?

    /// Records one pass: its result, the changes it found and did, its duration.
    func record(succeeded: Bool, report: RunReport, duration: Duration) {
        health?.record(succeeded: succeeded)
        Counter(label: "bpftree_reconcile_passes_total", dimensions: [("result", succeeded ? "succeeded" : "failed")]).increment()
        Counter(label: "bpftree_reconcile_drift_total").increment(by: report.counts.planned)
        Gauge(label: "bpftree_reconcile_drift").record(report.counts.planned)
        for category in Action.Category.allCases {
            let done = report.doneByCategory[category] ?? 0
            Counter(label: "bpftree_reconcile_actions_total", dimensions: [("category", category.rawValue), ("outcome", "done")])
                .increment(by: done)
        }
        Counter(label: "bpftree_reconcile_actions_total", dimensions: [("category", "any"), ("outcome", "failed")])
            .increment(by: report.counts.failed)
        Metrics.Timer(label: "bpftree_reconcile_pass_duration_seconds").recordNanoseconds(
            duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
        if succeeded {
            Gauge(label: "bpftree_reconcile_last_success_timestamp_seconds").record(Date().timeIntervalSince1970)
        }
    }

    /// An error: `stage` is `inputs` (a manifest or policy that does not load; the last good set is
    /// used) or `pass` (the pass failed).
    func error(stage: String) {
        Counter(label: "bpftree_reconcile_errors_total", dimensions: [("stage", stage)]).increment()
    }

    /// Creates every series at zero, so that the endpoint lists them before the first event.
    func declare() {
        for result in ["succeeded", "failed"] {
            Counter(label: "bpftree_reconcile_passes_total", dimensions: [("result", result)]).increment(by: 0)
        }
        for stage in ["inputs", "pass"] {
            Counter(label: "bpftree_reconcile_errors_total", dimensions: [("stage", stage)]).increment(by: 0)
        }
        Counter(label: "bpftree_reconcile_drift_total").increment(by: 0)
    }
}
