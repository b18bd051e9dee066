/// What the kernel reports for a pinned map (`BPF_OBJ_GET_INFO_BY_FD`).
public struct LiveMapInfo: Hashable, Sendable {
    public var id: UInt32
    public var type: UInt32
    public var keySize: UInt32
    public var valueSize: UInt32
    public var maxEntries: UInt32
    public var flags: UInt32
    public var mapExtra: UInt64
    public var name: String
    /// nil when the kernel did not say.
    public var frozen: Bool?

    public init(id: UInt32, type: UInt32, keySize: UInt32, valueSize: UInt32, maxEntries: UInt32, flags: UInt32,
                mapExtra: UInt64 = 0, name: String = "", frozen: Bool? = nil) {
        self.id = id
        self.type = type
        self.keySize = keySize
        self.valueSize = valueSize
        self.maxEntries = maxEntries
        self.flags = flags
        self.mapExtra = mapExtra
        self.name = name
        self.frozen = frozen
    }
}

/// What the kernel reports for a pinned program (`BPF_OBJ_GET_INFO_BY_FD`).
public struct LiveProgramInfo: Hashable, Sendable {
    public var id: UInt32
    public var type: UInt32
    /// The kernel's program tag, first byte most significant.
    public var tag: UInt64
    public var name: String
    /// The maps the program uses.
    public var mapIDs: [UInt32]

    public init(id: UInt32, type: UInt32, tag: UInt64, name: String, mapIDs: [UInt32] = []) {
        self.id = id
        self.type = type
        self.tag = tag
        self.name = name
        self.mapIDs = mapIDs
    }
}

/// One entry observed in the bpffs tree.
public struct LiveEntry: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        case directory
        indirect case map(LiveMapInfo)
        /// A pin the ledger vouches for: its inode is the one recorded when bpftree pinned a map of this
        /// shape fingerprint there, so it was not inspected (see `VouchedPins`).
        case recordedMap(fingerprint: UInt64)
        /// A program or link pin no manifest declares, with the inode bpftree recorded when it pinned an
        /// object of this kind there: only pruning looks at it, so it was not inspected (`VouchedPins`).
        case recordedPin(LedgerRecord.Kind)
        indirect case program(LiveProgramInfo)
        indirect case link(LiveLinkInfo)
        /// A pin whose object kind could not be told.
        case pin
        case symlink
        /// Anything else (e.g. a device node), with its file type.
        case other(String)

        public var name: String {
            switch self {
            case .directory: "directory"
            case .map, .recordedMap: "map"
            case .program: "program"
            case .link: "link"
            case .recordedPin(let kind): kind.name
            case .pin: "pin"
            case .symlink: "symlink"
            case .other(let type): type
            }
        }
    }

    public var kind: Kind
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var inode: UInt64

    public init(kind: Kind, mode: UInt32, uid: UInt32 = 0, gid: UInt32 = 0, inode: UInt64 = 0) {
        self.kind = kind
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.inode = inode
    }
}

/// A snapshot of the parts of the tree the manifests touch: every ancestor of each manifest root and the
/// whole subtree under it. A path that is absent here does not exist (or lies under a non-directory).
public struct LiveTree: Sendable {
    public var entries: [TreePath: LiveEntry]
    /// The paths of `entries` in the order `record` saw them (an observer walks in path order, so sorting
    /// this is cheap); empty when `entries` was built otherwise.
    public private(set) var order: [TreePath] = []
    /// How many pins were inspected with `BPF_OBJ_GET` (the rest the ledger vouched for).
    public var inspectedPins = 0
    public init(entries: [TreePath: LiveEntry] = [:]) { self.entries = entries }
    public init(capacity: Int) {
        entries = Dictionary(minimumCapacity: capacity)
        order.reserveCapacity(capacity)
    }
    public subscript(path: TreePath) -> LiveEntry? { entries[path] }

    /// Adds an observed entry.
    public mutating func record(_ path: TreePath, _ entry: LiveEntry) {
        if entries.updateValue(entry, forKey: path) == nil, order.count == entries.count - 1 { order.append(path) }
    }

    /// Adds what another walk observed (the ancestors both walks opened are recorded once), in its order.
    public mutating func merge(_ other: LiveTree) {
        let paths = other.order.count == other.entries.count ? other.order : other.sortedPaths
        for path in paths {
            if let entry = other.entries[path] { record(path, entry) }
        }
        inspectedPins += other.inspectedPins
    }

    /// Removes the entry at `path` (`order` no longer lists every path, so it is let go).
    public mutating func remove(_ path: TreePath) {
        guard entries.removeValue(forKey: path) != nil else { return }
        order = []
    }

    /// Every path, sorted (parents first).
    public var sortedPaths: [TreePath] {
        (order.count == entries.count ? order : Array(entries.keys)).sorted()
    }
}
