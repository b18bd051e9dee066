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

    /// Runs one batch, finishes each of its maps, then pins them all (`KernelOperations.pin(_:)`) and
    /// records them as made, in order.
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
        var finished: [(map: MapBatch.Map, made: MadeMap, object: Descriptor, copied: UInt64?)] = []
        finished.reserveCapacity(batch.maps.count)
        for map in batch.maps {
            let action = plan.actions[map.action]
            guard let made = MadeMap(action) else { continue }
            do throws(KernelError) {
                let (object, copied) = try finish(map, made, of: batch, results, path: action.path)
                finished.append((map, made, object, copied))
            } catch {
                throw Failure(action: map.action, error: error)
            }
        }
        let outcomes = kernel.pin(finished.map { ($0.object, staging.location(of: plan.actions[$0.map.action].path)) })
        var failure: Failure?
        for (position, item) in finished.enumerated() {
            guard let outcome = outcomes[position] else { continue }
            let action = plan.actions[item.map.action]
            var made = MadeEntry(action: item.map.action, path: action.path, manifest: action.manifest, kind: .map,
                                 inode: 0, mode: 0, uid: 0, gid: 0, fingerprint: item.made.spec.fingerprint)
            if let copied = item.copied { staging.copied[item.map.action] = copied }
            // Recorded as made once pinned, even past a refusal: a rollback removes it.
            if outcome.pinned { staging.made.append(made) }
            guard failure == nil else { continue }
            do throws(KernelError) {
                let status = try outcome.status.get()
                try settleAttributes(staging.location(of: action.path), status, mode: item.made.mode,
                                     owner: item.made.owner, of: &made)
                staging.made[staging.made.count - 1] = made
            } catch {
                failure = Failure(action: item.map.action, error: error)
            }
        }
        if let failure { throw failure }
    }

    /// Checks the batch results of one map, writes contents the batch could not hold, copies a migrated
    /// map's entries and freezes it if that is left; returns the map and how many entries were copied.
    private func finish(_ map: MapBatch.Map, _ made: MadeMap, of batch: MapBatch, _ results: [BatchResult],
                        path: TreePath) throws(KernelError) -> (Descriptor, copied: UInt64?) {
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
        return (descriptor, copied)
    }
}
