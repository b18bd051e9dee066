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

/// The outcome of executing a plan: counts by outcome and category, the first failure, and (when the
/// executor keeps them) every action with its outcome, in execution order.
public struct ExecutionReport: Sendable {
    /// Every result; empty unless the executor was asked to keep them (100,000 actions are tens of MiB).
    public var results: [ActionResult] = []
    /// Every object made and put in place, with its inode, mode and owner (`ExecutedState`).
    public var made: [MadeEntry] = []
    /// How many times the batch syscall program ran.
    public var batchRuns = 0
    public private(set) var total = 0
    public private(set) var done = 0
    public private(set) var notDone = 0
    /// Done actions by category.
    public private(set) var doneByCategory: [Action.Category: Int] = [:]
    /// The first action that failed, with its error.
    public private(set) var failure: (Action, KernelError)?

    public init() {}

    public var failed: Int { total - done - notDone }

    mutating func add(_ result: ActionResult, keep: Bool) {
        total += 1
        switch result.outcome {
        case .done:
            done += 1
            doneByCategory[result.action.category, default: 0] += 1
        case .notDone:
            notDone += 1
        case .failed(let error):
            if failure == nil { failure = (result.action, error) }
        }
        if keep { results.append(result) }
    }
}
