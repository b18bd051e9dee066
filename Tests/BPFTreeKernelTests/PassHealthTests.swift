@testable import BPFTreeCommands
import Testing

/// `/healthz`'s rule, with a clock given: healthy only after a successful pass younger than `maxAge`.
@Suite struct PassHealthTests {
    @Test func healthyOnlyWhileTheLastPassSucceededRecently() {
        let health = PassHealth(maxAge: .seconds(90))
        #expect(health.check() == (false, "no pass has ended yet"))
        health.record(succeeded: true)
        let now = ContinuousClock.now
        #expect(health.check(now: now).healthy)
        let stale = health.check(now: now + .seconds(91))
        #expect(!stale.healthy && stale.reason.hasSuffix("ago, longer than 90s"), "\(stale)")
        health.record(succeeded: false)
        #expect(!health.check().healthy && health.check().reason.hasPrefix("the last pass failed"))
    }
}
