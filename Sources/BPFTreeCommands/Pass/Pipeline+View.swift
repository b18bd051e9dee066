import BPFTreeCore
import BPFTreeKernel
import BPFTreeYAML

extension Pipeline {
    /// A view's plan and the observation it was made from.
    struct ViewPlanned {
        var plan: Plan
        var live: LiveTree
        var ledger: Ledger
    }

    /// Why a view was not planned: only a full pass can decide (why), or the kernel refused.
    enum ViewRefusal: Error {
        case needsFullPass(String)
        case failed(KernelError)
    }

    /// Plans a part of the tree as a full pass plans it for that part, for a cgroup pass (`PlanView`) and a
    /// delta from the stamp (`StampDelta`) alike: `desired` (the part's entries and what they need) checked
    /// against the token's delegation, its programs and links resolved (`targets`: what is known already),
    /// checked against the policies (`scopeMemory`: what the maps outside it need), the ledger records of
    /// its paths looked up, `roots` observed, and planned. Refused when the part cannot decide alone: a
    /// problem, a change outside `scope`, a replaced map (whose users may be anywhere).
    static func planView(_ desired: DesiredTree, scope: PathScope, observe roots: [TreePath], targets known: ResolvedTargets,
                         decoded: ManifestLoader.Decoded, scopeMemory: [SourceLocation: UInt64], anchor: Anchor,
                         delegation: BPFDelegation?, force: Bool) -> Result<ViewPlanned, ViewRefusal> {
        var targets = known
        var diagnostics = delegation.map { DelegationCheck.violations(desired, $0) } ?? []
        if desired.hasProgramsOrLinks { diagnostics += PinResolver.resolve(desired, into: &targets, delegation: delegation) }
        diagnostics += PolicyCheck.violations(desired, decoded.policies, possibleCPUs: Machine.possibleCPUs,
                                              machineMemory: Machine.physicalMemory, scopeMemory: scopeMemory, targets: targets)
        guard diagnostics.isEmpty else { return .failure(.needsFullPass("a new subtree does not validate")) }
        let live: LiveTree, ledger: Ledger
        do throws(KernelError) {
            // The ledger records of the view's paths only: lookups, not a read of the whole ledger. A map pin
            // whose inode is the one recorded is bpftree's map, not inspected (most of what a removed cgroup leaves).
            let lookups = try LedgerLookups(anchor, scope: decoded.scope)
            var observer = TreeObserver(anchor: anchor)
            observer.vouched = VouchedPins(desired: desired) { lookups.record(at: $0) }
            live = try observer.observe(roots: roots, expectedEntries: desired.entries.count)
            for path in live.entries.keys { _ = lookups.record(at: path) }
            for entry in desired.entries { _ = lookups.record(at: entry.path) }
            ledger = try lookups.ledger()
        } catch {
            return .failure(.failed(error))
        }
        let plan = Planner.plan(desired: desired, live: live, ledger: ledger, policies: decoded.policies, force: force, targets: targets)
        guard plan.problems.isEmpty else { return .failure(.needsFullPass("the plan for the new subtrees has conflicts")) }
        guard plan.lies(within: scope) else { return .failure(.needsFullPass("the plan changes paths outside the cgroups' subtrees")) }
        if plan.actions.contains(where: { if case .replaceMap = $0.change { true } else { false } }) {
            return .failure(.needsFullPass("a map in the subtrees is replaced"))
        }
        return .success(ViewPlanned(plan: plan, live: live, ledger: ledger))
    }
}
