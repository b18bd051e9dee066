/// What the service knows is declared, in parts, so that one cgroup's subtree can be added or removed
/// without merging the whole tree again: the declarations that are not templates, merged, and each
/// template instance's entries by the instance's root.
public struct DesiredParts: Sendable {
    public private(set) var fixed: DesiredTree
    /// Instance root -> the entries rendered beneath it (every template of the cgroup that renders there).
    public private(set) var instances: [TreePath: [DesiredEntry]] = [:]
    /// Proper ancestors of instance roots, with how many roots lie beneath each and the manifest of the
    /// first (an implicit parent's, where nothing fixed declares it).
    private var aboveInstances: [TreePath: (count: Int, manifest: String)] = [:]
    /// Path -> the fixed entries that reference it (a program's bound map, a link's program).
    private let referrers: [TreePath: [TreePath]]

    public init(fixed: DesiredTree) {
        self.fixed = fixed
        var referrers: [TreePath: [TreePath]] = [:]
        for entry in fixed.entries {
            for path in entry.kind.references { referrers[path, default: []].append(entry.path) }
        }
        self.referrers = referrers
    }

    /// Whether an instance at `root` would overlap one there is: the same root, or one above or beneath.
    public func overlaps(_ root: TreePath) -> Bool {
        instances[root] != nil || aboveInstances[root] != nil || root.ancestors.contains { instances[$0] != nil }
    }

    /// Adds entries beneath the instance `root` (appended when the root has entries already).
    public mutating func add(_ root: TreePath, _ entries: [DesiredEntry]) {
        for entry in entries where !referencesAcrossInstances {
            referencesAcrossInstances = entry.kind.references.contains { used in
                used != root && !used.isDescendant(of: root) && !fixed.declares(used)
            }
        }
        if instances[root] == nil {
            let manifest = entries.first?.manifest ?? ""
            for ancestor in root.ancestors { aboveInstances[ancestor, default: (0, manifest)].count += 1 }
        }
        instances[root, default: []] += entries
    }

    /// Removes the instance at `root`.
    public mutating func remove(_ root: TreePath) {
        guard instances.removeValue(forKey: root) != nil else { return }
        for ancestor in root.ancestors {
            guard var above = aboveInstances[ancestor] else { continue }
            above.count -= 1
            aboveInstances[ancestor] = above.count > 0 ? above : nil
        }
    }

    func referrers(of path: TreePath) -> [TreePath] { referrers[path] ?? [] }

    /// The implicit parent at `path` that instances beneath it need, when nothing fixed declares it.
    func implicitParent(at path: TreePath) -> DesiredEntry? {
        guard let above = aboveInstances[path] else { return nil }
        var entry = DesiredEntry(path: path, kind: .directory, mode: nil, origin: nil)
        entry.implicitFor = above.manifest
        return entry
    }

    /// Whether an instance entry uses a path that is neither in its own instance nor fixed (another
    /// cgroup's subtree): a view cannot see such uses, so every pass is then a full one.
    public private(set) var referencesAcrossInstances = false

    /// The parts of `manifests` rendered for `cgroups`, and the notices about cgroups that got no subtree.
    /// Fails when the fixed declarations do not merge; instances are checked when a view takes them.
    public static func render(_ manifests: [Manifest], cgroups: [CgroupSource: [Cgroup]])
        -> (parts: Result<DesiredParts, ValidationFailure>, notices: [PlanNotice]) {
        let fixed = DesiredTree.build(manifests.filter { $0.forEachCgroup == nil })
        guard case .success(let tree) = fixed else { return (fixed.map(DesiredParts.init(fixed:)), []) }
        var parts = DesiredParts(fixed: tree)
        var notices: [PlanNotice] = []
        for template in manifests where template.forEachCgroup != nil {
            let (instances, skipped) = template.instances(cgroups)
            notices += skipped
            for instance in instances { parts.add(instance.root, instance.entries) }
        }
        return (.success(parts), notices)
    }
}

extension DesiredEntry.Kind {
    /// The declared paths this entry uses: a program's bound maps, a link's program.
    var references: [TreePath] {
        switch self {
        case .program(let spec): spec.maps.map(\.path)
        case .link(let spec): [spec.program]
        case .directory, .map: []
        }
    }
}

/// The part of the declared tree one incremental pass plans from: the subtrees at `scope` and what the
/// planner must see around them (their ancestors, the programs and maps their entries use, the entries
/// that use them), so that planning the view gives, for `scope`, the plan a full pass would give.
public struct PlanView: Sendable {
    public var scope: PathScope
    public var desired: DesiredTree
    /// What to observe (`TreeObserver.observe(roots:)`): the scope's roots and the context's pins.
    public var observed: [TreePath]

    /// The view for the instances at `roots` (added, removed or changed) of `parts`; fails with the
    /// problems of the merged view (a path declared twice, a reference to nothing).
    public static func make(_ parts: DesiredParts, roots: [TreePath]) -> Result<PlanView, ValidationFailure> {
        let scope = PathScope(roots)
        var declared: [DesiredEntry] = []
        var implicit: [TreePath: DesiredEntry] = [:]
        var seen: Set<TreePath> = []
        var context: [TreePath] = []
        var pending: [DesiredEntry] = []
        func take(_ entry: DesiredEntry, inScope: Bool) {
            guard entry.origin != nil else {
                implicit[entry.path] = entry
                return
            }
            // Every entry in scope goes in, so that the merge finds a path declared twice.
            let isNew = seen.insert(entry.path).inserted
            guard inScope || isNew else { return }
            declared.append(entry)
            pending.append(entry)
            if !inScope && entry.kind != .directory { context.append(entry.path) }
        }
        func ancestors(of path: TreePath) {
            for ancestor in path.ancestors where !seen.contains(ancestor) && implicit[ancestor] == nil {
                if let entry = parts.fixed[ancestor] ?? parts.implicitParent(at: ancestor) { take(entry, inScope: false) }
            }
        }
        for root in scope.roots {
            ancestors(of: root)
            for entry in parts.fixed.subtree(at: root) { take(entry, inScope: true) }
        }
        for root in Set(roots) {
            for entry in parts.instances[root] ?? [] { take(entry, inScope: true) }
        }
        let inScope = declared.map(\.path)
        for path in inScope {
            for referrer in parts.referrers(of: path) where !seen.contains(referrer) {
                if let entry = parts.fixed[referrer] {
                    ancestors(of: referrer)
                    take(entry, inScope: false)
                }
            }
        }
        // What the entries use, and what that uses in turn (a link's program, the program's maps).
        while let entry = pending.popLast() {
            for path in entry.kind.references where !seen.contains(path) {
                guard let used = parts.fixed[path] else { continue }
                ancestors(of: path)
                take(used, inScope: false)
            }
        }
        return DesiredTree.merge([declared], roots: Set(scope.roots), implicit: implicit, diagnostics: []).map {
            PlanView(scope: scope, desired: $0, observed: scope.roots + context)
        }
    }

    /// The paths whose ledger records planning the view needs: the declared ones and those of `live`.
    public func ledgerPaths(live: LiveTree) -> Set<TreePath> {
        var paths = Set(live.entries.keys)
        for entry in desired.entries { paths.insert(entry.path) }
        return paths
    }
}

extension DesiredTree {
    /// The entries at and beneath `root`, in path order.
    public func subtree(at root: TreePath) -> ArraySlice<DesiredEntry> {
        let low = entries.partitionIndex { !($0.path < root) }
        var end = low
        while end < entries.count, entries[end].path == root || entries[end].path.isDescendant(of: root) { end += 1 }
        return entries[low..<end]
    }
}
