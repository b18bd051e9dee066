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
}

extension Pipeline.Delta {
    /// The plan for the subtrees of the cgroups that came or went since `stamp`, while the files and the
    /// tree are as it recorded them. nil when only a full plan can tell (`TreeStamp.delta`), or when the
    /// view does not validate or plans anything a view cannot decide alone (a conflict, a change outside
    /// the subtrees, a replaced map): the full plan then reports it.
    static func plan(_ stamp: TreeStamp, scan: CgroupScan, decoded: ManifestLoader.Decoded, anchor: Anchor,
                     token: BPFToken?, options: CommonOptions) -> (Pipeline.Delta, Plan)? {
        guard let view = stamp.delta(manifests: decoded.manifests, policies: decoded.policies, cgroups: scan.cgroups,
                                     possibleCPUs: Machine.possibleCPUs) else { return nil }
        guard case .success(let planned) = Pipeline.planView(
            view.desired, scope: view.scope, observe: view.scope.roots, targets: ResolvedTargets(), decoded: decoded,
            scopeMemory: view.scopeMemory, anchor: anchor, delegation: token?.delegation, force: options.force)
        else { return nil }
        let delta = Pipeline.Delta(stamp: stamp, view: view, live: planned.live, ledger: planned.ledger, cgroups: scan.cgroups)
        return (delta, planned.plan)
    }

    /// After a delta pass: the stamp with the view's subtrees as `live` and `ledger` now hold them, for the
    /// cgroups found now. Returns whether it was written.
    func restamp(live: LiveTree, ledger: Ledger, notices: [PlanNotice], inputs: [UInt8], anchor: Anchor) throws(KernelError) -> Bool {
        let sources = stamp.cgroupSources
        let updated = stamp.replacing(view, live: live, owned: { ledger.owns($0, in: live) }, notices: notices, inputs: inputs,
                                      cgroups: cgroups.filter { sources.contains($0.key) })
        guard let store = try StampStore.open(anchor, create: true) else { return false }
        return try store.write(updated)
    }
}
