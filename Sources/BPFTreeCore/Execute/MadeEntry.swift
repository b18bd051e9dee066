/// An object the executor made and put in place, as the kernel showed it once its mode and owner were set.
public struct MadeEntry: Sendable {
    /// Position of its action in the plan.
    public var action: Int
    public var path: TreePath
    /// The manifest the ledger records as its owner.
    public var manifest: String
    public var kind: LedgerRecord.Kind
    public var inode: UInt64
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    /// What the ledger records of it: a map's shape fingerprint, a program's tag, a link's fingerprint.
    public var fingerprint: UInt64

    public init(action: Int, path: TreePath, manifest: String, kind: LedgerRecord.Kind, inode: UInt64, mode: UInt32,
                uid: UInt32, gid: UInt32, fingerprint: UInt64) {
        (self.action, self.path, self.manifest, self.kind) = (action, path, manifest, kind)
        (self.inode, self.mode, self.uid, self.gid, self.fingerprint) = (inode, mode, uid, gid, fingerprint)
    }
}

// The tree and the ledger once every action of a plan is done, from the observation the plan was made
// from and what the executor made: what a walk right after would find, without the walk.

extension LiveTree {
    /// This observation as it is after every action of a plan was done: `actions` (those that make
    /// nothing are enough) and `made`, what the executor made.
    public mutating func settle(_ actions: some Sequence<Action>, made: [MadeEntry]) {
        var removedTemporaries: Set<TreePath> = []
        for action in actions {
            switch action.change {
            case .setMode(_, let mode):
                entries[action.path]?.mode = mode
            case .setOwner(_, let owner):
                if let uid = owner.uid { entries[action.path]?.uid = uid }
                if let gid = owner.gid { entries[action.path]?.gid = gid }
            case .updateLink:
                // Moved to another program in place: what the kernel reports of it now is not known without
                // inspecting it, so a stamp waits for the next pass (`Pipeline.Full.stamp`).
                entries[action.path]?.kind = .pin
            case .remove:
                remove(action.path)
            case .removeTemporary:
                remove(action.path)
                removedTemporaries.insert(action.path)
            default:
                break
            }
        }
        if !removedTemporaries.isEmpty {
            // A staging directory goes with everything in it.
            for path in entries.keys where path.ancestors.contains(where: removedTemporaries.contains) { remove(path) }
        }
        // Grown once: doubling 100,000 entries on the way is a peak of RSS.
        entries.reserveCapacity(entries.count + made.count)
        for made in made {
            let kind: LiveEntry.Kind = switch made.kind {
            case .directory: .directory
            // Its ledger record vouches for a map bpftree made, as the next observation reports it.
            case .map: .recordedMap(fingerprint: made.fingerprint)
            case .program, .link: .pin
            }
            record(made.path, LiveEntry(kind: kind, mode: made.mode, uid: made.uid, gid: made.gid, inode: made.inode))
        }
    }
}

extension Ledger {
    /// This ledger as the executor left it after every action of a plan was done: `actions` (those that
    /// make nothing are enough) and `made`, what it made.
    public mutating func settle(_ actions: some Sequence<Action>, made: [MadeEntry]) {
        for action in actions {
            switch action.change {
            case .recordOwnership(let kind, let inode, _):
                records[action.path] = LedgerRecord(path: action.path, kind: kind, inode: inode, manifest: action.manifest)
            case .forgetRecord, .remove, .removeTemporary:
                records[action.path] = nil
            default:
                break
            }
        }
        records.reserveCapacity(records.count + made.count)
        for made in made {
            records[made.path] = LedgerRecord(path: made.path, kind: made.kind, inode: made.inode,
                                              fingerprint: made.fingerprint, manifest: made.manifest)
        }
    }
}
