/// One change to the tree or to the ownership ledger. Actions are plain data; the kernel layer's executor
/// carries them out.
public struct Action: Hashable, Sendable {
    /// The rarer, larger changes are boxed (`indirect`) so that an action is as small as a map creation needs.
    public enum Change: Hashable, Sendable {
        case createDirectory(mode: UInt32, owner: Owner)
        case createMap(MapSpec, mode: UInt32, owner: Owner)
        /// Pin a new map under a temporary name, copy the old map's entries into it when `migrate`,
        /// exchange the two names atomically and remove the old pin.
        indirect case replaceMap(MapSpec, mode: UInt32, owner: Owner, old: LiveMapInfo, migrate: Bool, differences: [FieldDifference])
        /// Load the program and pin it (refused when loading it no longer gives the image planned).
        indirect case createProgram(ResolvedProgram, mode: UInt32, owner: Owner)
        /// Create the link on the target as resolved and pin it.
        indirect case createLink(ResolvedLink, mode: UInt32, owner: Owner)
        /// Pin the new program or link under a temporary name, exchange the two names atomically and
        /// remove the old pin.
        indirect case replaceProgram(ResolvedProgram, mode: UInt32, owner: Owner, differences: [FieldDifference])
        indirect case replaceLink(ResolvedLink, mode: UInt32, owner: Owner, differences: [FieldDifference])
        /// Move the pinned link to the declared program in place (`BPF_LINK_UPDATE`, expecting program
        /// `from`): the hook is never without a program.
        indirect case updateLink(ResolvedLink, from: UInt32, differences: [FieldDifference])
        case setMode(from: UInt32, to: UInt32)
        case setOwner(from: Owner, to: Owner)
        /// Record in the ledger that the entry with `inode` is bpftree's (adopted, claimed after an
        /// interrupted run, or now declared by another manifest).
        case recordOwnership(LedgerRecord.Kind, inode: UInt64, why: String)
        /// Delete an owned entry no manifest declares any more (prune).
        case remove(LedgerRecord.Kind)
        /// Delete a temporary pin, or a staging directory with its contents, an interrupted run left behind.
        case removeTemporary
        /// Drop a ledger record whose entry is gone or was replaced by someone else.
        case forgetRecord(why: String)
    }

    /// How an action is shown and counted.
    public enum Category: String, Sendable, CaseIterable {
        case create, update, replace, remove, ledger
    }

    public var path: TreePath
    public var change: Change
    /// The declaration that asks for it; nil for implicit parents, prunes and ledger repairs.
    public var origin: Origin?
    /// The manifest the ledger records as owner (`metadata.name`).
    public var manifest: String

    public init(path: TreePath, change: Change, origin: Origin? = nil, manifest: String? = nil) {
        self.path = path
        self.change = change
        self.origin = origin
        self.manifest = manifest ?? origin?.manifest ?? ""
    }

    /// Stable name used in JSON output.
    public var kind: String {
        switch change {
        case .createDirectory: "createDirectory"
        case .createMap: "createMap"
        case .replaceMap(_, _, _, _, let migrate, _): migrate ? "migrateMap" : "replaceMap"
        case .createProgram: "createProgram"
        case .createLink: "createLink"
        case .replaceProgram: "replaceProgram"
        case .replaceLink: "replaceLink"
        case .updateLink: "updateLink"
        case .setMode: "setMode"
        case .setOwner: "setOwner"
        case .recordOwnership: "recordOwnership"
        case .remove: "remove"
        case .removeTemporary: "removeTemporary"
        case .forgetRecord: "forgetRecord"
        }
    }

    public var category: Category {
        switch change {
        case .createDirectory, .createMap, .createProgram, .createLink: .create
        case .setMode, .setOwner, .updateLink: .update
        case .replaceMap, .replaceProgram, .replaceLink: .replace
        case .remove, .removeTemporary: .remove
        case .recordOwnership, .forgetRecord: .ledger
        }
    }

    public var isCreate: Bool { category == .create }

    /// Why the action is needed, in words.
    public var reason: String {
        switch change {
        case .createDirectory, .createMap, .createProgram, .createLink: "missing"
        case .replaceMap(_, _, _, _, _, let differences), .replaceProgram(_, _, _, let differences),
             .replaceLink(_, _, _, let differences), .updateLink(_, _, let differences):
            differences.map(\.description).joined(separator: "; ")
        case .setMode(let from, let to): "mode is \(formatMode(from)), declared \(formatMode(to))"
        case .setOwner(let from, let to): "owner is \(from), declared \(to)"
        case .recordOwnership(_, _, let why): why
        case .remove: "created by bpftree (manifest \(manifest.isEmpty ? "?" : manifest)) and no longer declared"
        case .removeTemporary: "temporary name left by an interrupted run"
        case .forgetRecord(let why): why
        }
    }

    /// What the action does, in words.
    public var detail: String {
        switch change {
        case .createDirectory(let mode, let owner):
            "directory, mode \(formatMode(mode))" + (owner.isManaged ? ", owner \(owner)" : "")
        case .createMap(let spec, let mode, let owner):
            "map \(spec.summary), mode \(formatMode(mode))" + (owner.isManaged ? ", owner \(owner)" : "")
        case .replaceMap(let spec, _, _, let old, let migrate, _):
            "\(migrate ? "migrate" : "replace") map id \(old.id) with \(spec.summary)\(migrate ? ", copying its entries" : ", empty")"
        case .createProgram(let spec, let mode, let owner):
            "program \(spec.summary), mode \(formatMode(mode))" + (owner.isManaged ? ", owner \(owner)" : "")
        case .createLink(let spec, let mode, let owner):
            "link \(spec.summary), mode \(formatMode(mode))" + (owner.isManaged ? ", owner \(owner)" : "")
        case .replaceProgram(let spec, _, _, _): "replace program with \(spec.summary)"
        case .replaceLink(let link, _, _, _):
            "replace link with \(link.summary)\(link.spec.exclusive ? " (the old one is detached first: the hook takes it once)" : "")"
        case .updateLink(let link, let from, _): "link update program: program id \(from) -> \(link.spec.program), in place"
        case .setMode(let from, let to): "mode \(formatMode(from)) -> \(formatMode(to))"
        case .setOwner(let from, let to): "owner \(from) -> \(to)"
        case .recordOwnership(let kind, _, _): "record \(kind.name) as owned by manifest \(manifest)"
        case .remove(let kind): "remove \(kind.name)"
        case .removeTemporary: "remove temporary pin or staging directory"
        case .forgetRecord: "forget ledger record"
        }
    }
}
