import BPFTreeCore
import BPFTreeKernel

/// A pass for the cgroups inotify named: the cgroups made or removed there are found by looking at those
/// names only, their subtrees are rendered, and the planner plans the view of just those subtrees
/// (`PlanView`). Whatever a view cannot decide alone (a problem, a change outside the subtrees, a map
/// migration) is left to a full pass, which the caller runs.
struct CgroupPass {
    var options: CommonOptions
    var lockTimeout: Double
    var console: Console

    enum Outcome {
        /// Done: `roots` were planned (none when the events named no cgroup change).
        case done(roots: Int)
        /// A full pass must decide, for this reason.
        case needsFullPass(String)
        case failed
    }

    func run(_ changes: DirectoryWatcher.Changes, _ knowledge: inout ServiceKnowledge, watcher: DirectoryWatcher?,
             report: inout RunReport) -> Outcome {
        if changes.overflowed { return .needsFullPass("inotify dropped events") }
        if let why = knowledge.fullPassesOnly { return .needsFullPass(why) }
        var roots: Set<TreePath> = []
        do throws(KernelError) {
            for (directory, names) in changes.children {
                for (source, base) in knowledge.directories {
                    guard let below = Self.relative(directory, to: base) else { continue }
                    for name in names.sorted() {
                        let child = below.isEmpty ? name : below + "/" + name
                        if let why = try update(source, base, child: child, &knowledge, roots: &roots, watcher: watcher) {
                            return .needsFullPass(why)
                        }
                    }
                }
            }
        } catch {
            return .needsFullPass("\(error)")
        }
        guard !roots.isEmpty else { return .done(roots: 0) }
        let view: PlanView
        switch PlanView.make(knowledge.parts, roots: Array(roots)) {
        case .failure: return .needsFullPass("the new subtrees do not merge with the declared tree")
        case .success(let made): view = made
        }
        return plan(view, knowledge, report: &report)
    }

    /// Brings the scan and the parts up to date for the cgroups at or beneath `child` of `source`, and adds
    /// the roots of their instances to `roots`; returns why a full pass must decide instead, if it must.
    private func update(_ source: CgroupSource, _ base: String, child: String, _ knowledge: inout ServiceKnowledge,
                        roots: inout Set<TreePath>, watcher: DirectoryWatcher?) throws(KernelError) -> String? {
        let (now, watched) = try CgroupScanner.cgroups(of: source, in: base, at: child)
        if !watched.isEmpty { watcher?.add(watched) }
        var before: [Cgroup] = knowledge.cgroups[source]?[child].map { [$0] } ?? []
        if child.split(separator: "/").count < source.depth {
            // A directory between the source and its cgroups: everything beneath it.
            let nested = child + "/"
            before = knowledge.cgroups[source]?.values.filter { $0.path.hasPrefix(nested) } ?? []
        }
        let removed = before.filter { !now.contains($0) }, added = now.filter { !before.contains($0) }
        guard !removed.isEmpty || !added.isEmpty else { return nil }
        // In place: a copy of the table per event would cost the number of cgroups each time.
        for cgroup in removed { knowledge.cgroups[source, default: [:]][cgroup.path] = nil }
        for cgroup in added { knowledge.cgroups[source, default: [:]][cgroup.path] = cgroup }
        for template in knowledge.templates(of: source) {
            for cgroup in removed {
                guard case .success(let root) = template.root(for: cgroup) else { continue }
                knowledge.remove(root)
                roots.insert(root)
            }
            guard !added.isEmpty else { continue }
            let (instances, skipped) = template.instances(added)
            if !skipped.isEmpty { return "a new cgroup's name cannot be a bpffs name" }
            for instance in instances {
                // An instance beside one of a cgroup already there: only a full merge can say which wins.
                if knowledge.parts.overlaps(instance.root) && !roots.contains(instance.root) {
                    return "the subtree \(instance.root) overlaps another cgroup's"
                }
                knowledge.add(instance.root, instance.entries)
                roots.insert(instance.root)
            }
        }
        return nil
    }

    /// Plans `view` against the tree and runs the plan.
    private func plan(_ view: PlanView, _ knowledge: ServiceKnowledge, report: inout RunReport) -> Outcome {
        let desired = view.desired
        var targets = knowledge.fixedTargets
        let anchor: Anchor, token: BPFToken?, lock: WriterLock
        let live: LiveTree, ledger: Ledger
        do throws(KernelError) {
            anchor = try options.openAnchor()
            token = try options.openToken(anchor)
            lock = try WriterLock.acquire(anchor, timeout: lockTimeout)
            let delegation = token?.delegation
            var diagnostics = delegation.map { DelegationCheck.violations(desired, $0) } ?? []
            diagnostics += PinResolver.resolve(desired, into: &targets, delegation: delegation)
            diagnostics += PolicyCheck.violations(desired, knowledge.decoded.policies, possibleCPUs: Machine.possibleCPUs,
                                                  machineMemory: Machine.physicalMemory,
                                                  scopeMemory: knowledge.scopeMemory(besides: desired), targets: targets)
            if !diagnostics.isEmpty { return .needsFullPass("a new subtree does not validate") }
            // A map pin whose inode is the one the ledger recorded is bpftree's map, not inspected: one
            // lookup instead of BPF_OBJ_GET and two more calls (most of what a removed cgroup leaves).
            let lookups = try LedgerLookups(anchor, scope: knowledge.decoded.scope)
            var observer = TreeObserver(anchor: anchor)
            observer.vouched = VouchedPins(desired: desired) { lookups.record(at: $0) }
            live = try observer.observe(roots: view.observed, expectedEntries: desired.entries.count)
            for path in view.ledgerPaths(live: live) { _ = lookups.record(at: path) }
            ledger = try lookups.ledger()
        } catch {
            report.errors.append(error.description)
            console.fail("\(error)")
            return .failed
        }
        defer { withExtendedLifetime((lock, token)) {} }
        let plan = Planner.plan(desired: desired, live: live, ledger: ledger, policies: knowledge.decoded.policies,
                                force: options.force, targets: targets)
        report.observed = RunReport.Observed(entries: live.entries.count, inspectedPins: live.inspectedPins)
        guard plan.problems.isEmpty else { return .needsFullPass("the plan for the new subtrees has conflicts") }
        guard plan.lies(within: view.scope) else { return .needsFullPass("the plan changes paths outside the cgroups' subtrees") }
        if plan.actions.contains(where: { if case .replaceMap = $0.change { true } else { false } }) {
            return .needsFullPass("a map in the subtrees is replaced")
        }
        report.add(plan)
        guard plan.hasChanges else { return .done(roots: view.scope.roots.count) }
        let pass = ApplyPass(options: options, lockTimeout: lockTimeout, console: console)
        let lines = ProgressLines(showing: console)
        defer { lines?.finish() }
        return pass.execute(plan, anchor: anchor, owner: knowledge.decoded.scope.owner ?? "", &report, lines: lines) != nil ? .done(roots: view.scope.roots.count) : .failed
    }

    /// `directory` below `base`, "" for `base` itself; nil when it is not beneath it.
    static func relative(_ directory: String, to base: String) -> String? {
        let base = base.hasSuffix("/") ? String(base.dropLast()) : base
        if directory == base { return "" }
        guard directory.hasPrefix(base + "/") else { return nil }
        return String(directory.dropFirst(base.count + 1))
    }
}
