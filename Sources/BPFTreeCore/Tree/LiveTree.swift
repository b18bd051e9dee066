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

/// What the kernel reports for a pinned link (`BPF_OBJ_GET_INFO_BY_FD`).
public struct LiveLinkInfo: Hashable, Sendable {
    public var id: UInt32
    /// `BPF_LINK_TYPE_*`.
    public var type: UInt32
    public var programID: UInt32
    /// Cgroup and network namespace links: the attach type.
    public var attachType: UInt32
    /// Cgroup links and cgroup iterators: the cgroup's id (0 once the cgroup is gone).
    public var cgroupID: UInt64
    /// Iterators: the target (e.g. `cgroup`) and, for cgroup iterators, the order.
    public var iteratorTarget: String
    public var iteratorOrder: UInt32
    /// XDP links: the interface's index (0 once the interface is gone).
    public var interfaceIndex: UInt32
    /// Network namespace links: the namespace's inode (0 once it is gone).
    public var netnsInode: UInt32
    /// Map iterators and sockmap links: the map's id.
    public var mapID: UInt32 = 0
    /// Perf event links: `enum bpf_perf_event_type` (`PerfEventKind`), and the probe's offset.
    public var perfEventType: UInt32 {
        get { details.first?.perfEventType ?? 0 }
        set { detail { $0.perfEventType = newValue } }
    }
    public var probeOffset: UInt64 {
        get { details.first?.probeOffset ?? 0 }
        set { detail { $0.probeOffset = newValue } }
    }
    /// Raw tracepoint, perf event and uprobe_multi links: the tracepoint, the kernel function or (uprobes)
    /// the file.
    public var probeName: String {
        get { details.first?.probeName ?? "" }
        set { detail { $0.probeName = newValue } }
    }
    /// uprobe_multi and kprobe_multi links: how many offsets or functions, the offsets' digest
    /// (`offsetsDigest`, 0 when not read), the return flag and the process (0: every one).
    public var probeCount: Int {
        get { details.first?.probeCount ?? 0 }
        set { detail { $0.probeCount = newValue } }
    }
    public var probeOffsetsDigest: UInt64 {
        get { details.first?.probeOffsetsDigest ?? 0 }
        set { detail { $0.probeOffsetsDigest = newValue } }
    }
    public var probeFlags: UInt32 {
        get { details.first?.probeFlags ?? 0 }
        set { detail { $0.probeFlags = newValue } }
    }
    public var probePID: UInt32 {
        get { details.first?.probePID ?? 0 }
        set { detail { $0.probePID = newValue } }
    }
    /// Netfilter links: `NFPROTO_*`, `NF_INET_*`, the priority and the flags.
    public var netfilterFamily: UInt32 {
        get { details.first?.netfilterFamily ?? 0 }
        set { detail { $0.netfilterFamily = newValue } }
    }
    public var netfilterHook: UInt32 {
        get { details.first?.netfilterHook ?? 0 }
        set { detail { $0.netfilterHook = newValue } }
    }
    public var netfilterPriority: Int32 {
        get { details.first?.netfilterPriority ?? 0 }
        set { detail { $0.netfilterPriority = newValue } }
    }
    public var netfilterFlags: UInt32 {
        get { details.first?.netfilterFlags ?? 0 }
        set { detail { $0.netfilterFlags = newValue } }
    }
    /// tcx links: the programs on the link's hook and their links' ids (0: a program attached without
    /// one), first to last (`BPF_PROG_QUERY`); empty when not asked.
    public var tcxPrograms: [UInt32] {
        get { details.first?.tcxPrograms ?? [] }
        set { detail { $0.tcxPrograms = newValue } }
    }
    public var tcxLinks: [UInt32] {
        get { details.first?.tcxLinks ?? [] }
        set { detail { $0.tcxLinks = newValue } }
    }
    /// task, task_file and task_vma iterators: the one thread (`tid`) or process (`pid`) they walk, 0 for
    /// every one.
    public var taskTID: UInt32 {
        get { details.first?.taskTID ?? 0 }
        set { detail { $0.taskTID = newValue } }
    }
    public var taskPID: UInt32 {
        get { details.first?.taskPID ?? 0 }
        set { detail { $0.taskPID = newValue } }
    }
    /// What only some kinds of links report, out of line: most links are cgroup links, by the thousand.
    private var details: [LinkDetails] = []

    private mutating func detail(_ change: (inout LinkDetails) -> Void) {
        var found = details.first ?? LinkDetails()
        change(&found)
        details = [found]
    }

    public init(id: UInt32, type: UInt32, programID: UInt32, attachType: UInt32 = 0, cgroupID: UInt64 = 0,
                iteratorTarget: String = "", iteratorOrder: UInt32 = 0, interfaceIndex: UInt32 = 0, netnsInode: UInt32 = 0) {
        self.interfaceIndex = interfaceIndex
        self.netnsInode = netnsInode
        self.id = id
        self.type = type
        self.programID = programID
        self.attachType = attachType
        self.cgroupID = cgroupID
        self.iteratorTarget = iteratorTarget
        self.iteratorOrder = iteratorOrder
    }

    public static func typeName(_ type: UInt32) -> String {
        let names = ["unspec", "raw_tracepoint", "tracing", "cgroup", "iter", "netns", "xdp", "perf_event",
                     "kprobe_multi", "struct_ops", "netfilter", "tcx", "uprobe_multi", "netkit", "sockmap"]
        return names.indices.contains(Int(type)) ? names[Int(type)] : "type \(type)"
    }
}

/// `LiveLinkInfo`'s fields of probe, netfilter and tcx links.
struct LinkDetails: Hashable, Sendable {
    var perfEventType: UInt32 = 0
    var probeOffset: UInt64 = 0
    var probeName = ""
    var probeCount = 0
    var probeOffsetsDigest: UInt64 = 0
    var probeFlags: UInt32 = 0
    var probePID: UInt32 = 0
    var netfilterFamily: UInt32 = 0
    var netfilterHook: UInt32 = 0
    var netfilterPriority: Int32 = 0
    var netfilterFlags: UInt32 = 0
    var tcxPrograms: [UInt32] = []
    var tcxLinks: [UInt32] = []
    var taskTID: UInt32 = 0
    var taskPID: UInt32 = 0
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
