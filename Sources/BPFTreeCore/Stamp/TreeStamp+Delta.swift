import BPFTreeYAML

/// A pass after cgroups came or went while nothing else changed, cut from the stamp: the subtrees of the
/// cgroups' template instances, the stamp's declarations of their ancestors, and what the maps outside
/// them already need of each policy scope. The planner plans just that.
public struct StampDelta: Sendable {
    /// The instances' roots, added and removed.
    public var scope: PathScope
    /// The new instances' entries and the declared ancestors of every root.
    public var desired: DesiredTree
    /// Estimated memory of the maps outside `scope`, by policy scope (for `PolicyCheck.violations`).
    public var scopeMemory: [SourceLocation: UInt64]
    public var addedRoots: Set<TreePath>
    public var removedRoots: Set<TreePath>
}

extension TreeStamp {
    /// The delta from the stamp's cgroups to `now`, for `manifests` (decoded from the files the stamp was
    /// made for). nil when only a full plan can tell: nothing or too much changed, a name bpffs cannot
    /// hold, a new subtree where the stamp knows entries or without its parent, a removed subtree that
    /// holds another manifest's entries or leaves an implicit parent with nothing to hold, a tree with
    /// programs or links (the stamp keeps no declaration of them to tell whose they are).
    public func delta(manifests: [Manifest], policies: PolicySet, cgroups now: [CgroupSource: [Cgroup]],
                      possibleCPUs: Int) -> StampDelta? {
        guard repairs else { return nil }
        var added: [CgroupSource: [Cgroup]] = [:], removed: [CgroupSource: [Cgroup]] = [:]
        var changes = 0
        for source in cgroupSources {
            let before = cgroups[source] ?? [], after = now[source] ?? []
            let beforeSet = Set(before), afterSet = Set(after)
            added[source] = after.filter { !beforeSet.contains($0) }
            removed[source] = before.filter { !afterSet.contains($0) }
            changes += (added[source]?.count ?? 0) + (removed[source]?.count ?? 0)
        }
        // A delta pays off for a few cgroups; many are cheaper planned in full.
        guard changes > 0, changes <= max(64, records.count / 16) else { return nil }
        var addedRoots: Set<TreePath> = [], removedRoots: Set<TreePath> = []
        var entries: [DesiredEntry] = []
        for manifest in manifests {
            guard let compiled = CompiledTemplate(manifest) else { continue }
            let template = compiled.template
            for cgroup in removed[template.source] ?? [] {
                guard case .success(let root) = compiled.root(for: cgroup) else { return nil }
                // Everything declared there must be this template's (no other manifest's entry stays).
                guard subtree(at: root).allSatisfy({ $0.declaration.map { declarations[$0].manifest == manifest.name } ?? true })
                else { return nil }
                removedRoots.insert(root)
            }
            let (instances, skipped) = compiled.instances(added[template.source] ?? [])
            guard skipped.isEmpty else { return nil }
            for instance in instances {
                guard addedRoots.insert(instance.root).inserted else { return nil }
                entries += instance.entries
            }
        }
        for root in addedRoots where !removedRoots.contains(root) {
            guard subtree(at: root).isEmpty else { return nil }
        }
        let scope = PathScope(addedRoots.union(removedRoots))
        // The ancestors of every root, as the stamp declares them: all there, directories, declared.
        var ancestors: Set<TreePath> = []
        for root in addedRoots.union(removedRoots) {
            for ancestor in root.ancestors where !scope.contains(ancestor) && ancestors.insert(ancestor).inserted {
                guard let record = record(at: ancestor), record.type == 1, let entry = desiredEntry(record),
                      case .directory = entry.kind else { return nil }
                // An implicit parent stays only while something declared is beneath it.
                if entry.origin == nil, !holdsDeclared(ancestor, besides: removedRoots, added: addedRoots) { return nil }
                entries.append(entry)
            }
        }
        let paths = entries.map(\.path)
        guard Set(paths).count == paths.count else { return nil }
        var memory: [SourceLocation: UInt64] = [:]
        if policies.scopes.contains(where: { $0.maxScopeMemory != nil }) {
            memory = PolicyCheck.scopeMemory(records.lazy.filter { !scope.contains($0.path) }.compactMap(desiredEntry),
                                             policies, possibleCPUs: possibleCPUs)
        }
        return StampDelta(scope: scope, desired: DesiredTree(entries: entries, roots: scope.roots), scopeMemory: memory,
                          addedRoots: addedRoots, removedRoots: removedRoots)
    }

    /// The records at or beneath `root`, in path order (a subtree is contiguous in path order).
    func subtree(at root: TreePath) -> ArraySlice<Record> {
        let start = records.partitionIndex { !($0.path < root) }
        var end = start
        while end < records.count, records[end].path == root || records[end].path.isDescendant(of: root) { end += 1 }
        return records[start..<end]
    }

    /// Whether something declared beneath `directory` is outside `removed`, or an added root is beneath it.
    private func holdsDeclared(_ directory: TreePath, besides removed: Set<TreePath>, added: Set<TreePath>) -> Bool {
        if added.contains(where: { $0.isDescendant(of: directory) }) { return true }
        // Stops at the first one: a parent of thousands of instances is not walked to its end.
        var index = records.partitionIndex { !($0.path < directory) }
        if index < records.count, records[index].path == directory { index += 1 }
        while index < records.count, records[index].path.isDescendant(of: directory) {
            let path = records[index].path
            if records[index].declaration != nil, !removed.contains(path), !path.ancestors.contains(where: removed.contains) {
                return true
            }
            index += 1
        }
        return false
    }

    /// This stamp after a delta pass: the records in `scope` replaced by `live`'s (declared as in `desired`,
    /// owned as `owned` says), the roots, notices, inputs and cgroups of the pass.
    public func replacing(_ delta: StampDelta, live: LiveTree, owned: (TreePath) -> Bool, notices scopeNotices: [PlanNotice],
                          inputs: [UInt8], cgroups: [CgroupSource: [Cgroup]]) -> TreeStamp {
        var stamp = self
        var index: [Declaration: Int] = Dictionary(minimumCapacity: declarations.count)
        for (number, declaration) in declarations.enumerated() { index[declaration] = number }
        var fresh: [Record] = []
        for path in live.sortedPaths where delta.scope.contains(path) {
            guard let entry = live[path] else { continue }
            var record = Record(path, entry)
            Self.declare(&record, delta.desired, owned: owned, declarations: &stamp.declarations, index: &index)
            fresh.append(record)
        }
        // Both in path order: merge.
        let kept = records.filter { !delta.scope.contains($0.path) }
        var merged: [Record] = []
        merged.reserveCapacity(kept.count + fresh.count)
        var (i, j) = (0, 0)
        while i < kept.count || j < fresh.count {
            if j == fresh.count || i < kept.count && kept[i].path < fresh[j].path {
                merged.append(kept[i]); i += 1
            } else {
                merged.append(fresh[j]); j += 1
            }
        }
        stamp.records = merged
        let known = Set(roots)
        stamp.roots = (roots.filter { !delta.removedRoots.contains($0) } + delta.addedRoots.filter { !known.contains($0) }).sorted()
        stamp.notices = (notices.filter { !delta.scope.contains($0.path) } + scopeNotices.filter { delta.scope.contains($0.path) })
            .sorted { $0.path < $1.path }
        stamp.inputs = inputs
        stamp.cgroups = cgroups
        return stamp
    }
}
