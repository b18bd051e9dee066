import BPFTreeCore
import BPFTreeKernel

/// Terraform-style text: `+` create, `~` update, `-/+` replace, `-` remove, `*` ledger only; grouped,
/// paths relative to the anchor; colour only on a terminal.
struct TextRenderer: Sendable {
    var color: Bool

    private func paint(_ text: String, _ code: String) -> String { color ? "\u{1b}[\(code)m\(text)\u{1b}[0m" : text }

    private func symbol(_ action: Action) -> String {
        switch action.category {
        case .create: paint("+", "32")
        case .update: paint("~", "33")
        case .replace: paint("-/+", "35")
        case .remove: paint("-", "31")
        case .ledger: paint("*", "36")
        }
    }

    func line(_ action: Action, width: Int) -> String {
        let path = action.path.description.padding(toLength: width)
        return "  \(symbol(action)) \(path)  \(action.detail)"
    }

    /// The plan of a `diff`.
    func plan(_ plan: Plan, anchor: String) -> String {
        var out: [String] = []
        out += notices(plan)
        if !plan.actions.isEmpty {
            let width = plan.actions.map { $0.path.description.count }.max() ?? 0
            out.append("bpftree will perform the following actions under \(anchor):")
            for category in Action.Category.allCases {
                let actions = plan.actions.filter { $0.category == category }
                guard !actions.isEmpty else { continue }
                out.append("")
                out += actions.map { action in
                    line(action, width: width) + (category == .create ? "" : paint("  (\(action.reason))", "2"))
                }
            }
            out.append("")
            out.append("Plan: " + counts { plan.count($0) }.map { "\($1) \($0.planned($1))" }.joined(separator: ", ") + ".")
        } else if plan.problems.isEmpty {
            out.append("No changes. The tree under \(anchor) matches the manifests.")
        }
        return out.joined(separator: "\n")
    }

    /// One line per executed action, as `apply` goes.
    func progress(_ result: ActionResult) -> String {
        let action = result.action
        switch result.outcome {
        case .done:
            let copied = result.copied.map { ", \($0) \($0 == 1 ? "entry" : "entries") copied" } ?? ""
            return "  \(symbol(action)) \(action.path): \(action.isCreate ? "created " : "")\(action.detail)\(copied)"
        case .failed(let error):
            // A refusal of what a manifest declares names the declaration.
            let declared = action.origin.map { " (declared at \($0.location), \($0.field))" } ?? ""
            return "  \(paint("!", "31")) \(action.path): FAILED: \(escapingControlCharacters(error.description))\(declared)"
        case .notDone: return "  \(paint("-", "2")) \(action.path): not done (\(action.detail))"
        }
    }

    func applySummary(_ execution: ExecutionReport, anchor: String) -> String {
        let runs = "\(execution.batchRuns) batch-program run\(execution.batchRuns == 1 ? "" : "s")"
        if execution.failure == nil {
            let done = counts { category in execution.doneByCategory[category] ?? 0 }
            return "\nApply complete under \(anchor): \(done.map { "\($1) \($0.done($1))" }.joined(separator: ", ")) (\(runs))."
        }
        return paint("\nApply failed under \(anchor): \(execution.done) of \(execution.total) actions done, \(execution.failed) failed, \(execution.notDone) not done (\(runs)).", "31")
            + "\nEverything done is listed above. Fix the cause and run apply again: it plans from the tree as it now is."
    }

    /// Count per category: create and update always, the others when not zero.
    private func counts(_ count: (Action.Category) -> Int) -> [(Action.Category, Int)] {
        Action.Category.allCases.map { ($0, count($0)) }.filter { $0.1 > 0 || $0.0 == .create || $0.0 == .update }
    }

    func notices(_ plan: Plan) -> [String] {
        plan.notices.map { "  \(paint("note:", "36")) \($0)" }
    }

    func problems(_ plan: Plan) -> [String] {
        plan.problems.map { "\(paint("error:", "31")) \($0)" }
    }

    func diagnostics(_ failure: ValidationFailure) -> [String] {
        failure.diagnostics.map { "\(paint("error:", "31")) \($0)" }
            + ["\(failure.diagnostics.count) problem\(failure.diagnostics.count == 1 ? "" : "s") found; nothing was changed."]
    }
}

extension Action.Category {
    func planned(_ count: Int) -> String {
        self == .ledger ? "ledger record\(count == 1 ? "" : "s") to fix" : "to \(rawValue)"
    }

    func done(_ count: Int) -> String {
        switch self {
        case .create: "created"
        case .update: "updated"
        case .replace: "replaced"
        case .remove: "removed"
        case .ledger: "ledger record\(count == 1 ? "" : "s") fixed"
        }
    }
}

extension String {
    func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}
