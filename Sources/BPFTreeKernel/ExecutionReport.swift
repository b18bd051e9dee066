import BPFTreeCore

/// What happened to one planned action.
public struct ActionResult: Sendable {
    public enum Outcome: Sendable {
        case done
        case failed(KernelError)
        /// Not attempted because an earlier action failed.
        case notDone
    }

    public var action: Action
    public var outcome: Outcome
    /// Entries copied by a migration.
    public var copied: UInt64?

    public init(action: Action, outcome: Outcome, copied: UInt64? = nil) {
        self.action = action
        self.outcome = outcome
        self.copied = copied
    }
}

/// The outcome of executing a plan: every action with its outcome, in execution order.
public struct ExecutionReport: Sendable {
    public var results: [ActionResult] = []
    /// How many times the batch syscall program ran.
    public var batchRuns = 0

    public init() {}

    public var done: Int { results.count { if case .done = $0.outcome { true } else { false } } }
    public var failure: (Action, KernelError)? {
        for result in results { if case .failed(let error) = result.outcome { return (result.action, error) } }
        return nil
    }
    public var failed: Int { results.count - done - notDone }
    public var notDone: Int { results.count { if case .notDone = $0.outcome { true } else { false } } }
}
