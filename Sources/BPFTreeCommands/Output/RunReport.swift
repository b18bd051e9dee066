import BPFTreeCore
import BPFTreeKernel

/// Everything a `diff` or `apply` run has to say; the single source of both text and JSON output.
/// JSON schema version 1 (documented in README.md); add fields, never change or remove them.
struct RunReport: Encodable {
    var schemaVersion = 1
    var command: String
    var anchor: String
    /// diff: changes are pending; apply: the tree was changed.
    var changes = false
    var actions: [ActionRecord] = []
    var problems: [ProblemRecord] = []
    var diagnostics: [DiagnosticRecord] = []
    var notices: [NoticeRecord] = []
    var errors: [String] = []
    var counts = Counts()
    /// What the observer read: entries, and pins inspected with BPF_OBJ_GET (the others were vouched for
    /// by the ledger). Absent when the tree was not observed.
    var observed: Observed?
    /// The convergence stamp: "matched" (nothing changed since it was written, so nothing was parsed or
    /// planned), "written" (apply found or left the tree converged and recorded it), or absent.
    var stamp: String?

    struct Observed: Encodable {
        var entries: Int
        var inspectedPins: Int
    }

    struct ActionRecord: Encodable {
        var path: String
        var kind: String
        var reason: String
        var detail: String
        var manifest: String?
        var location: String?
        /// create, update, replace, remove or ledger.
        var category: String
        /// planned (diff), done, failed or notDone (apply).
        var status: String
        var error: String?
        /// For a migration that was done: how many entries were copied.
        var entriesCopied: UInt64?
    }

    struct ProblemRecord: Encodable {
        var path: String
        var message: String
        var manifest: String?
        var location: String?
        var differences: [Difference]
        struct Difference: Encodable {
            var field: String
            var declared: String
            var live: String
        }
    }

    struct DiagnosticRecord: Encodable {
        var location: String
        var field: String
        var message: String
    }

    struct NoticeRecord: Encodable {
        var path: String
        /// unmanaged, symlink, kept, programs or cgroup.
        var category: String
        var message: String
    }

    struct Counts: Encodable {
        var create = 0
        var update = 0
        var replace = 0
        var remove = 0
        var ledger = 0
        var done = 0
        var failed = 0
        var notDone = 0
        var batchRuns = 0

        /// Every change the plan held.
        var planned: Int { create + update + replace + remove + ledger }
    }

    /// Whether per-action and per-notice records are kept: only JSON output prints them, and for a tree of
    /// 100,000 entries they are tens of MiB.
    var keepsRecords = true
    /// Actions done, by category (for reconcile's metrics; not part of the JSON document).
    var doneByCategory: [Action.Category: Int] = [:]

    enum CodingKeys: String, CodingKey {
        case schemaVersion, command, anchor, changes, actions, problems, diagnostics, notices, errors, counts, observed, stamp
    }

    init(command: String, anchor: String, keepsRecords: Bool = true) {
        self.command = command
        self.anchor = anchor
        self.keepsRecords = keepsRecords
    }

    var failed: Bool { !problems.isEmpty || !diagnostics.isEmpty || !errors.isEmpty || counts.failed > 0 }

    mutating func add(_ failure: ValidationFailure) {
        diagnostics += failure.diagnostics.map {
            DiagnosticRecord(location: $0.location.description, field: $0.field, message: $0.message)
        }
    }

    mutating func add(_ plan: Plan) {
        actions = keepsRecords ? plan.actions.map { record($0, status: "planned", error: nil) } : []
        problems = plan.problems.map { problem in
            ProblemRecord(path: problem.path.description, message: problem.message, manifest: problem.origin?.manifest,
                          location: problem.origin.map { $0.location.description },
                          differences: problem.differences.map { .init(field: $0.field, declared: $0.declared, live: $0.live) })
        }
        notices = !keepsRecords ? [] : plan.notices.map { NoticeRecord(path: $0.path.description, category: $0.category.rawValue, message: $0.message) }
        counts.create = plan.count(.create)
        counts.update = plan.count(.update)
        counts.replace = plan.count(.replace)
        counts.remove = plan.count(.remove)
        counts.ledger = plan.count(.ledger)
        changes = plan.hasChanges
    }

    mutating func add(_ execution: ExecutionReport) {
        actions = !keepsRecords ? [] : execution.results.map { result in
            switch result.outcome {
            case .done: record(result.action, status: "done", error: nil, copied: result.copied)
            case .failed(let error): record(result.action, status: "failed", error: error.description)
            case .notDone: record(result.action, status: "notDone", error: nil)
            }
        }
        counts.done = execution.done
        counts.failed = execution.failed
        counts.notDone = execution.notDone
        counts.batchRuns = execution.batchRuns
        doneByCategory = execution.doneByCategory
        changes = execution.done > 0
    }

    func record(_ action: Action, status: String, error: String?, copied: UInt64? = nil) -> ActionRecord {
        ActionRecord(path: action.path.description, kind: action.kind, reason: action.reason, detail: action.detail,
                     manifest: action.manifest.isEmpty ? nil : action.manifest,
                     location: action.origin.map { $0.location.description }, category: action.category.rawValue,
                     status: status, error: error, entriesCopied: copied)
    }
}
