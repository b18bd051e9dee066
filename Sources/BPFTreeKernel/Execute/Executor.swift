import BPFTreeCore
import CBPFTreeShim
import Glibc

/// Carries out a plan beneath an anchor, never following a symlink: directories with `mkdirat`, maps
/// created, filled and frozen in batches by the syscall program and pinned relative to their directory
/// (`BPF_F_PATH_FD`), programs loaded with libbpf, links created in batches by the syscall program, modes
/// and owners with `fchmodat2`/`fchownat`, removals with `unlinkat`.
///
/// New objects are staged first (see `Staging`): every one is made, filled and given its mode and owner
/// under a temporary name or inside a staged directory, and only when all exist are they renamed into
/// place. A kernel refusal while staging removes what was made, so the tree is as it was. The ledger
/// records each temporary name before it is made and each new object, with its inode, before it is
/// renamed into place; so a run killed at any point leaves a tree the next plan can settle, and nothing
/// is ever claimed that bpftree did not make. Stops at the first failure; every action is reported as
/// done, failed or not done, and a re-run converges because the plan is recomputed.
public final class Executor {
    public let anchor: Anchor
    /// Upper bound on maps per batch-program run (each holds an fd until pinned).
    public var maxMapsPerBatch: Int

    let ledger: LedgerStore
    let directories: DirectoryChain
    private var program: BatchProgram?
    let possibleCPUs: Int
    private var temporaryCount = 0

    public init(anchor: Anchor, ledger: LedgerStore, maxMapsPerBatch: Int = 1024) {
        self.anchor = anchor
        self.ledger = ledger
        let fileLimit = bt_raise_nofile_limit()
        self.maxMapsPerBatch = max(1, min(maxMapsPerBatch, fileLimit > 0 ? fileLimit - 64 : 512))
        self.directories = DirectoryChain(anchor: anchor)
        self.possibleCPUs = Machine.possibleCPUs
    }

    deinit {
        if let program { BatchProgram.giveBack(program) }
    }

    /// The order actions run in: ledger repairs, creations (staged, then committed together), attributes,
    /// removals (children first, as planned).
    private enum Phase: CaseIterable {
        case repair, create, attributes, removals

        static func of(_ action: Action) -> Phase {
            switch action.change {
            case .removeTemporary, .forgetRecord, .recordOwnership: .repair
            case .createDirectory, .createMap, .replaceMap, .createProgram, .replaceProgram, .createLink, .replaceLink: .create
            case .setMode, .setOwner: .attributes
            case .remove: .removals
            }
        }
    }

    /// A failure while making the objects of a pass: the action at fault and why.
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
        var failed = false
        func record(_ result: ActionResult) {
            if case .failed = result.outcome { failed = true }
            report.add(result, keep: keepResults)
            progress(result)
        }
        // Positions, not copies: an action is a few hundred bytes.
        var byPhase: [Phase: [Int]] = [:]
        for index in plan.actions.indices { byPhase[Phase.of(plan.actions[index]), default: []].append(index) }
        for phase in Phase.allCases {
            let indices = byPhase[phase] ?? []
            if failed {
                indices.forEach { record(ActionResult(action: plan.actions[$0], outcome: .notDone)) }
                continue
            }
            switch phase {
            case .create:
                report.batchRuns += create(plan, indices, record: record)
            case .repair, .attributes, .removals:
                for index in indices {
                    let action = plan.actions[index]
                    if failed {
                        record(ActionResult(action: action, outcome: .notDone))
                        continue
                    }
                    do {
                        try perform(action)
                        record(ActionResult(action: action, outcome: .done))
                    } catch {
                        record(ActionResult(action: action, outcome: .failed(error)))
                    }
                }
            }
        }
        return report
    }

    /// Stages every new object of `indices`, then commits them; reports each action. Returns how many
    /// times the batch program ran.
    private func create(_ plan: Plan, _ indices: [Int], record: (ActionResult) -> Void) -> Int {
        guard !indices.isEmpty else { return 0 }
        var staging = Staging()
        var runs = 0
        var failure: Failure?
        var committed: Set<TreePath> = []
        do throws(Failure) {
            try stage(plan, indices, into: &staging, runs: &runs)
            committed = try commit(plan, &staging)
        } catch let error {
            failure = error
            committed = error.committed
            rollBack(plan, staging, keeping: committed, recorded: error.recorded)
        }
        var done: [Int: UInt64?] = Dictionary(minimumCapacity: staging.made.count)
        // Without a failure everything made is in place; only then is each entry's staged top looked up.
        for made in staging.made where failure == nil || committed.contains(staging.top(of: plan.actions[made.action].path)) {
            done[made.action] = made.copied
        }
        for index in indices {
            let action = plan.actions[index]
            if let failure, failure.action == index {
                record(ActionResult(action: action, outcome: .failed(failure.error)))
            } else if let copied = done[index] {
                record(ActionResult(action: action, outcome: .done, copied: copied))
            } else {
                record(ActionResult(action: action, outcome: .notDone))
            }
        }
        return runs
    }

    // MARK: Staging

    private func stage(_ plan: Plan, _ indices: [Int], into staging: inout Staging, runs: inout Int) throws(Failure) {
        for index in indices {
            let action = plan.actions[index]
            let kind: LedgerRecord.Kind, replacing: Bool
            switch action.change {
            case .createDirectory: (kind, replacing) = (.directory, false)
            case .createMap: (kind, replacing) = (.map, false)
            case .replaceMap: (kind, replacing) = (.map, true)
            case .createProgram: (kind, replacing) = (.program, false)
            case .replaceProgram: (kind, replacing) = (.program, true)
            case .createLink: (kind, replacing) = (.link, false)
            case .replaceLink: (kind, replacing) = (.link, true)
            default: continue
            }
            staging.place(action.path, kind: kind, manifest: action.manifest, replacing: replacing,
                          temporary: nextTemporary(beside:))
        }
        // Every temporary name is recorded before anything is made under it.
        do {
            try ledger.write(staging.temporaryKinds.map {
                LedgerRecord(path: $0.0, kind: $0.1, state: .temporary, manifest: $0.2)
            })
        } catch {
            throw Failure(action: indices[0], error: error)
        }
        var byKind: [LedgerRecord.Kind: [Int]] = [:]
        for index in indices {
            switch plan.actions[index].change {
            case .createDirectory: byKind[.directory, default: []].append(index)
            case .createMap, .replaceMap: byKind[.map, default: []].append(index)
            case .createProgram, .replaceProgram: byKind[.program, default: []].append(index)
            case .createLink, .replaceLink: byKind[.link, default: []].append(index)
            default: break
            }
        }
        var newDirectories: [(made: Int, mode: UInt32, owner: Owner)] = []
        for index in byKind[.directory] ?? [] {
            guard case .createDirectory(let mode, let owner) = plan.actions[index].change else { continue }
            let location = staging.location(of: plan.actions[index].path)
            do throws(KernelError) {
                let parent = try directories.descriptor(for: location.parent)
                // Owner-only until its children exist: a declared mode or owner may keep bpftree itself out.
                let result = retryingEINTR { mkdirat(parent, location.name, 0o700) }
                guard result == 0 else { throw KernelError("mkdirat", path: location.description, negativeErrno: result) }
            } catch {
                throw Failure(action: index, error: error)
            }
            newDirectories.append((staging.made.count, mode, owner))
            staging.made.append(Staging.Made(action: index, kind: .directory, inode: 0, fingerprint: 0))
        }
        runs += try makeMaps(plan, byKind[.map] ?? [], into: &staging)
        try makePrograms(plan, byKind[.program] ?? [], into: &staging)
        runs += try makeLinks(plan, byKind[.link] ?? [], into: &staging)
        // Directories get their declared mode and owner once everything inside them exists, deepest first.
        for (made, mode, owner) in newDirectories.reversed() {
            let index = staging.made[made].action
            do throws(KernelError) {
                staging.made[made].inode = try settleAttributes(staging.location(of: plan.actions[index].path), mode: mode, owner: owner)
            } catch {
                throw Failure(action: index, error: error)
            }
        }
    }

    func nextTemporary(beside path: TreePath) -> TreePath {
        temporaryCount += 1
        return path.parent.appending("\(Reserved.temporaryPrefix)\(getpid())_\(temporaryCount)")
    }

    /// Pins `object` where `path` is staged and gives it its mode and owner; records it as made.
    func pinStaged(_ object: Descriptor, _ index: Int, _ path: TreePath, kind: LedgerRecord.Kind, fingerprint: UInt64,
                   mode: UInt32, owner: Owner, copied: UInt64? = nil, into staging: inout Staging) throws(KernelError) {
        let location = staging.location(of: path)
        let parent = try directories.descriptor(for: location.parent)
        let pinned = bt_obj_pin_at(parent, location.name, object.rawValue)
        guard pinned == 0 else { throw KernelError("BPF_OBJ_PIN", path: location.description, negativeErrno: pinned) }
        staging.made.append(Staging.Made(action: index, kind: kind, inode: 0, fingerprint: fingerprint, copied: copied))
        staging.made[staging.made.count - 1].inode = try settleAttributes(location, mode: mode, owner: owner)
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
            let path = action.path
            if action.isReplacement {
                let old: UInt64
                do throws(KernelError) { old = try inode(path) } catch { throw fail(made.action, error) }
                records.append(LedgerRecord(path: path, kind: made.kind, state: .replacing, inode: old, pendingInode: made.inode,
                                            fingerprint: made.fingerprint, manifest: action.manifest))
            } else {
                records.append(LedgerRecord(path: path, kind: made.kind, inode: made.inode, fingerprint: made.fingerprint,
                                            manifest: action.manifest))
            }
            if records.count == 4096 {
                recorded = true
                do { try ledger.write(records) } catch { throw fail(made.action, error) }
                records.removeAll(keepingCapacity: true)
            }
        }
        do { try ledger.write(records) } catch { throw fail(staging.made.first?.action ?? 0, error) }
        recorded = true
        var replaced: [LedgerRecord] = []
        for made in staging.made {
            let action = plan.actions[made.action]
            let path = action.path
            guard let temporary = staging.temporaries[path] else { continue }
            do throws(KernelError) {
                let parent = try directories.descriptor(for: path.parent)
                if action.isReplacement {
                    let swapped = bt_renameat2(parent, temporary.name, parent, path.name, UInt32(BT_RENAME_EXCHANGE))
                    guard swapped == 0 else { throw KernelError("renameat2(RENAME_EXCHANGE)", path: path.description, negativeErrno: swapped) }
                    committed.insert(path)
                    // The temporary name now holds the old object.
                    try unlink(temporary, directory: false)
                    replaced.append(LedgerRecord(path: path, kind: made.kind, inode: made.inode, fingerprint: made.fingerprint,
                                                 manifest: action.manifest))
                } else {
                    let moved = bt_renameat2(parent, temporary.name, parent, path.name, UInt32(BT_RENAME_NOREPLACE))
                    guard moved == 0 else {
                        throw KernelError("renameat2(RENAME_NOREPLACE)", path: path.description, negativeErrno: moved,
                                          detail: moved == -EEXIST ? "something else was made at the path meanwhile" : nil)
                    }
                    committed.insert(path)
                }
            } catch {
                throw fail(made.action, error)
            }
        }
        // Best effort: if this fails, the next plan settles the records from the tree.
        try? ledger.write(replaced)
        try? ledger.remove(staging.temporaryKinds.map(\.0))
        return committed
    }

    /// Removes what was made and not committed, last made first, and the temporary records.
    private func rollBack(_ plan: Plan, _ staging: Staging, keeping committed: Set<TreePath>, recorded: Bool) {
        var left: [TreePath] = []
        var records: [TreePath] = []
        for made in staging.made.reversed() {
            let path = plan.actions[made.action].path
            guard !committed.contains(staging.top(of: path)) else { continue }
            let location = staging.location(of: path)
            do throws(KernelError) {
                try unlink(location, directory: made.kind == .directory)
            } catch {
                left.append(location)
            }
            if recorded && !plan.actions[made.action].isReplacement { records.append(path) }
        }
        try? ledger.remove(records)
        // A temporary name something is left under keeps its record, so that the next run removes it.
        let leftSet = Set(left)
        try? ledger.remove(staging.temporaryKinds.map(\.0).filter { !leftSet.contains($0) })
    }

    // MARK: One-step actions

    /// Actions that are one step each.
    private func perform(_ action: Action) throws(KernelError) {
        switch action.change {
        case .setMode(_, let mode):
            try setAttributes(action.path, mode: mode, owner: .unmanaged)
        case .setOwner(_, let owner):
            try setAttributes(action.path, mode: nil, owner: owner)
        case .recordOwnership(let kind, let inode, _):
            try ledger.write([LedgerRecord(path: action.path, kind: kind, inode: inode, manifest: action.manifest)])
        case .forgetRecord:
            try ledger.remove([action.path])
        case .removeTemporary:
            try removeTemporary(action.path)
            try ledger.remove([action.path])
        case .remove(let kind):
            try unlink(action.path, directory: kind == .directory)
            try ledger.remove([action.path])
        case .createDirectory, .createMap, .replaceMap, .createProgram, .replaceProgram, .createLink, .replaceLink:
            throw KernelError("execute", path: action.path.description, detail: "created in its own phase")
        }
    }

    func unlink(_ path: TreePath, directory: Bool) throws(KernelError) {
        let parent = try directories.descriptor(for: path.parent)
        let result = retryingEINTR { unlinkat(parent, path.name, directory ? AT_REMOVEDIR : 0) }
        guard result == 0 || result == -ENOENT else {
            throw KernelError(directory ? "rmdir" : "unlinkat", path: path.description, negativeErrno: result,
                              detail: result == -ENOTEMPTY ? "the directory is not empty" : nil)
        }
    }

    /// Removes a temporary pin, or a staging directory with everything in it (all of it made by the run
    /// that recorded the temporary name; see `Staging`).
    private func removeTemporary(_ path: TreePath) throws(KernelError) {
        let st: Glibc.stat
        do {
            st = try status(path)
        } catch where error.errno == .noSuchFileOrDirectory {
            return
        }
        guard st.st_mode & S_IFMT == S_IFDIR else { return try unlink(path, directory: false) }
        try removeContents(of: path)
        try unlink(path, directory: true)
    }

    private func removeContents(of path: TreePath) throws(KernelError) {
        let parent = try directories.descriptor(for: path.parent)
        let directory = try anchor.openDirectory(path.name, from: parent, readable: true, displayPath: path)
        for name in try TreeObserver.names(in: directory, path: path) {
            var st = Glibc.stat()
            let result = withKernelName(name) { raw in retryingEINTR { fstatat(directory.rawValue, raw, &st, Int32(BT_AT_SYMLINK_NOFOLLOW)) } }
            guard result == 0 else { throw KernelError("fstatat", path: path.appending(name).description, negativeErrno: result) }
            let isDirectory = st.st_mode & S_IFMT == S_IFDIR
            if isDirectory { try removeContents(of: path.appending(name)) }
            let removed = withKernelName(name) { raw in retryingEINTR { unlinkat(directory.rawValue, raw, isDirectory ? AT_REMOVEDIR : 0) } }
            guard removed == 0 || removed == -ENOENT else {
                throw KernelError(isDirectory ? "rmdir" : "unlinkat", path: path.appending(name).description, negativeErrno: removed)
            }
        }
    }

    func setAttributes(_ path: TreePath, mode: UInt32?, owner: Owner) throws(KernelError) {
        let (directory, name, flags): (Int32, String, Int32) = path.isAnchor
            ? (anchor.fd, "", Int32(BT_AT_EMPTY_PATH))
            : (try directories.descriptor(for: path.parent), path.name, Int32(BT_AT_SYMLINK_NOFOLLOW))
        if let mode {
            let result = bt_fchmodat2(directory, name, mode, flags)
            guard result == 0 else { throw KernelError("fchmodat2", path: path.description, negativeErrno: result) }
        }
        if owner.isManaged {
            // (uid_t)-1 leaves that half unchanged.
            let result = retryingEINTR {
                fchownat(directory, name, owner.uid ?? UInt32.max, owner.gid ?? UInt32.max, flags)
            }
            guard result == 0 else { throw KernelError("fchownat", path: path.description, negativeErrno: result) }
        }
    }

    /// The inode now at `path` (not following a symlink).
    func inode(_ path: TreePath) throws(KernelError) -> UInt64 { UInt64(try status(path).st_ino) }

    private func status(_ path: TreePath) throws(KernelError) -> Glibc.stat {
        let parent = try directories.descriptor(for: path.parent)
        var st = Glibc.stat()
        let result = retryingEINTR { fstatat(parent, path.name, &st, Int32(BT_AT_SYMLINK_NOFOLLOW)) }
        guard result == 0 else { throw KernelError("fstatat", path: path.description, negativeErrno: result) }
        return st
    }

    /// Gives a just-created entry exactly the declared mode and owner, changing only what differs from
    /// what the kernel made (usually nothing); returns its inode.
    func settleAttributes(_ path: TreePath, mode: UInt32, owner: Owner) throws(KernelError) -> UInt64 {
        let st = try status(path)
        let modeDiffers = st.st_mode & 0o7777 != mode
        let ownerDiffers = (owner.uid.map { $0 != st.st_uid } ?? false) || (owner.gid.map { $0 != st.st_gid } ?? false)
        if modeDiffers || ownerDiffers {
            try setAttributes(path, mode: modeDiffers ? mode : nil, owner: ownerDiffers ? owner : .unmanaged)
        }
        return UInt64(st.st_ino)
    }

    /// The batch program, loaded on first use (a plan without maps or links never loads it); a failure to
    /// load it is the failure of the action at `index`.
    func batchProgram(for index: Int) throws(Failure) -> BatchProgram {
        if let program { return program }
        do {
            let loaded = try BatchProgram.take()
            program = loaded
            return loaded
        } catch {
            throw Failure(action: index, error: error)
        }
    }
}

extension Action {
    /// Whether the action replaces an existing object (pinned under a temporary name and exchanged).
    var isReplacement: Bool {
        switch change {
        case .replaceMap, .replaceProgram, .replaceLink: true
        default: false
        }
    }
}
