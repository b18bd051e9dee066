import BPFTreeCore
import BPFTreeKernel

/// Terraform-style text: `+` create, `~` update, grouped, paths relative to the anchor; colour only on a
/// terminal.
struct TextRenderer {
    var color: Bool

    private func paint(_ text: String, _ code: String) -> String { color ? "\u{1b}[\(code)m\(text)\u{1b}[0m" : text }
    private func symbol(_ action: Action) -> String { action.isCreate ? paint("+", "32") : paint("~", "33") }

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
            let creates = plan.actions.filter(\.isCreate)
            let updates = plan.actions.filter { !$0.isCreate }
            out.append("bpftree will perform the following actions under \(anchor):")
            if !creates.isEmpty {
                out.append("")
                out += creates.map { line($0, width: width) }
            }
            if !updates.isEmpty {
                out.append("")
                out += updates.map { line($0, width: width) + paint("  (\($0.reason))", "2") }
            }
            out.append("")
            out.append("Plan: \(plan.creates) to create, \(plan.updates) to update.")
        } else if plan.problems.isEmpty {
            out.append("No changes. The tree under \(anchor) matches the manifests.")
        }
        return out.joined(separator: "\n")
    }

    /// One line per executed action, as `apply` goes.
    func progress(_ result: ActionResult) -> String {
        let action = result.action
        switch result.outcome {
        case .done: return "  \(symbol(action)) \(action.path): \(action.isCreate ? "created " : "")\(action.detail)"
        case .failed(let error): return "  \(paint("!", "31")) \(action.path): FAILED: \(error)"
        case .notDone: return "  \(paint("-", "2")) \(action.path): not done (\(action.detail))"
        }
    }

    func applySummary(_ execution: ExecutionReport, anchor: String) -> String {
        let runs = "\(execution.batchRuns) batch-program run\(execution.batchRuns == 1 ? "" : "s")"
        if execution.failure == nil {
            let created = execution.results.count(where: \.action.isCreate)
            return "\nApply complete under \(anchor): \(created) created, \(execution.results.count - created) updated (\(runs))."
        }
        return paint("\nApply failed under \(anchor): \(execution.done) of \(execution.results.count) actions done, \(execution.failed) failed, \(execution.notDone) not done (\(runs)).", "31")
            + "\nEverything done is listed above. Fix the cause and run apply again: it plans from the tree as it now is."
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

extension String {
    func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}
