import BPFTreeCore
import Glibc

/// Carries out a plan through a `KernelOperations`: directories, maps created, filled and frozen in batches
/// by the syscall program, programs loaded with libbpf, links created in batches, each pinned where it is
/// staged; modes and owners; removals.
///
/// New objects are staged first (see `Staging`): every one is made, filled and given its mode and owner
/// under a temporary name or inside a staged directory, and only when all exist are they renamed into
/// place. The ledger records each temporary name before it is made and each new object, with its inode,
/// before it is renamed into place; so a run killed at any point leaves a tree the next plan can settle,
/// and nothing is ever claimed that bpftree did not make.
///
/// One failure policy: the first failure stops the run. Staged objects not yet in place are removed, so
/// the tree is as it was; every later action is reported as not done; a re-run converges because the
/// plan is recomputed.
public final class Executor {
    public let kernel: any KernelOperations
    private var temporaryCount = 0
    /// The links this run's creation phase detached for their successors, in order.
    var detached: [DetachedLink] = []

    public init(kernel: any KernelOperations) {
        self.kernel = kernel
    }

    /// Executes through the real kernel beneath `anchor`.
    public convenience init(anchor: Anchor, ledger: LedgerStore, maxMapsPerBatch: Int = 1024) {
        self.init(kernel: LiveKernel(anchor: anchor, ledger: ledger, maxMapsPerBatch: maxMapsPerBatch))
    }

    /// The failure that stops a run: the action at fault and why.
    struct Failure: Error {
        var action: Int
        var error: KernelError
        /// The staged entries already renamed into place when the commit failed.
        var committed: Set<TreePath> = []
        /// Whether the ledger already records the made objects as owned.
        var recorded = false
    }

    /// Executes `plan.actions`; `progress` sees each result as it happens. `keepResults`: also list every
    /// result in the report (not only counts and the first failure).
    public func execute(_ plan: Plan, keepResults: Bool = true, progress: (ActionResult) -> Void = { _ in }) -> ExecutionReport {
        var report = ExecutionReport()
        func record(_ index: Int, _ outcome: ActionResult.Outcome, copied: UInt64? = nil) {
            let result = ActionResult(action: plan.actions[index], outcome: outcome, copied: copied)
            report.add(result, keep: keepResults)
            progress(result)
        }
        var stopped = false
        for (phase, indices) in ExecutionPhase.order(plan) where !indices.isEmpty {
            if stopped {
                indices.forEach { record($0, .notDone) }
            } else if phase == .create {
                let outcome = create(plan, indices)
                report.batchRuns += outcome.runs
                report.made = outcome.made
                for index in indices {
                    let result: ActionResult.Outcome = if let failure = outcome.failure, failure.action == index {
                        .failed(failure.error)
                    } else if outcome.done.contains(index) { .done } else { .notDone }
                    record(index, result, copied: outcome.copied[index])
                }
                stopped = outcome.failure != nil
            } else if phase == .removals {
                stopped = remove(plan, indices, record)
            } else {
                for index in indices {
                    guard !stopped else { record(index, .notDone); continue }
                    do {
                        try perform(plan.actions[index])
                        record(index, .done)
                    } catch {
                        record(index, .failed(error))
                        stopped = true
                    }
                }
            }
        }
        return report
    }

    /// What the creation phase did: each action's outcome (missing: not done), entries copied by
    /// migrations, and how many times the batch program ran.
    private struct Creation {
        /// Positions of the actions done (a set, not outcomes: 100,000 of those are MiB of peak RSS).
        var done: Set<Int> = []
        var failure: (action: Int, error: KernelError)?
        var copied: [Int: UInt64] = [:]
        var made: [MadeEntry] = []
        var runs = 0
    }

    /// Stages every new object of `indices`, then commits them; on a failure, removes what is not in place.
    private func create(_ plan: Plan, _ indices: [Int]) -> Creation {
        var staging = Staging()
        var creation = Creation()
        var committed: Set<TreePath> = []
        var failure: Failure?
        detached = []
        do throws(Failure) {
            try stage(plan, indices, into: &staging, runs: &creation.runs)
            committed = try commit(plan, &staging)
        } catch let error {
            failure = error
            committed = error.committed
            rollBack(plan, staging, keeping: committed, recorded: error.recorded)
            failure?.error = error.error.adding(restoreDetached(keeping: committed))
        }
        detached = []
        // Without a failure everything made is in place; only then is each entry's staged top looked up.
        creation.made = failure == nil ? staging.made
            : staging.made.filter { committed.contains(staging.top(of: $0.path)) }
        staging.made = []
        for made in creation.made {
            creation.done.insert(made.action)
            if let copied = staging.copied[made.action] { creation.copied[made.action] = copied }
        }
        if let failure {
            creation.failure = (failure.action, failure.error)
            creation.done.remove(failure.action)
            creation.copied[failure.action] = nil
        }
        return creation
    }

    // MARK: Staging

    private func stage(_ plan: Plan, _ indices: [Int], into staging: inout Staging, runs: inout Int) throws(Failure) {
        var byKind: [LedgerRecord.Kind: [Int]] = [:]
        for index in indices {
            let action = plan.actions[index]
            guard let kind = action.madeKind else { continue }
            byKind[kind, default: []].append(index)
            staging.place(action.path, kind: kind, manifest: action.manifest, replacing: action.isReplacement,
                          temporary: nextTemporary(beside:))
        }
        // Every temporary name is recorded before anything is made under it.
        do {
            try kernel.record(staging.temporaryKinds.map {
                LedgerRecord(path: $0.0, kind: $0.1, state: .temporary, manifest: $0.2)
            })
        } catch {
            throw Failure(action: indices[0], error: error)
        }
        var newDirectories: [(made: Int, mode: UInt32, owner: Owner)] = []
        for index in byKind[.directory] ?? [] {
            guard case .createDirectory(let mode, let owner) = plan.actions[index].change else { continue }
            do throws(KernelError) {
                try kernel.makeDirectory(staging.location(of: plan.actions[index].path))
            } catch {
                throw Failure(action: index, error: error)
            }
            newDirectories.append((staging.made.count, mode, owner))
            let action = plan.actions[index]
            staging.made.append(MadeEntry(action: index, path: action.path, manifest: action.manifest, kind: .directory,
                                          inode: 0, mode: 0, uid: 0, gid: 0, fingerprint: 0))
        }
        runs += try makeMaps(plan, byKind[.map] ?? [], into: &staging)
        try makePrograms(plan, byKind[.program] ?? [], into: &staging)
        runs += try makeLinks(plan, byKind[.link] ?? [], into: &staging)
        // Directories get their declared mode and owner once everything inside them exists, deepest first.
        for (made, mode, owner) in newDirectories.reversed() {
            let index = staging.made[made].action
            do throws(KernelError) {
                let location = staging.location(of: plan.actions[index].path)
                try settleAttributes(location, kernel.status(location), mode: mode, owner: owner, of: &staging.made[made])
            } catch {
                throw Failure(action: index, error: error)
            }
        }
    }

    func nextTemporary(beside path: TreePath) -> TreePath {
        temporaryCount += 1
        return path.parent.appending("\(Reserved.temporaryPrefix)\(getpid())_\(temporaryCount)")
    }

    /// Pins `object` where the path of action `index` is staged and gives it its mode and owner; records it
    /// as made.
    func pinStaged(_ object: Descriptor, _ index: Int, _ action: Action, kind: LedgerRecord.Kind, fingerprint: UInt64,
                   mode: UInt32, owner: Owner, into staging: inout Staging) throws(KernelError) {
        let (path, manifest) = (action.path, action.manifest)
        let location = staging.location(of: path)
        try kernel.pin(object, at: location)
        var made = MadeEntry(action: index, path: path, manifest: manifest, kind: kind, inode: 0, mode: 0, uid: 0, gid: 0,
                             fingerprint: fingerprint)
        // Recorded as made before its attributes are set: a refusal there still removes it.
        staging.made.append(made)
        try settleAttributes(location, kernel.status(location), mode: mode, owner: owner, of: &made)
        staging.made[staging.made.count - 1] = made
    }

    /// Gives the just-made entry `made`, of status `entry`, exactly the declared mode and owner, changing
    /// only what differs from what the kernel made (usually nothing); records its inode, mode and owner.
    func settleAttributes(_ path: TreePath, _ entry: EntryStatus, mode: UInt32, owner: Owner,
                          of made: inout MadeEntry) throws(KernelError) {
        let modeDiffers = entry.mode != mode
        let ownerDiffers = (owner.uid.map { $0 != entry.uid } ?? false) || (owner.gid.map { $0 != entry.gid } ?? false)
        if modeDiffers || ownerDiffers {
            try kernel.setAttributes(path, mode: modeDiffers ? mode : nil, owner: ownerDiffers ? owner : .unmanaged)
        }
        (made.inode, made.mode, made.uid, made.gid) = (entry.inode, mode, owner.uid ?? entry.uid, owner.gid ?? entry.gid)
    }

    // MARK: Commit

    /// Records every made object as owned (a replacement as replacing), renames each staged entry into
    /// place, then records the replacements' new objects and drops the temporary records. Returns the
    /// staged entries that are in place.
    private func commit(_ plan: Plan, _ staging: inout Staging) throws(Failure) -> Set<TreePath> {
        var committed: Set<TreePath> = []
        var recorded = false
        func fail(_ index: Int, _ error: KernelError) -> Failure {
            Failure(action: index, error: error, committed: committed, recorded: recorded)
        }
        // Owned with a known inode before the rename: until the rename, nothing is at the path (or
        // something else is), so the record claims nothing bpftree did not make.
        var records: [LedgerRecord] = []
        records.reserveCapacity(min(staging.made.count, 4096))
        for made in staging.made {
            let action = plan.actions[made.action]
            if action.isReplacement {
                let old: UInt64
                do throws(KernelError) { old = try kernel.status(action.path).inode } catch { throw fail(made.action, error) }
                records.append(LedgerRecord(path: action.path, kind: made.kind, state: .replacing, inode: old,
                                            pendingInode: made.inode, fingerprint: made.fingerprint, manifest: action.manifest))
            } else {
                records.append(LedgerRecord(path: action.path, kind: made.kind, inode: made.inode, fingerprint: made.fingerprint,
                                            manifest: action.manifest))
            }
            if records.count == 4096 {
                recorded = true
                do { try kernel.record(records) } catch { throw fail(made.action, error) }
                records.removeAll(keepingCapacity: true)
            }
        }
        do { try kernel.record(records) } catch { throw fail(staging.made.first?.action ?? 0, error) }
        recorded = true
        var replaced: [LedgerRecord] = []
        for made in staging.made {
            let action = plan.actions[made.action]
            let path = action.path
            guard let temporary = staging.temporaries[path] else { continue }
            do throws(KernelError) {
                try kernel.rename(temporary, to: path.name, exchange: action.isReplacement)
                committed.insert(path)
                if action.isReplacement {
                    // The temporary name now holds the old object.
                    try kernel.unlink(temporary, directory: false)
                    replaced.append(LedgerRecord(path: path, kind: made.kind, inode: made.inode, fingerprint: made.fingerprint,
                                                 manifest: action.manifest))
                }
            } catch {
                throw fail(made.action, error)
            }
        }
        // Best effort: if this fails, the next plan settles the records from the tree.
        try? kernel.record(replaced)
        try? kernel.forget(staging.temporaryKinds.map(\.0))
        return committed
    }

    /// Removes what was made and not committed, last made first, and the temporary records.
    private func rollBack(_ plan: Plan, _ staging: Staging, keeping committed: Set<TreePath>, recorded: Bool) {
        var left: Set<TreePath> = []
        var records: [TreePath] = []
        for made in staging.made.reversed() {
            let path = plan.actions[made.action].path
            guard !committed.contains(staging.top(of: path)) else { continue }
            let location = staging.location(of: path)
            // A link the hook takes once leaves it now, not when its dropped pin is freed: its predecessor
            // goes back there.
            if made.kind == .link, plan.actions[made.action].makesExclusiveLink { try? kernel.detachLink(location) }
            do throws(KernelError) {
                try kernel.unlink(location, directory: made.kind == .directory)
            } catch {
                left.insert(location)
            }
            if recorded && !plan.actions[made.action].isReplacement { records.append(path) }
        }
        try? kernel.forget(records)
        // A temporary name something is left under keeps its record, so that the next run removes it.
        try? kernel.forget(staging.temporaryKinds.map(\.0).filter { !left.contains($0) })
    }

    /// Unlinks every entry of `indices` (removals, children first), then forgets their records in one
    /// ledger write. The first refused unlink stops the phase; what was unlinked before it is forgotten.
    /// A refused ledger write fails the first removal and leaves the rest not done: their records stay,
    /// for the next plan to settle. Returns whether the run stopped.
    private func remove(_ plan: Plan, _ indices: [Int], _ record: (Int, ActionResult.Outcome, UInt64?) -> Void) -> Bool {
        var unlinked: [Int] = []
        var refused: (index: Int, error: KernelError)?
        for index in indices {
            let action = plan.actions[index]
            do throws(KernelError) {
                try kernel.unlink(action.path, directory: action.change == .remove(.directory))
                unlinked.append(index)
            } catch {
                refused = (index, error)
                break
            }
        }
        var forgotten = true
        do throws(KernelError) {
            try kernel.forget(unlinked.map { plan.actions[$0].path })
        } catch {
            forgotten = false
            if let first = unlinked.first { refused = (first, error) }
        }
        // What was unlinked is a prefix of `indices`.
        for (position, index) in indices.enumerated() {
            if let refused, refused.index == index {
                record(index, .failed(refused.error), nil)
            } else {
                record(index, forgotten && position < unlinked.count ? .done : .notDone, nil)
            }
        }
        return refused != nil
    }

    // MARK: One-step actions

    /// Actions that are one step each.
    private func perform(_ action: Action) throws(KernelError) {
        switch action.change {
        case .setMode(_, let mode):
            try kernel.setAttributes(action.path, mode: mode, owner: .unmanaged)
        case .setOwner(_, let owner):
            try kernel.setAttributes(action.path, mode: nil, owner: owner)
        case .updateLink(let link, let from, _):
            try kernel.updateLink(action.path, to: link.spec.program, expecting: from)
        case .recordOwnership(let kind, let inode, _):
            try kernel.record([LedgerRecord(path: action.path, kind: kind, inode: inode, manifest: action.manifest)])
        case .forgetRecord:
            try kernel.forget([action.path])
        case .removeTemporary:
            try kernel.removeTemporary(action.path)
            try kernel.forget([action.path])
        case .remove:
            throw KernelError(.step(.execute), path: action.path.description, detail: "removed in its own phase")
        case .createDirectory, .createMap, .replaceMap, .createProgram, .replaceProgram, .createLink, .replaceLink:
            throw KernelError(.step(.execute), path: action.path.description, detail: "created in its own phase")
        }
    }
}
