import BPFTreeCore
import BPFTreeKernel
import Glibc

/// Manifests and policies in, plan out: validate everything, open the anchor, read the ledger, observe,
/// plan, and check what only the kernel can tell (whether migrated entries fit, which programs hold a
/// replaced map). Reports every problem it finds together and returns nil if there was one.
enum Pipeline {
    struct Planned {
        var anchor: Anchor
        var plan: Plan
    }

    static func plan(_ options: CommonOptions, report: inout RunReport, console: Console) -> Planned? {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let loader = ManifestLoader(pageSize: pageSize > 0 ? pageSize : 4096)
        let desired = loader.loadTree(options.files)
        let policies = loader.loadPolicies(options.policies)
        let anchor: Result<Anchor, KernelError> = Result { () throws(KernelError) in try options.openAnchor() }
        var diagnostics: [Diagnostic] = []
        if case .failure(let failure) = desired { diagnostics += failure.diagnostics }
        if case .failure(let failure) = policies { diagnostics += failure.diagnostics }
        if case .success(let desired) = desired, case .success(let policies) = policies {
            diagnostics += PolicyCheck.violations(desired, policies, possibleCPUs: Machine.possibleCPUs)
        }
        var ok = true
        if !diagnostics.isEmpty {
            let failure = ValidationFailure(diagnostics)
            report.add(failure)
            console.err(console.text.diagnostics(failure))
            ok = false
        }
        if case .failure(let error) = anchor {
            report.errors.append(error.description)
            console.err(["error: \(error)"])
            ok = false
        }
        guard ok, case .success(let desired) = desired, case .success(let policies) = policies,
              case .success(let anchor) = anchor else { return nil }
        var plan: Plan
        do {
            let ledger = try LedgerStore.open(anchor, create: false)?.read() ?? Ledger()
            let roots = desired.roots + ledger.extraRoots(beyond: desired.roots)
            var observer = TreeObserver(anchor: anchor)
            if !options.verify { observer.vouched = ledger.vouchedMaps(for: desired) }
            let live = try observer.observe(roots: roots)
            report.observed = RunReport.Observed(entries: live.entries.count, inspectedPins: live.inspectedPins)
            plan = Planner.plan(desired: desired, live: live, ledger: ledger, policies: policies, force: options.force)
            try checkReplacements(&plan, anchor: anchor)
        } catch {
            report.errors.append(error.description)
            console.err(["error: \(error)"])
            return nil
        }
        report.add(plan)
        if !plan.problems.isEmpty {
            console.out(console.text.notices(plan))
            console.err(console.text.problems(plan)
                        + ["\(plan.problems.count) conflict\(plan.problems.count == 1 ? "" : "s") with the live tree; nothing was changed."])
            return nil
        }
        return Planned(anchor: anchor, plan: plan)
    }

    /// Refuses migrations whose entries do not fit the new map, and notes the programs that keep using a
    /// map that is replaced (a pin is only a name).
    private static func checkReplacements(_ plan: inout Plan, anchor: Anchor) throws(KernelError) {
        var oldIDs: [UInt32: TreePath] = [:]
        var refused: Set<TreePath> = []
        for action in plan.actions {
            guard case .replaceMap(let spec, _, _, let old, let migrate, let differences) = action.change else { continue }
            oldIDs[old.id] = action.path
            guard migrate, !spec.type.isArray else { continue }
            let count = try MapEntries.count(anchor: anchor, path: action.path, keySize: spec.keySize)
            if count > UInt64(spec.maxEntries) {
                refused.insert(action.path)
                plan.problems.append(PlanProblem(
                    path: action.path,
                    message: "cannot migrate: the map holds \(count) entries and the new maxEntries is \(spec.maxEntries)",
                    origin: action.origin, differences: differences))
            }
        }
        plan.actions.removeAll { refused.contains($0.path) && $0.category == .replace }
        for (id, programs) in try ProgramTable.users(of: Set(oldIDs.keys)) {
            guard let path = oldIDs[id] else { continue }
            plan.notices.append(PlanNotice(
                path: path,
                message: "map id \(id) is used by program\(programs.count == 1 ? "" : "s") \(programs.map(\.description).joined(separator: ", ")); \(programs.count == 1 ? "it keeps" : "they keep") using the old map after the replacement",
                category: .programs))
        }
        plan.notices.sort { $0.path < $1.path }
    }
}
