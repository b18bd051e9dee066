import BPFTreeCore
import BPFTreeKernel

extension Pipeline {
    /// A plan made from the stamp after cgroups came or went: the view of their subtrees (`StampDelta`),
    /// what was observed of it, and the cgroups found now.
    struct Delta {
        var stamp: TreeStamp
        var view: StampDelta
        var live: LiveTree
        var ledger: Ledger
        var cgroups: [CgroupSource: [Cgroup]]
    }

    /// The plan for the subtrees of the cgroups that came or went since `stamp`, while the files and the
    /// tree are as it recorded them. nil when only a full plan can tell (`TreeStamp.delta`), or when the
    /// view does not validate or plans anything a view cannot decide alone (a conflict, a change outside
    /// the subtrees, a replaced map): the full plan then reports it.
    static func planDelta(_ stamp: TreeStamp, scan: CgroupScan, decoded: ManifestLoader.Decoded, anchor: Anchor,
                          token: BPFToken?, options: CommonOptions) -> (Delta, Plan)? {
        guard let view = stamp.delta(manifests: decoded.manifests, policies: decoded.policies, cgroups: scan.cgroups,
                                     possibleCPUs: Machine.possibleCPUs) else { return nil }
        let desired = view.desired
        guard !desired.hasProgramsOrLinks else { return nil }
        var diagnostics = token.map { DelegationCheck.violations(desired, $0.delegation) } ?? []
        diagnostics += PolicyCheck.violations(desired, decoded.policies, possibleCPUs: Machine.possibleCPUs,
                                              machineMemory: Machine.physicalMemory, scopeMemory: view.scopeMemory)
        guard diagnostics.isEmpty else { return nil }
        let live: LiveTree, ledger: Ledger
        do throws(KernelError) {
            // The ledger records of the view's paths only: lookups, not a read of the whole ledger.
            let lookups = try LedgerLookups(anchor, scope: decoded.scope)
            var observer = TreeObserver(anchor: anchor)
            observer.vouched = VouchedPins(desired: desired) { lookups.record(at: $0) }
            live = try observer.observe(roots: view.scope.roots, expectedEntries: desired.entries.count)
            for path in live.entries.keys { _ = lookups.record(at: path) }
            for entry in desired.entries { _ = lookups.record(at: entry.path) }
            ledger = try lookups.ledger()
        } catch {
            return nil
        }
        let plan = Planner.plan(desired: desired, live: live, ledger: ledger, policies: decoded.policies, force: options.force)
        guard plan.problems.isEmpty, plan.lies(within: view.scope),
              !plan.actions.contains(where: { if case .replaceMap = $0.change { true } else { false } }) else { return nil }
        return (Delta(stamp: stamp, view: view, live: live, ledger: ledger, cgroups: scan.cgroups), plan)
    }

    /// After a delta pass: the stamp with the view's subtrees as `live` and `ledger` now hold them, for the
    /// cgroups found now. Returns whether it was written.
    static func restamp(_ delta: Delta, live: LiveTree, ledger: Ledger, notices: [PlanNotice], inputs: [UInt8],
                        anchor: Anchor) throws(KernelError) -> Bool {
        let stamp = delta.stamp.replacing(delta.view, live: live, owned: { ledger.owns($0, in: live) }, notices: notices,
                                          inputs: inputs,
                                          cgroups: delta.cgroups.filter { delta.stamp.cgroupSources.contains($0.key) })
        guard let store = try StampStore.open(anchor, create: true) else { return false }
        return try store.write(stamp)
    }
}
