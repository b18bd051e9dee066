extension TreeStamp {
    /// The position of the record of `path`, found by binary search (records are in path order).
    public func position(of path: TreePath) -> Int? {
        var (low, high) = (0, records.count)
        while low < high {
            let middle = (low + high) / 2
            if records[middle].path < path { low = middle + 1 } else { high = middle }
        }
        return low < records.count && records[low].path == path ? low : nil
    }

    /// The record of `path`.
    public func record(at path: TreePath) -> Record? { position(of: path).map { records[$0] } }

    /// The declaration of `record`, as a desired entry.
    public func desiredEntry(_ record: Record) -> DesiredEntry? {
        record.declaration.map { declarations[$0].entry(record) }
    }

    /// The plan for `drift` (the paths where `live` differs from the stamp, from `drift(_:)`), when every
    /// drifted path is one of two simple cases:
    /// - a declared map whose pin is gone while its directory is still the same one;
    /// - a declared entry the ledger owns whose mode or owner changed, with the same kind and inode.
    /// nil when any path is anything else (new, pinned again, of another kind, undeclared, not owned), or
    /// when the tree has programs or links (`repairs`): the
    /// pass then plans in full. The stamp only picks the paths: `Planner` plans them, from the stamp's
    /// declarations, the walk's entries and the ledger's records of them (the ledger is as it was when the
    /// stamp was written, because every apply that writes it voids the stamp first).
    public func repairPlan(drift: [TreePath], live: LiveTree) -> Plan? {
        guard repairs else { return nil }
        for path in drift {
            guard let old = record(at: path), desiredEntry(old) != nil else { return nil }
            if let current = live[path] {
                guard old.owned, Record(path, current).type == old.type, current.inode == old.inode else { return nil }
            } else {
                // Its directory must be the one the stamp knew (same inode; its mode may be drifting too).
                guard case .map = desiredEntry(old)?.kind, !path.isAnchor, let directory = live[path.parent],
                      directory.kind == .directory, record(at: path.parent)?.inode == directory.inode else { return nil }
            }
        }
        // The view the planner sees: the drifted paths and their ancestors, as declared, found and owned.
        var entries: [DesiredEntry] = [], view = LiveTree(), records: [LedgerRecord] = []
        var included: Set<TreePath> = []
        for path in drift {
            for member in path.ancestors + [path] where included.insert(member).inserted {
                guard let old = record(at: member) else { continue }
                let entry = desiredEntry(old)
                if let entry { entries.append(entry) }
                if var current = live[member] {
                    // A pin with the inode the stamp recorded is the map the converged pass found.
                    if case .map(let spec)? = entry?.kind, current.inode == old.inode {
                        current.kind = .recordedMap(fingerprint: spec.fingerprint)
                    }
                    view.record(member, current)
                }
                if old.owned, let entry {
                    records.append(LedgerRecord(path: member, kind: entry.kind.ledgerKind, inode: old.inode, manifest: entry.manifest))
                }
            }
        }
        let planned = Planner.plan(desired: DesiredTree(entries: entries, roots: drift), live: view, ledger: Ledger(records: records))
        let drifted = Set(drift)
        let plan = Plan(actions: planned.actions.filter { drifted.contains($0.path) },
                        problems: planned.problems.filter { drifted.contains($0.path) },
                        notices: (notices.filter { !drifted.contains($0.path) } + planned.notices.filter { drifted.contains($0.path) })
                            .sorted { $0.path < $1.path })
        return plan.problems.isEmpty ? plan : nil
    }

    /// After a repair from the stamp: records `current` as what is now at the drifted `path`, keeping its
    /// declaration. Fails (false) when `current` is not as declared, or when it is a new object (a map
    /// created again) and `ownedNow` is false.
    public mutating func settle(_ path: TreePath, as current: LiveEntry, ownedNow: Bool) -> Bool {
        guard let position = position(of: path), case let old = records[position], let entry = desiredEntry(old),
              entry.attributeActions(current).isEmpty else { return false }
        var record = Record(path, current)
        (record.declaration, record.line, record.column) = (old.declaration, old.line, old.column)
        if current.inode == old.inode {
            record.owned = old.owned
        } else {
            guard ownedNow else { return false }
            record.owned = true
        }
        records[position] = record
        notices.removeAll { $0.path == path }
        return true
    }
}

extension DesiredEntry.Kind {
    /// The ledger kind of an object of this kind.
    public var ledgerKind: LedgerRecord.Kind {
        switch self {
        case .directory: .directory
        case .map: .map
        case .program: .program
        case .link: .link
        }
    }
}
