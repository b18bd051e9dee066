import BPFTreeCore
import BPFTreeKernel
import Glibc

/// Manifests in, plan out: validate every manifest, open the anchor, observe, plan. Reports every
/// problem it finds (manifest errors and an unusable anchor together) and returns nil if there was one.
enum Pipeline {
    struct Planned {
        var anchor: Anchor
        var plan: Plan
    }

    static func plan(_ options: CommonOptions, report: inout RunReport, console: Console) -> Planned? {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let desired = ManifestLoader(pageSize: pageSize > 0 ? pageSize : 4096).load(options.files)
        let anchor: Result<Anchor, KernelError> = Result { () throws(KernelError) in try options.openAnchor() }
        var ok = true
        if case .failure(let failure) = desired {
            report.add(failure)
            console.err(console.text.diagnostics(failure))
            ok = false
        }
        if case .failure(let error) = anchor {
            report.errors.append(error.description)
            console.err(["error: \(error)"])
            ok = false
        }
        guard ok, case .success(let desired) = desired, case .success(let anchor) = anchor else { return nil }
        let live: LiveTree
        do {
            live = try TreeObserver(anchor: anchor).observe(roots: desired.roots)
        } catch {
            report.errors.append(error.description)
            console.err(["error: \(error)"])
            return nil
        }
        let plan = Planner.plan(desired: desired, live: live)
        report.add(plan)
        if !plan.problems.isEmpty {
            console.out(console.text.notices(plan))
            console.err(console.text.problems(plan)
                        + ["\(plan.problems.count) conflict\(plan.problems.count == 1 ? "" : "s") with the live tree; nothing was changed."])
            return nil
        }
        return Planned(anchor: anchor, plan: plan)
    }
}
