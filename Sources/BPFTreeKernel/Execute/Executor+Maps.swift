import BPFTreeCore
import CBPFTreeShim
import Glibc

/// Maps: created, filled and frozen in batches by the syscall program, then pinned where they are staged.
extension Executor {
    /// One map of a batch: its create op and the ops that fill and freeze it.
    private struct BatchedMap {
        var index: Int
        var spec: MapSpec
        var mode: UInt32
        var owner: Owner
        var createOp: Int
        var lastOp: Int
        /// Whether the contents (and freeze) are ops of the batch; if not, they are written after the run
        /// (contents larger than one run holds).
        var contentsInBatch: Bool
        /// For a replace: the old map and whether to copy its entries.
        var replacing: (old: LiveMapInfo, migrate: Bool)?
    }

    /// The bytes a value takes in the map: per-CPU maps take one 8-byte-aligned slot per possible CPU.
    func valueLength(_ spec: MapSpec) -> Int {
        spec.type.isPerCPU ? (Int(spec.valueSize) + 7) / 8 * 8 * possibleCPUs : Int(spec.valueSize)
    }

    /// Creates, fills, freezes and pins the maps of `indices` (replacements included) where they are
    /// staged; returns how many times the program ran.
    func makeMaps(_ plan: Plan, _ indices: [Int], into staging: inout Staging) throws(Failure) -> Int {
        guard let first = indices.first else { return 0 }
        let program = try batchProgram(for: first)
        var runs = 0
        var batch: [BatchedMap] = []
        var ops = 0
        var dataUsed = 0

        func flush() throws(Failure) {
            guard let head = batch.first else { return }
            defer { batch.removeAll(); ops = 0; dataUsed = 0 }
            do throws(KernelError) {
                try program.run(count: ops)
                runs += 1
            } catch {
                throw Failure(action: head.index, error: error)
            }
            // Own every new fd at once so that all are closed, whatever happens below.
            let descriptors = batch.map { map in
                let fd = program.result(map.createOp)
                return fd >= 0 ? Descriptor(owning: fd) : nil
            }
            for (map, descriptor) in zip(batch, descriptors) {
                do throws(KernelError) {
                    try finish(map, descriptor, plan.actions[map.index].path, program: program, into: &staging)
                } catch {
                    throw Failure(action: map.index, error: error)
                }
            }
        }

        for index in indices {
            let action = plan.actions[index]
            let spec: MapSpec, mode: UInt32, owner: Owner
            var replacing: (old: LiveMapInfo, migrate: Bool)?
            switch action.change {
            case .createMap(let s, let m, let o):
                (spec, mode, owner) = (s, m, o)
            case .replaceMap(let s, let m, let o, let old, let migrate, _):
                (spec, mode, owner) = (s, m, o)
                replacing = (old, migrate)
            default:
                continue
            }
            // A migrated map is frozen only after its entries are copied in.
            let freezeInBatch = spec.freeze && !(replacing?.migrate ?? false)
            let length = valueLength(spec)
            let opsNeeded = 1 + spec.contents.count + (freezeInBatch ? 1 : 0)
            let dataNeeded = spec.contents.count * (Int(spec.keySize) + length)
            let contentsInBatch = opsNeeded <= BatchProgram.maxOps && dataNeeded <= BatchProgram.dataSize
            let opsTaken = contentsInBatch ? opsNeeded : 1, dataTaken = contentsInBatch ? dataNeeded : 0
            if ops + opsTaken > BatchProgram.maxOps || dataUsed + dataTaken > BatchProgram.dataSize
                || batch.count >= maxMapsPerBatch {
                try flush()
            }
            let createOp = ops
            program.putCreate(createOp, type: spec.type.kernelValue, keySize: spec.keySize, valueSize: spec.valueSize,
                              maxEntries: spec.maxEntries, flags: spec.flags, numaNode: spec.numaNode ?? 0,
                              mapExtra: spec.mapExtra, name: spec.name)
            ops += 1
            if contentsInBatch {
                for entry in spec.contents {
                    let keyOffset = dataUsed
                    program.write(entry.key, at: keyOffset)
                    dataUsed += entry.key.count
                    let valueOffset = dataUsed
                    program.write(expandedValue(entry.value, spec: spec, length: length), at: valueOffset)
                    dataUsed += length
                    program.putUpdate(ops, createIndex: createOp, keyOffset: keyOffset, valueOffset: valueOffset,
                                      valueLength: length)
                    ops += 1
                }
                if freezeInBatch {
                    program.putFreeze(ops, createIndex: createOp)
                    ops += 1
                }
            }
            batch.append(BatchedMap(index: index, spec: spec, mode: mode, owner: owner, createOp: createOp,
                                    lastOp: ops - 1, contentsInBatch: contentsInBatch, replacing: replacing))
        }
        try flush()
        return runs
    }

    /// Per-CPU maps take one 8-byte-aligned slot per possible CPU; the declared value goes in each.
    private func expandedValue(_ value: [UInt8], spec: MapSpec, length: Int) -> [UInt8] {
        guard spec.type.isPerCPU else { return value }
        let slot = length / possibleCPUs
        let padded = value + Array(repeating: 0, count: slot - value.count)
        return Array((0..<possibleCPUs).map { _ in padded }.joined())
    }

    /// Checks the batch results of one map, writes contents the batch could not hold, copies a migrated
    /// map's entries and pins it where it is staged.
    private func finish(_ map: BatchedMap, _ descriptor: Descriptor?, _ path: TreePath, program: BatchProgram,
                        into staging: inout Staging) throws(KernelError) {
        let created = program.result(map.createOp)
        guard created >= 0, let descriptor else {
            throw KernelError("BPF_MAP_CREATE (batch program)", path: path.description, negativeErrno: created)
        }
        let migrate = map.replacing?.migrate ?? false
        if map.lastOp > map.createOp {
            for op in (map.createOp + 1)...map.lastOp {
                let result = program.result(op)
                guard result >= 0 else {
                    let isFreeze = map.spec.freeze && op == map.lastOp && !migrate
                    let what = isFreeze ? "BPF_MAP_FREEZE" : "BPF_MAP_UPDATE_ELEM contents[\(op - map.createOp - 1)]"
                    throw KernelError("\(what) (batch program)", path: path.description, negativeErrno: result)
                }
            }
        }
        if !map.contentsInBatch {
            try write(map.spec, into: descriptor, path: path)
            if map.spec.freeze && !migrate {
                let frozen = bt_map_freeze(descriptor.rawValue)
                guard frozen == 0 else { throw KernelError("BPF_MAP_FREEZE", path: path.description, negativeErrno: frozen) }
            }
        }
        var copied: UInt64?
        if let replacing = map.replacing, replacing.migrate {
            copied = try copyEntries(from: path, planned: replacing.old, into: descriptor, spec: map.spec)
        }
        try pinStaged(descriptor, map.index, path, kind: .map, fingerprint: map.spec.fingerprint, mode: map.mode,
                      owner: map.owner, copied: copied, into: &staging)
    }

    /// Writes a map's declared contents from user space, one update each (contents a batch run cannot hold).
    private func write(_ spec: MapSpec, into map: Descriptor, path: TreePath) throws(KernelError) {
        let length = valueLength(spec)
        for (position, entry) in spec.contents.enumerated() {
            let value = expandedValue(entry.value, spec: spec, length: length)
            let result = value.withUnsafeBytes { v in
                entry.key.withUnsafeBytes { k in
                    bt_map_update(map.rawValue, entry.key.isEmpty ? nil : k.baseAddress, v.baseAddress, 0)
                }
            }
            guard result == 0 else {
                throw KernelError("BPF_MAP_UPDATE_ELEM contents[\(position)]", path: path.description, negativeErrno: result)
            }
        }
    }

    /// Copies every entry of the map pinned at `path` (checked to be the one planned) into `new`, then
    /// freezes `new` if declared. Returns how many entries were copied.
    private func copyEntries(from path: TreePath, planned: LiveMapInfo, into new: Descriptor,
                             spec: MapSpec) throws(KernelError) -> UInt64 {
        let parent = try directories.descriptor(for: path.parent)
        let oldFD = bt_obj_get_at(parent, path.name)
        guard oldFD >= 0 else { throw KernelError("BPF_OBJ_GET", path: path.description, negativeErrno: oldFD) }
        let old = Descriptor(owning: oldFD)
        var info = bt_map_info()
        let got = bt_map_info_by_fd(old.rawValue, &info)
        guard got == 0, info.id == planned.id else {
            throw KernelError("migrate", path: path.description, negativeErrno: got,
                              detail: got == 0 ? "the map changed since it was planned (id \(info.id), planned \(planned.id)); run apply again" : nil)
        }
        var count: UInt64 = 0
        let result = bt_map_copy(old.rawValue, new.rawValue, spec.keySize, UInt32(valueLength(spec)), &count)
        guard result == 0 else {
            throw KernelError("copy entries", path: path.description, negativeErrno: result,
                              detail: "\(count) entries copied before the failure; the old map is unchanged and still pinned")
        }
        if spec.freeze {
            let frozen = bt_map_freeze(new.rawValue)
            guard frozen == 0 else { throw KernelError("BPF_MAP_FREEZE", path: path.description, negativeErrno: frozen) }
        }
        return count
    }
}
