import BPFTreeCore
import CBPFTreeShim
import Glibc

/// Carries out a plan beneath an anchor, never following a symlink: directories with `mkdirat`, maps
/// created, filled and frozen in batches by the syscall program and pinned relative to their directory
/// (`BPF_F_PATH_FD`), programs loaded with libbpf, links created in batches by the syscall program,
/// replacements by `renameat2(RENAME_EXCHANGE)`, modes and owners with `fchmodat2`/`fchownat`, removals
/// with `unlinkat`.
///
/// Every change is announced in the ledger before it is made and settled after it (see `LedgerRecord.State`),
/// so a run killed at any point leaves a tree and a ledger the next plan can settle. Stops at the first
/// failure; every action is reported as done, failed or not done, and a re-run converges because the plan
/// is recomputed.
public final class Executor {
    public let anchor: Anchor
    /// Upper bound on maps per batch-program run (each holds an fd until pinned).
    public var maxMapsPerBatch: Int

    let ledger: LedgerStore
    let directories: DirectoryChain
    private var program: BatchProgram?
    private let possibleCPUs: Int
    private var temporaries = 0

    public init(anchor: Anchor, ledger: LedgerStore, maxMapsPerBatch: Int = 1024) {
        self.anchor = anchor
        self.ledger = ledger
        let fileLimit = bt_raise_nofile_limit()
        self.maxMapsPerBatch = max(1, min(maxMapsPerBatch, fileLimit > 0 ? fileLimit - 64 : 512))
        self.directories = DirectoryChain(anchor: anchor)
        self.possibleCPUs = Machine.possibleCPUs
    }

    /// The order actions run in: ledger repairs, directories (parents first), maps, programs (which may
    /// use the maps), links (which hold the programs), attributes, removals (children first, as planned).
    private enum Phase: CaseIterable {
        case repair, directories, maps, programs, links, attributes, removals

        static func of(_ action: Action) -> Phase {
            switch action.change {
            case .removeTemporary, .forgetRecord, .recordOwnership: .repair
            case .createDirectory: .directories
            case .createMap, .replaceMap: .maps
            case .createProgram, .replaceProgram: .programs
            case .createLink, .replaceLink: .links
            case .setMode, .setOwner: .attributes
            case .remove: .removals
            }
        }
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
            let actions = (byPhase[phase] ?? []).lazy.map { plan.actions[$0] }
            if failed {
                actions.forEach { record(ActionResult(action: $0, outcome: .notDone)) }
                continue
            }
            switch phase {
            case .directories:
                createDirectories(actions, record: record)
            case .maps:
                report.batchRuns += createMaps(actions, record: record)
            case .programs:
                createPrograms(actions, record: record)
            case .links:
                report.batchRuns += createLinks(actions, record: record)
            case .repair, .attributes, .removals:
                for action in actions {
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
            try unlink(action.path, directory: false)
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
    private func inode(_ path: TreePath) throws(KernelError) -> UInt64 { UInt64(try status(path).st_ino) }

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

    // MARK: Directories

    private func createDirectories(_ actions: some Collection<Action>, record: (ActionResult) -> Void) {
        guard let first = actions.first else { return }
        let intents = actions.map { LedgerRecord(path: $0.path, kind: .directory, state: .creating, manifest: $0.manifest) }
        do {
            try ledger.write(intents)
        } catch {
            record(ActionResult(action: first, outcome: .failed(error)))
            actions.dropFirst().forEach { record(ActionResult(action: $0, outcome: .notDone)) }
            return
        }
        var settled: [LedgerRecord] = []
        var unsettled: [TreePath] = []
        for action in actions {
            guard unsettled.isEmpty, case .createDirectory(let mode, let owner) = action.change else {
                unsettled.append(action.path)
                record(ActionResult(action: action, outcome: .notDone))
                continue
            }
            do throws(KernelError) {
                let parent = try directories.descriptor(for: action.path.parent)
                let result = retryingEINTR { mkdirat(parent, action.path.name, mode_t(mode)) }
                guard result == 0 else { throw KernelError("mkdirat", path: action.path.description, negativeErrno: result) }
                // mkdirat applied the umask (and perhaps a parent's setgid bit): set the declared bits exactly.
                let inode = try settleAttributes(action.path, mode: mode, owner: owner)
                settled.append(LedgerRecord(path: action.path, kind: .directory, inode: inode, manifest: action.manifest))
                record(ActionResult(action: action, outcome: .done))
            } catch {
                unsettled.append(action.path)
                record(ActionResult(action: action, outcome: .failed(error)))
            }
        }
        // Best effort: if this fails, the next plan settles the intents from the tree.
        try? ledger.write(settled)
        try? ledger.remove(unsettled)
    }

    // MARK: Maps

    /// One map of a batch: its create op and the ops that fill and freeze it.
    private struct BatchedMap {
        var action: Action
        var spec: MapSpec
        var mode: UInt32
        var owner: Owner
        var createOp: Int
        var lastOp: Int
        /// For a replace: the old map, whether to copy its entries, and the temporary pin name.
        var replacing: (old: LiveMapInfo, migrate: Bool, temporary: TreePath)?
    }

    /// The batch program for `actions`, loaded on first use (a plan without maps or links never loads it);
    /// nil, with the first action failed and the rest not done, when it cannot be loaded or there are none.
    func batchProgram(for actions: some Collection<Action>, record: (ActionResult) -> Void) -> BatchProgram? {
        guard let first = actions.first else { return nil }
        if let program { return program }
        do {
            let loaded = try BatchProgram()
            program = loaded
            return loaded
        } catch {
            record(ActionResult(action: first, outcome: .failed(error)))
            actions.dropFirst().forEach { record(ActionResult(action: $0, outcome: .notDone)) }
            return nil
        }
    }

    func nextTemporary(beside path: TreePath) -> TreePath {
        temporaries += 1
        return path.parent.appending("\(Reserved.temporaryPrefix)\(getpid())_\(temporaries)")
    }

    /// Creates, fills, freezes and pins maps in batches (replacements included); returns how many times
    /// the program ran.
    private func createMaps(_ actions: some Collection<Action>, record: (ActionResult) -> Void) -> Int {
        guard let program = batchProgram(for: actions, record: record) else { return 0 }
        var runs = 0
        var batch: [BatchedMap] = []
        var ops = 0
        var dataUsed = 0
        var failed = false

        func flush() {
            guard !batch.isEmpty else { return }
            defer { batch.removeAll(); ops = 0; dataUsed = 0 }
            if failed {
                batch.forEach { record(ActionResult(action: $0.action, outcome: .notDone)) }
                return
            }
            let intents = batch.map { map in
                if let replacing = map.replacing {
                    return LedgerRecord(path: replacing.temporary, kind: .map, state: .temporary, manifest: map.action.manifest)
                }
                return LedgerRecord(path: map.action.path, kind: .map, state: .creating, fingerprint: map.spec.fingerprint,
                                    manifest: map.action.manifest)
            }
            do throws(KernelError) {
                try ledger.write(intents)
                try program.run(count: ops)
                runs += 1
            } catch {
                record(ActionResult(action: batch[0].action, outcome: .failed(error)))
                batch.dropFirst().forEach { record(ActionResult(action: $0.action, outcome: .notDone)) }
                try? ledger.remove(intents.map(\.path))
                failed = true
                return
            }
            // Own every new fd at once so that all are closed, whatever happens below.
            let descriptors = batch.map { map in
                let fd = program.result(map.createOp)
                return fd >= 0 ? Descriptor(owning: fd) : nil
            }
            var settled: [LedgerRecord] = []
            var unsettled: [TreePath] = []
            for (map, descriptor) in zip(batch, descriptors) {
                if let temporary = map.replacing?.temporary { unsettled.append(temporary) }
                if failed {
                    if map.replacing == nil { unsettled.append(map.action.path) }
                    record(ActionResult(action: map.action, outcome: .notDone))
                    continue
                }
                do throws(KernelError) {
                    let (inode, copied) = try finish(map, descriptor, program: program)
                    settled.append(LedgerRecord(path: map.action.path, kind: .map, inode: inode,
                                                fingerprint: map.spec.fingerprint, manifest: map.action.manifest))
                    record(ActionResult(action: map.action, outcome: .done, copied: copied))
                } catch {
                    if map.replacing == nil { unsettled.append(map.action.path) }
                    record(ActionResult(action: map.action, outcome: .failed(error)))
                    failed = true
                }
            }
            // Best effort: if this fails, the next plan settles the intents from the tree.
            try? ledger.write(settled)
            try? ledger.remove(unsettled)
        }

        for action in actions {
            let spec: MapSpec, mode: UInt32, owner: Owner
            var replacing: (old: LiveMapInfo, migrate: Bool, temporary: TreePath)?
            switch action.change {
            case .createMap(let s, let m, let o):
                (spec, mode, owner) = (s, m, o)
            case .replaceMap(let s, let m, let o, let old, let migrate, _):
                (spec, mode, owner) = (s, m, o)
                replacing = (old, migrate, nextTemporary(beside: action.path))
            default:
                continue
            }
            if failed {
                record(ActionResult(action: action, outcome: .notDone))
                continue
            }
            // A migrated map is frozen only after its entries are copied in.
            let freezeInBatch = spec.freeze && !(replacing?.migrate ?? false)
            let valueLength = spec.type.isPerCPU ? (Int(spec.valueSize) + 7) / 8 * 8 * possibleCPUs : Int(spec.valueSize)
            let opsNeeded = 1 + spec.contents.count + (freezeInBatch ? 1 : 0)
            let dataNeeded = spec.contents.count * (Int(spec.keySize) + valueLength)
            guard opsNeeded <= BatchProgram.maxOps, dataNeeded <= BatchProgram.dataSize else {
                record(ActionResult(action: action, outcome: .failed(KernelError(
                    "create map", path: action.path.description,
                    detail: "contents need \(opsNeeded) ops and \(dataNeeded) bytes; one batch run holds \(BatchProgram.maxOps) ops and \(BatchProgram.dataSize) bytes"))))
                failed = true
                continue
            }
            if ops + opsNeeded > BatchProgram.maxOps || dataUsed + dataNeeded > BatchProgram.dataSize
                || batch.count >= maxMapsPerBatch {
                flush()
                if failed {
                    record(ActionResult(action: action, outcome: .notDone))
                    continue
                }
            }
            let createOp = ops
            program.putCreate(createOp, type: spec.type.kernelValue, keySize: spec.keySize, valueSize: spec.valueSize,
                              maxEntries: spec.maxEntries, flags: spec.flags, numaNode: spec.numaNode ?? 0,
                              mapExtra: spec.mapExtra, name: spec.name)
            ops += 1
            for entry in spec.contents {
                let keyOffset = dataUsed
                program.write(entry.key, at: keyOffset)
                dataUsed += entry.key.count
                let valueOffset = dataUsed
                program.write(expandedValue(entry.value, spec: spec, length: valueLength), at: valueOffset)
                dataUsed += valueLength
                program.putUpdate(ops, createIndex: createOp, keyOffset: keyOffset, valueOffset: valueOffset,
                                  valueLength: valueLength)
                ops += 1
            }
            if freezeInBatch {
                program.putFreeze(ops, createIndex: createOp)
                ops += 1
            }
            batch.append(BatchedMap(action: action, spec: spec, mode: mode, owner: owner, createOp: createOp,
                                    lastOp: ops - 1, replacing: replacing))
        }
        flush()
        return runs
    }

    /// Per-CPU maps take one 8-byte-aligned slot per possible CPU; the declared value goes in each.
    private func expandedValue(_ value: [UInt8], spec: MapSpec, length: Int) -> [UInt8] {
        guard spec.type.isPerCPU else { return value }
        let slot = length / possibleCPUs
        let padded = value + Array(repeating: 0, count: slot - value.count)
        return Array((0..<possibleCPUs).map { _ in padded }.joined())
    }

    /// Checks the batch results of one map and pins it (through a temporary name and an exchange for a
    /// replacement). Returns the inode now pinned at the path and, for a migration, how many entries were
    /// copied.
    private func finish(_ map: BatchedMap, _ descriptor: Descriptor?,
                        program: BatchProgram) throws(KernelError) -> (inode: UInt64, copied: UInt64?) {
        let path = map.action.path
        let created = program.result(map.createOp)
        guard created >= 0, let descriptor else {
            throw KernelError("BPF_MAP_CREATE (batch program)", path: path.description, negativeErrno: created)
        }
        if map.lastOp > map.createOp {
            for op in (map.createOp + 1)...map.lastOp {
                let result = program.result(op)
                guard result >= 0 else {
                    let isFreeze = map.spec.freeze && op == map.lastOp && !(map.replacing?.migrate ?? false)
                    let what = isFreeze ? "BPF_MAP_FREEZE" : "BPF_MAP_UPDATE_ELEM contents[\(op - map.createOp - 1)]"
                    throw KernelError("\(what) (batch program)", path: path.description, negativeErrno: result)
                }
            }
        }
        let parent = try directories.descriptor(for: path.parent)
        guard let replacing = map.replacing else {
            let pinned = bt_obj_pin_at(parent, path.name, descriptor.rawValue)
            guard pinned == 0 else { throw KernelError("BPF_OBJ_PIN", path: path.description, negativeErrno: pinned) }
            return (try settleAttributes(path, mode: map.mode, owner: map.owner), nil)
        }
        return try replace(map, replacing, descriptor, parent: parent)
    }

    /// Pins the new map at a temporary name beside `path`, copies the old map's entries into it when
    /// migrating, exchanges the two names and removes the old pin. Readers never see `path` missing.
    private func replace(_ map: BatchedMap, _ replacing: (old: LiveMapInfo, migrate: Bool, temporary: TreePath),
                         _ descriptor: Descriptor, parent: Int32) throws(KernelError) -> (inode: UInt64, copied: UInt64?) {
        let path = map.action.path, temporary = replacing.temporary
        let pinned = bt_obj_pin_at(parent, temporary.name, descriptor.rawValue)
        guard pinned == 0 else { throw KernelError("BPF_OBJ_PIN", path: temporary.description, negativeErrno: pinned) }
        // Whatever happens, the temporary name goes: it holds the new map until the exchange, the old after.
        defer { _ = unlinkat(parent, temporary.name, 0) }
        try setAttributes(temporary, mode: map.mode, owner: map.owner)
        var copied: UInt64?
        if replacing.migrate {
            let oldFD = bt_obj_get_at(parent, path.name)
            guard oldFD >= 0 else { throw KernelError("BPF_OBJ_GET", path: path.description, negativeErrno: oldFD) }
            let old = Descriptor(owning: oldFD)
            var info = bt_map_info()
            let got = bt_map_info_by_fd(old.rawValue, &info)
            guard got == 0, info.id == replacing.old.id else {
                throw KernelError("migrate", path: path.description, negativeErrno: got,
                                  detail: got == 0 ? "the map changed since it was planned (id \(info.id), planned \(replacing.old.id)); run apply again" : nil)
            }
            let valueLength = map.spec.type.isPerCPU ? (Int(map.spec.valueSize) + 7) / 8 * 8 * possibleCPUs : Int(map.spec.valueSize)
            var count: UInt64 = 0
            let result = bt_map_copy(old.rawValue, descriptor.rawValue, map.spec.keySize, UInt32(valueLength), &count)
            guard result == 0 else {
                throw KernelError("copy entries", path: path.description, negativeErrno: result,
                                  detail: "\(count) entries copied before the failure; the old map is unchanged and still pinned")
            }
            copied = count
            if map.spec.freeze {
                let frozen = bt_map_freeze(descriptor.rawValue)
                guard frozen == 0 else { throw KernelError("BPF_MAP_FREEZE", path: path.description, negativeErrno: frozen) }
            }
        }
        let newInode = try exchange(temporary, into: path, parent: parent, kind: .map, fingerprint: map.spec.fingerprint,
                                    manifest: map.action.manifest)
        return (newInode, copied)
    }

    /// Exchanges the new object pinned at `temporary` with the one at `path`, once the ledger records both
    /// inodes as bpftree's, and unlinks the old one (now at the temporary name). Returns the new inode.
    func exchange(_ temporary: TreePath, into path: TreePath, parent: Int32, kind: LedgerRecord.Kind,
                  fingerprint: UInt64, manifest: String) throws(KernelError) -> UInt64 {
        let oldInode = try inode(path), newInode = try inode(temporary)
        try ledger.write([LedgerRecord(path: path, kind: kind, state: .replacing, inode: oldInode, pendingInode: newInode,
                                       fingerprint: fingerprint, manifest: manifest)])
        let swapped = bt_renameat2(parent, temporary.name, parent, path.name, UInt32(BT_RENAME_EXCHANGE))
        guard swapped == 0 else { throw KernelError("renameat2(RENAME_EXCHANGE)", path: path.description, negativeErrno: swapped) }
        try unlink(temporary, directory: false)
        return newInode
    }
}
