import BPFTreeCore
import BPFTreeKernel

/// A plan made from the convergence stamp: none when a walk of its roots finds the tree it recorded, or
/// its repair of the paths that drifted; and the stamp written again after a repair.
extension Pipeline {
    struct Repair {
        var stamp: TreeStamp
        var drift: [TreePath]
        /// The pins the walk inspected (the stamp's links).
        var inspectedPins = 0
    }

    /// The cgroups the stamp's sources hold, as `Repair.plan` scanned them, and the inputs digest with them.
    struct StampScan {
        var sources: [CgroupSource]
        var scan: CgroupScan
        var digest: [UInt8]
    }
}

extension Pipeline.Repair {
    /// The plan the stamp gives, when it was made from these inputs and the cgroups its templates were
    /// rendered for still are the ones there: none when a walk of its roots finds the tree it recorded,
    /// or its repair of the paths that drifted (`TreeStamp.repairPlan`). nil: plan in full. Any error
    /// here only means planning in full, which reports it.
    /// `cgroupsChanged`: the stamp, when only the cgroups differ from it and the tree does not.
    static func plan(_ anchor: Anchor, filesDigest: [UInt8], scanned: inout Pipeline.StampScan?, cgroupsChanged: inout TreeStamp?)
        -> (repair: Pipeline.Repair, inputs: [UInt8], scan: CgroupScan, plan: Plan)? {
        guard let store = try? StampStore.open(anchor, create: false), let stamp = try? store.read(),
              let scan = try? CgroupScanner.scan(stamp.cgroupSources) else { return nil }
        let inputs = TreeStamp.inputsDigest(files: filesDigest, cgroups: scan.digestLines)
        scanned = Pipeline.StampScan(sources: stamp.cgroupSources, scan: scan, digest: inputs)
        guard stamp.inputs == inputs || stamp.filesDigest == filesDigest else { return nil }
        // A rebuilt object is no change the walk sees, nor one a delta plans.
        guard TargetIdentity.hold(stamp.targets) else { return nil }
        var observer = TreeObserver(anchor: anchor)
        observer.inspectsPins = false
        observer.workers = TreeObserver.availableWorkers
        for record in stamp.records where record.state != 0 {
            observer.alsoInspects[record.path] = .init(inode: record.inode, id: record.object)
        }
        guard let live = try? observer.observe(roots: stamp.roots, expectedEntries: stamp.records.count) else { return nil }
        let drift = stamp.drift(live)
        guard stamp.inputs == inputs else {
            if drift.isEmpty { cgroupsChanged = stamp }
            return nil
        }
        let repair = Pipeline.Repair(stamp: stamp, drift: drift, inspectedPins: live.inspectedPins)
        if drift.isEmpty { return (repair, inputs, scan, Plan(notices: stamp.notices)) }
        return stamp.repairPlan(drift: drift, live: live).map { (repair, inputs, scan, $0) }
    }

    /// After a repair from the stamp: the stamp with the drifted paths as they are now, written when each
    /// is as declared (and a map created again is the ledger's). Returns whether it was written.
    func restamp(inputs: [UInt8], anchor: Anchor) throws(KernelError) -> Bool {
        var stamp = self.stamp
        var observer = TreeObserver(anchor: anchor)
        observer.inspectsPins = false
        let ledger = try LedgerStore.open(anchor, create: false)
        for path in drift {
            guard let current = try observer.entry(at: path) else { return false }
            // A stat-only entry cannot tell a map from another pin; the recorded inode names the object.
            let record = current.inode == stamp.record(at: path)?.inode ? nil : try ledger?.record(at: path)
            let ownedNow = record.map { $0.state == .owned && $0.inode == current.inode } ?? false
            guard stamp.settle(path, as: current, ownedNow: ownedNow) else { return false }
        }
        guard let store = try StampStore.open(anchor, create: true) else { return false }
        return try store.write(stamp)
    }
}
