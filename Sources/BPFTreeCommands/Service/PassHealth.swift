import FoundationEssentials
import Synchronization

/// Whether the service is healthy, as `/healthz` answers: the last pass succeeded and ended less than
/// `maxAge` ago. Written by the reconciler after each pass, read by the metrics server.
final class PassHealth: Sendable {
    private struct Last {
        var succeeded: Bool
        var at: ContinuousClock.Instant
    }

    let maxAge: Duration
    private let last = Mutex<Last?>(nil)

    init(maxAge: Duration) { self.maxAge = maxAge }

    func record(succeeded: Bool) {
        last.withLock { $0 = Last(succeeded: succeeded, at: .now) }
    }

    /// `/healthz`'s answer: healthy or not, and a line saying why.
    func check(now: ContinuousClock.Instant = .now) -> (healthy: Bool, reason: String) {
        guard let last = last.withLock({ $0 }) else { return (false, "no pass has ended yet") }
        let age = now - last.at
        let tenths = Int((Double(age.components.seconds) * 10 + Double(age.components.attoseconds) / 1e17).rounded())
        let seconds = "\(tenths / 10).\(tenths % 10)"
        if !last.succeeded { return (false, "the last pass failed \(seconds)s ago") }
        if age > maxAge { return (false, "the last pass succeeded \(seconds)s ago, longer than \(maxAge.components.seconds)s") }
        return (true, "ok: the last pass succeeded \(seconds)s ago")
    }
}
