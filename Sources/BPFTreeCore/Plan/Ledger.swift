/// One entry of the ownership ledger: a path bpftree created (or adopted), or is in the middle of changing.
public struct LedgerRecord: Hashable, Sendable {
    /// What was created at the path.
    public enum Kind: UInt32, Sendable {
        case directory = 1
        case map = 2
        case program = 3
        case link = 4

        /// The case's name: `directory`, `map`, `program`, `link`.
        public var name: String { String(describing: self) }
    }

    /// Written before a change and settled after it, so that a run killed at any point leaves records a
    /// later run can settle from what it finds (see `Planner`).
    public enum State: UInt32, Sendable {
        /// The object at `path` with `inode` is bpftree's.
        case owned = 0
        /// Written by earlier versions before an object was made, without its inode: such a record proves
        /// nothing (anyone may have pinned something at the path since), so only one with the inode of
        /// what is there counts. bpftree now records a new object as owned, with its inode, before it
        /// renames it into place (see the executor's staging).
        case creating = 1
        /// A temporary name: the pin, or the staging directory and everything in it, is removed by the
        /// next run.
        case temporary = 2
        /// Being replaced: the object with `inode` (old) or `pendingInode` (new) is bpftree's.
        case replacing = 3
    }

    public var path: TreePath
    public var kind: Kind
    public var state: State
    public var inode: UInt64
    public var pendingInode: UInt64
    /// What was created: `MapSpec.fingerprint` for a map, the program tag for a program,
    /// `ResolvedLink.fingerprint` for a link; 0 for directories.
    public var fingerprint: UInt64
    /// `metadata.name` of the manifest that declared it.
    public var manifest: String
    /// The manifest set that made it (`--owner`, `metadata.owner`); empty when the run named none, and
    /// in records older than owners: the manifest alone then owns it (`OwnerScope`).
    public var owner: String

    public init(path: TreePath, kind: Kind, state: State = .owned, inode: UInt64 = 0, pendingInode: UInt64 = 0,
                fingerprint: UInt64 = 0, manifest: String, owner: String = "") {
        self.path = path
        self.kind = kind
        self.state = state
        self.inode = inode
        self.pendingInode = pendingInode
        self.fingerprint = fingerprint
        self.manifest = manifest
        self.owner = owner
    }

    /// Whether bpftree owns `live` by this record: settled (state owned) and describing it.
    public func owns(_ live: LiveEntry) -> Bool { state == .owned && describes(live) }

    /// Whether the live entry is the one this record speaks for.
    public func describes(_ live: LiveEntry) -> Bool {
        guard live.kind.ledgerKind == kind else { return false }
        switch state {
        case .owned: return live.inode == inode
        case .creating: return inode != 0 && live.inode == inode
        case .temporary: return Reserved.isTemporaryName(path.name)
        case .replacing: return live.inode == inode || live.inode == pendingInode
        }
    }
}

/// What bpftree owns beneath one anchor, as read from the ledger map (`Reserved.ledgerName`).
public struct Ledger: Sendable {
    public var records: [TreePath: LedgerRecord]
    /// Records of other owners (`restricted(to:)`): never pruned, settled or taken over by this run; a
    /// declared path one of them holds is a conflict.
    public var others: [TreePath: LedgerRecord] = [:]
    /// The owner of the run it was restricted to (`OwnerScope.owner`): records of its own that name none
    /// are rewritten naming it.
    public var owner: String?
    /// Records that cannot be bpftree's (a key that is no path bpftree writes, an unknown kind or state):
    /// reported and otherwise ignored, so that nothing is ever removed on their word.
    public var rejected: [Rejected] = []

    /// A ledger record that was ignored, with its key as printable text.
    public struct Rejected: Error, Hashable, Sendable {
        public var key: String
        public var reason: String
        public init(key: String, reason: String) {
            self.key = key
            self.reason = reason
        }
    }

    public init(records: [LedgerRecord] = [], rejected: [Rejected] = []) {
        var table: [TreePath: LedgerRecord] = Dictionary(minimumCapacity: records.count)
        for record in records { table[record.path] = record }
        self.records = table
        self.rejected = rejected
    }

    public init(records: [TreePath: LedgerRecord], rejected: [Rejected] = []) {
        self.records = records
        self.rejected = rejected
    }

    /// The path a ledger key names, or why no record bpftree writes has that key: bpftree records only
    /// anchor-relative paths of names a manifest may declare, and its own temporary names.
    public static func path(ofKey bytes: some Collection<UInt8>) -> Result<TreePath, Rejected> {
        func reject(_ reason: String) -> Result<TreePath, Rejected> {
            .failure(Rejected(key: TreePath.escaped(bytes), reason: reason))
        }
        guard !bytes.isEmpty else { return reject("empty key") }
        guard bytes.count <= Reserved.maxPathBytes else { return reject("longer than \(Reserved.maxPathBytes) bytes") }
        guard let text = String(validating: bytes, as: UTF8.self) else { return reject("not UTF-8") }
        for name in text.split(separator: "/", omittingEmptySubsequences: false) {
            let name = String(name)
            if Reserved.isTemporaryName(name) { continue }
            if let problem = TreePath.problem(withComponent: name) { return reject(problem) }
        }
        return .success(TreePath(joined: text))
    }

    public subscript(path: TreePath) -> LedgerRecord? { records[path] }

    /// This ledger as a run of `scope` sees it: its own records, and every other owner's in `others`.
    public func restricted(to scope: OwnerScope) -> Ledger {
        // The common case, one set per anchor, keeps the table as it is (no copy of a large ledger).
        if others.isEmpty, records.values.allSatisfy(scope.claims) {
            var ledger = self
            ledger.owner = scope.owner
            return ledger
        }
        var own: [TreePath: LedgerRecord] = Dictionary(minimumCapacity: records.count)
        var others = self.others
        for (path, record) in records {
            if scope.claims(record) { own[path] = record } else { others[path] = record }
        }
        var ledger = Ledger(records: own, rejected: rejected)
        (ledger.others, ledger.owner) = (others, scope.owner)
        return ledger
    }

    /// Whether bpftree owns what `live` holds at `path` (`LedgerRecord.owns`).
    public func owns(_ path: TreePath, in live: LiveTree) -> Bool {
        guard let record = records[path], let current = live[path] else { return false }
        return record.owns(current)
    }

    /// Recorded paths outside `roots`' subtrees, reduced to the topmost: the observer must also walk these
    /// so that entries of manifests that were removed can be found and pruned. Ancestors of a root are
    /// left out: the observer looks at them anyway, and they stay declared as the root's parents.
    public func extraRoots(beyond roots: [TreePath]) -> [TreePath] {
        // By lookups of each path's ancestors: linear in records and roots (times the depth).
        let rootSet = Set(roots)
        var aboveRoots: Set<TreePath> = []
        for root in roots { aboveRoots.formUnion(root.ancestors) }
        let outside = records.keys.filter { path in
            !rootSet.contains(path) && !aboveRoots.contains(path) && !path.ancestors.contains(where: rootSet.contains)
                && !(path.isAnchor ? !roots.isEmpty : rootSet.contains(.anchor))
        }
        return TreePath.topmost(Array(outside))
    }
}

extension Ledger {
    /// The pins a pass need not inspect (see `VouchedPins`).
    public func vouchedPins(for desired: DesiredTree) -> VouchedPins { VouchedPins(ledger: self, desired: desired) }
}

/// The pins a pass need not inspect: records of maps bpftree owns whose shape fingerprint is the one
/// declared now (or that are no longer declared, where only the kind matters), and of programs and links
/// bpftree owns that are no longer declared (only pruning looks at them, and it needs the kind alone).
/// When the pin at such a path still has the recorded inode it is the very object bpftree pinned: a pin's
/// inode changes whenever anything is pinned again at its path, and a map's shape never changes. The
/// observer then skips `BPF_OBJ_GET` and reports `LiveEntry.Kind.recordedMap` or `.recordedPin`. Maps a
/// declared program is bound to are always inspected: the planner compares their id with the program's.
/// Answered per path.
public struct VouchedPins: Sendable {
    /// The ledger's record of a path: from a table read whole, or looked up one path at a time (by the
    /// threads of one walk at once).
    let lookup: @Sendable (TreePath) -> LedgerRecord?
    let desired: DesiredTree

    init(ledger: Ledger, desired: DesiredTree) {
        self.lookup = { ledger[$0] }
        self.desired = desired
    }

    /// Records found by `lookup` (a pass that reads only the records of the paths it sees).
    public init(desired: DesiredTree, lookup: @escaping @Sendable (TreePath) -> LedgerRecord?) {
        self.lookup = lookup
        self.desired = desired
    }

    /// The record that vouches for the pin at `path`, if one does (its inode still has to match).
    public func record(for path: TreePath) -> LedgerRecord? {
        guard let record = lookup(path), record.state == .owned else { return nil }
        switch record.kind {
        case .map:
            guard desired.boundMaps.isEmpty || !desired.boundMaps.contains(path) else { return nil }
            if let declared = desired.mapFingerprint(at: path), declared != record.fingerprint { return nil }
            return record
        case .program, .link:
            return desired.declares(path) ? nil : record
        case .directory:
            return nil
        }
    }
}

extension LiveEntry.Kind {
    /// The ledger kind of a live entry, nil for kinds bpftree does not create.
    public var ledgerKind: LedgerRecord.Kind? {
        switch self {
        case .directory: .directory
        case .map, .recordedMap: .map
        case .program: .program
        case .link: .link
        case .recordedPin(let kind): kind
        default: nil
        }
    }
}
