import BPFTreeCore

/// Links detached for their successors (XDP, tcx, netkit, sockmap) are attached again when the run fails
/// before the successor is in place, so a failed apply leaves the hooks as they were.
extension Executor {
    /// Attaches again, last detached first, every link detached in this run whose successor is not in
    /// place (`committed`), each under its own pin and ledger record. Returns what to add to the run's
    /// failure; nil when nothing was detached.
    func restoreDetached(keeping committed: Set<TreePath>) -> String? {
        let pending = detached.filter { !committed.contains($0.path) }
        detached = []
        guard !pending.isEmpty else { return nil }
        // Restored last first, each hook is as it was when the next one was detached from it.
        var renamed: [UInt32: UInt32] = [:]
        var restored: [String] = [], left: [String] = []
        for link in pending.reversed() {
            if let why = link.unrestorable {
                left.append("\(link.path) stays detached: \(why)")
                continue
            }
            do throws(KernelError) {
                try restore(link, renamed: &renamed)
                restored.append(link.path.description)
            } catch {
                left.append("\(link.path) stays detached (\(error))")
            }
        }
        var parts: [String] = []
        if !restored.isEmpty {
            parts.append("the detached link\(restored.count == 1 ? "" : "s") \(restored.reversed().joined(separator: ", ")) "
                         + "\(restored.count == 1 ? "is" : "are") attached again where \(restored.count == 1 ? "it was" : "they were")")
        }
        if !left.isEmpty { parts.append(left.reversed().joined(separator: "; ") + "; run apply again") }
        return parts.joined(separator: "; ")
    }

    /// Makes a link of `link`'s program where it was, pins it under a temporary name with the old pin's
    /// mode and owner, and exchanges it with the old pin, recorded as a replacement in between.
    private func restore(_ link: DetachedLink, renamed: inout [UInt32: UInt32]) throws(KernelError) {
        let old = try kernel.status(link.path)
        let (made, id) = try kernel.reattach(link, renamed: renamed)
        renamed[link.id] = id
        let temporary = nextTemporary(beside: link.path)
        try kernel.record([LedgerRecord(path: temporary, kind: .link, state: .temporary, manifest: link.record?.manifest ?? "")])
        var exchanged = false
        do throws(KernelError) {
            try kernel.pin(made, at: temporary)
            var new = try kernel.status(temporary)
            let owner = Owner(uid: new.uid == old.uid ? nil : old.uid, gid: new.gid == old.gid ? nil : old.gid)
            if new.mode != old.mode || owner.isManaged {
                try kernel.setAttributes(temporary, mode: new.mode == old.mode ? nil : old.mode, owner: owner)
                new = try kernel.status(temporary)
            }
            if var record = link.record {
                (record.state, record.inode, record.pendingInode) = (.replacing, old.inode, new.inode)
                try kernel.record([record])
            }
            try kernel.rename(temporary, to: link.path.name, exchange: true)
            exchanged = true
            // The temporary name holds the detached link now.
            try kernel.unlink(temporary, directory: false)
            if var record = link.record {
                (record.state, record.inode, record.pendingInode) = (.owned, new.inode, 0)
                try kernel.record([record])
            }
        } catch {
            // Not in place: off the hook at once (a dropped pin frees its link only later).
            if !exchanged { try? kernel.detachLink(temporary) }
            try? kernel.unlink(temporary, directory: false)
            try? kernel.forget([temporary])
            throw error
        }
        try? kernel.forget([temporary])
    }
}
