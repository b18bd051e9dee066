import BPFTreeCore

/// Maps: packed into batch runs (`MapBatchPacker`), created, filled and frozen by the syscall program, then
/// pinned where they are staged.
extension Executor {
    /// Creates, fills, freezes and pins the maps of `indices` (replacements included) where they are
    /// staged; returns how many times the program ran.
    func makeMaps(_ plan: Plan, _ indices: [Int], into staging: inout Staging) throws(Failure) -> Int {
        var packer = MapBatchPacker(limits: kernel.batchLimits, possibleCPUs: kernel.possibleCPUs)
        var runs = 0
        for index in indices {
            guard let made = MadeMap(plan.actions[index]) else { continue }
            if let batch = packer.add(made.spec, action: index, migrates: made.replacing?.migrate ?? false) {
                try run(batch, plan, into: &staging)
                runs += 1
            }
        }
        if let batch = packer.finish() {
            try run(batch, plan, into: &staging)
            runs += 1
        }
        return runs
    }

    /// What a map action makes.
    private struct MadeMap {
        var spec: MapSpec
        var mode: UInt32
        var owner: Owner
        /// For a replacement: the old map and whether to copy its entries.
        var replacing: (old: LiveMapInfo, migrate: Bool)?

        init?(_ action: Action) {
            switch action.change {
            case .createMap(let spec, let mode, let owner):
                (self.spec, self.mode, self.owner) = (spec, mode, owner)
            case .replaceMap(let spec, let mode, let owner, let old, let migrate, _):
                (self.spec, self.mode, self.owner, replacing) = (spec, mode, owner, (old, migrate))
            default:
                return nil
            }
        }
    }

    /// Runs one batch, then finishes and pins each of its maps.
    private func run(_ batch: MapBatch, _ plan: Plan, into staging: inout Staging) throws(Failure) {
        guard let head = batch.maps.first else { return }
        let results: [BatchResult]
        do throws(KernelError) {
            // Every new fd is owned by `results`, so all are closed whatever happens below.
            results = try kernel.run(batch)
            guard results.count == batch.ops.count else {
                throw KernelError(.step(.batchProgram), path: plan.actions[head.action].path.description,
                                  detail: "\(results.count) results for \(batch.ops.count) ops")
            }
        } catch {
            throw Failure(action: head.action, error: error)
        }
        for map in batch.maps {
            do throws(KernelError) {
                try finish(map, of: batch, results, plan.actions[map.action], into: &staging)
            } catch {
                throw Failure(action: map.action, error: error)
            }
        }
    }

    /// Checks the batch results of one map, writes contents the batch could not hold, copies a migrated
    /// map's entries, freezes it if that is left, and pins it where it is staged.
    private func finish(_ map: MapBatch.Map, of batch: MapBatch, _ results: [BatchResult], _ action: Action,
                        into staging: inout Staging) throws(KernelError) {
        guard let made = MadeMap(action) else { return }
        let path = action.path
        let descriptor = try results[map.createOp].object(.bpf(.mapCreate, batch: true), path: path)
        if map.lastOp > map.createOp {
            for op in (map.createOp + 1)...map.lastOp {
                guard case .refused(let error) = results[op] else { continue }
                let operation: KernelOperation = if case .freeze = batch.ops[op] { .bpf(.mapFreeze, batch: true) }
                    else { .bpf(.mapUpdateElem, batch: true, entry: op - map.createOp - 1) }
                throw KernelError(operation, path: path.description, negativeErrno: error)
            }
        }
        let cpus = kernel.possibleCPUs
        if map.writesContentsAfter {
            try kernel.write(made.spec.contents.map { ($0.key, MapBatchPacker.kernelValue($0.value, spec: made.spec, possibleCPUs: cpus)) },
                             into: descriptor, path: path)
        }
        var copied: UInt64?
        if let replacing = made.replacing, replacing.migrate {
            copied = try kernel.copyEntries(from: path, id: replacing.old.id, into: descriptor, keySize: made.spec.keySize,
                                            valueLength: MapBatchPacker.valueLength(made.spec, possibleCPUs: cpus))
        }
        if map.freezesAfter { try kernel.freeze(descriptor, path: path) }
        try pinStaged(descriptor, map.action, action, kind: .map, fingerprint: made.spec.fingerprint, mode: made.mode,
                      owner: made.owner, copied: copied, into: &staging)
    }
}
