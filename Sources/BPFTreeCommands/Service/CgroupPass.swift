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

    /// Plans `view` against the tree (as a delta from the stamp is planned) and runs the plan.
    private func plan(_ view: PlanView, _ knowledge: ServiceKnowledge, report: inout RunReport) -> Outcome {
        let anchor: Anchor, token: BPFToken?, lock: WriterLock
        do throws(KernelError) {
            anchor = try options.openAnchor()
            token = try options.openToken(anchor)
            lock = try WriterLock.acquire(anchor, timeout: lockTimeout)
        } catch {
            return failed(error, &report)
        }
        defer { withExtendedLifetime((lock, token)) {} }
        let plan: Plan
        switch Pipeline.planView(view.desired, scope: view.scope, observe: view.observed, targets: knowledge.fixedTargets,
                                 decoded: knowledge.decoded, scopeMemory: knowledge.scopeMemory(besides: view.desired),
                                 anchor: anchor, delegation: token?.delegation, force: options.force) {
        case .failure(.needsFullPass(let why)): return .needsFullPass(why)
        case .failure(.failed(let error)): return failed(error, &report)
        case .success(let planned):
            report.observed = RunReport.Observed(entries: planned.live.entries.count, inspectedPins: planned.live.inspectedPins)
            plan = planned.plan
        }
        report.add(plan)
        guard plan.hasChanges else { return .done(roots: view.scope.roots.count) }
        let pass = ApplyPass(options: options, lockTimeout: lockTimeout, console: console)
        let lines = ProgressLines(showing: console)
        defer { lines?.finish() }
        return pass.execute(plan, anchor: anchor, owner: knowledge.decoded.scope.owner ?? "", &report, lines: lines) != nil ? .done(roots: view.scope.roots.count) : .failed
    }

    private func failed(_ error: KernelError, _ report: inout RunReport) -> Outcome {
        report.errors.append(error.description)
        console.fail("\(error)")
        return .failed
    }

    /// `directory` below `base`, "" for `base` itself; nil when it is not beneath it.
    static func relative(_ directory: String, to base: String) -> String? {
        let base = base.hasSuffix("/") ? String(base.dropLast()) : base
        if directory == base { return "" }
        guard directory.hasPrefix(base + "/") else { return nil }
        return String(directory.dropFirst(base.count + 1))
    }
}
