import BPFTreeCore
import CBPFTreeShim
import Glibc

/// Carries out a plan beneath an anchor: directories with `mkdirat`, maps created, filled and frozen in
/// batches by the syscall program and then pinned relative to their directory (`BPF_F_PATH_FD`), modes and
/// owners with `fchmodat2`/`fchownat`, never following a symlink. Stops at the first failure; every action
/// is reported as done, failed or not done, and a re-run converges because the plan is recomputed.
public final class Executor {
    public let anchor: Anchor
    /// Upper bound on maps per batch-program run (each holds an fd until pinned).
    public var maxMapsPerBatch: Int

    private let directories: DirectoryChain
    private var program: BatchProgram?
    private let possibleCPUs: Int

    public init(anchor: Anchor, maxMapsPerBatch: Int = 1024) {
        self.anchor = anchor
        let fileLimit = bt_raise_nofile_limit()
        self.maxMapsPerBatch = max(1, min(maxMapsPerBatch, fileLimit > 0 ? fileLimit - 64 : 512))
        self.directories = DirectoryChain(anchor: anchor)
        self.possibleCPUs = max(1, Int(bt_num_possible_cpus()))
    }

    /// Executes `plan.actions`; `progress` sees each result as it happens.
    public func execute(_ plan: Plan, progress: (ActionResult) -> Void = { _ in }) -> ExecutionReport {
        var report = ExecutionReport()
        // Directories first (parents before children), then maps into them, then attribute changes.
        let phases: [[Action]] = [
            plan.actions.filter { if case .createDirectory = $0.change { true } else { false } },
            plan.actions.filter { if case .createMap = $0.change { true } else { false } },
            plan.actions.filter { !$0.isCreate },
        ]
        var failed = false
        func record(_ result: ActionResult) {
            if case .failed = result.outcome { failed = true }
            report.results.append(result)
            progress(result)
        }
        for (index, actions) in phases.enumerated() {
            if failed {
                actions.forEach { record(ActionResult(action: $0, outcome: .notDone)) }
                continue
            }
            if index == 1 {
                let runs = createMaps(actions, record: record)
                report.batchRuns += runs
                continue
            }
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
        return report
    }

    private func perform(_ action: Action) throws(KernelError) {
        switch action.change {
        case .createDirectory(let mode, let owner):
            let parent = try directories.descriptor(for: action.path.parent)
            let result = retryingEINTR { mkdirat(parent, action.path.name, mode_t(mode)) }
            guard result == 0 else { throw KernelError("mkdirat", path: action.path.description, negativeErrno: result) }
            // mkdirat applied the umask; set the declared bits exactly.
            try setAttributes(action.path, mode: mode, owner: owner)
        case .setMode(_, let mode):
            try setAttributes(action.path, mode: mode, owner: .unmanaged)
        case .setOwner(_, let owner):
            try setAttributes(action.path, mode: nil, owner: owner)
        case .createMap:
            preconditionFailure("maps are created in batches")
        }
    }

    private func setAttributes(_ path: TreePath, mode: UInt32?, owner: Owner) throws(KernelError) {
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

    // MARK: Maps

    /// One map of a batch: its create op and the ops that fill and freeze it.
    private struct BatchedMap {
        var action: Action
        var spec: MapSpec
        var mode: UInt32
        var owner: Owner
        var createOp: Int
        var lastOp: Int
    }

    /// The batch program, loaded on first use (a plan without maps never loads it).
    private func loadedProgram() throws(KernelError) -> BatchProgram {
        if let program { return program }
        let loaded = try BatchProgram()
        program = loaded
        return loaded
    }

    /// Creates, fills, freezes and pins maps in batches; returns how many times the program ran.
    private func createMaps(_ actions: [Action], record: (ActionResult) -> Void) -> Int {
        guard let first = actions.first else { return 0 }
        let program: BatchProgram
        do {
            program = try loadedProgram()
        } catch {
            record(ActionResult(action: first, outcome: .failed(error)))
            actions.dropFirst().forEach { record(ActionResult(action: $0, outcome: .notDone)) }
            return 0
        }
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
            do throws(KernelError) {
                try program.run(count: ops)
                runs += 1
            } catch {
                record(ActionResult(action: batch[0].action, outcome: .failed(error)))
                batch.dropFirst().forEach { record(ActionResult(action: $0.action, outcome: .notDone)) }
                failed = true
                return
            }
            // Own every new fd at once so that all are closed, whatever happens below.
            let descriptors = batch.map { map in
                let fd = program.result(map.createOp)
                return fd >= 0 ? Descriptor(owning: fd) : nil
            }
            for (map, descriptor) in zip(batch, descriptors) {
                if failed {
                    record(ActionResult(action: map.action, outcome: .notDone))
                    continue
                }
                do throws(KernelError) {
                    try finish(map, descriptor, program: program)
                    record(ActionResult(action: map.action, outcome: .done))
                } catch {
                    record(ActionResult(action: map.action, outcome: .failed(error)))
                    failed = true
                }
            }
        }

        for action in actions {
            guard case .createMap(let spec, let mode, let owner) = action.change else { continue }
            if failed {
                record(ActionResult(action: action, outcome: .notDone))
                continue
            }
            let valueLength = spec.type.isPerCPU ? (Int(spec.valueSize) + 7) / 8 * 8 * possibleCPUs : Int(spec.valueSize)
            let opsNeeded = 1 + spec.contents.count + (spec.freeze ? 1 : 0)
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
            if spec.freeze {
                program.putFreeze(ops, createIndex: createOp)
                ops += 1
            }
            batch.append(BatchedMap(action: action, spec: spec, mode: mode, owner: owner, createOp: createOp, lastOp: ops - 1))
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

    /// Checks the batch results of one map, pins it relative to its directory and sets mode and owner.
    private func finish(_ map: BatchedMap, _ descriptor: Descriptor?, program: BatchProgram) throws(KernelError) {
        let path = map.action.path.description
        let created = program.result(map.createOp)
        guard created >= 0, let descriptor else {
            throw KernelError("BPF_MAP_CREATE (batch program)", path: path, negativeErrno: created)
        }
        if map.lastOp > map.createOp {
            for op in (map.createOp + 1)...map.lastOp {
                let result = program.result(op)
                guard result >= 0 else {
                    let isFreeze = map.spec.freeze && op == map.lastOp
                    let what = isFreeze ? "BPF_MAP_FREEZE" : "BPF_MAP_UPDATE_ELEM contents[\(op - map.createOp - 1)]"
                    throw KernelError("\(what) (batch program)", path: path, negativeErrno: result)
                }
            }
        }
        let parent = try directories.descriptor(for: map.action.path.parent)
        let pinned = bt_obj_pin_at(parent, map.action.path.name, descriptor.rawValue)
        guard pinned == 0 else { throw KernelError("BPF_OBJ_PIN", path: path, negativeErrno: pinned) }
        try setAttributes(map.action.path, mode: map.mode, owner: map.owner)
    }
}
