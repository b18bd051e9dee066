import BPFTreeCore
import Glibc

/// The kernel calls the executor makes, each on an anchor-relative path and never following a symlink.
/// `LiveKernel` makes them; a test's recording fake stands in for it to drive every failure path.
public protocol KernelOperations: AnyObject {
    /// How much one batch-program run holds.
    var batchLimits: BatchLimits { get }
    var possibleCPUs: Int { get }

    /// Makes a directory, owner-only (`0700`): a declared mode or owner may keep bpftree itself out until
    /// its children exist.
    func makeDirectory(_ path: TreePath) throws(KernelError)
    func status(_ path: TreePath) throws(KernelError) -> EntryStatus
    /// Sets the mode (when not nil) and the managed half of `owner`.
    func setAttributes(_ path: TreePath, mode: UInt32?, owner: Owner) throws(KernelError)
    func pin(_ object: Descriptor, at path: TreePath) throws(KernelError)
    /// Pins each object at its path and reads the new pin's status, as `pin` then `status` for each; nil
    /// for a pin not tried. `LiveKernel` pins many on several threads, each thread stopping at its first
    /// refusal, so pins after a refused one may be made too; the default stops at the first.
    func pin(_ pins: [(object: Descriptor, path: TreePath)]) -> [PinOutcome?]
    /// Renames `path` to `name` in the same directory: `RENAME_EXCHANGE` when `exchange`, else
    /// `RENAME_NOREPLACE`.
    func rename(_ path: TreePath, to name: String, exchange: Bool) throws(KernelError)
    /// Removes a pin or an empty directory; one already gone is fine.
    func unlink(_ path: TreePath, directory: Bool) throws(KernelError)
    /// Removes a temporary pin, or a staging directory with everything in it; one already gone is fine.
    func removeTemporary(_ path: TreePath) throws(KernelError)

    /// `BPF_OBJ_GET` of the object pinned at `path`.
    func openPin(_ path: TreePath) throws(KernelError) -> Descriptor
    /// Opens cgroup v2 directory `cgroup`, refused unless its id is `id` (`link` names the link it is for).
    func openCgroup(_ cgroup: String, id: UInt64, for link: TreePath) throws(KernelError) -> Descriptor
    /// Opens the network namespace file `path`, checked to be the namespace of inode `inode` planned.
    func openNamespace(_ path: String, inode: UInt64, for link: TreePath) throws(KernelError) -> Descriptor
    /// Refuses when network interface `name` no longer has the index `index` planned (renamed, or gone and
    /// another made under its name), right before a link is made on that index.
    func checkInterface(_ name: String, index: UInt32, for link: TreePath) throws(KernelError)
    /// Opens the perf event a tracepoint, uprobe or kprobe link attaches through (`perf_event_open`).
    func openPerfEvent(_ resolved: ResolvedLink, for link: TreePath) throws(KernelError) -> Descriptor
    /// The id of the program or link `object` (a tcx link's position names its neighbour by id).
    func objectID(_ object: Descriptor, path: TreePath) throws(KernelError) -> (id: UInt32, isLink: Bool)
    /// Detaches the link pinned at `path` from its hook (`BPF_LINK_DETACH`); its pin stays.
    func detachLink(_ path: TreePath) throws(KernelError)
    /// Detaches the link pinned at `path` for a successor, as `detachLink`; returns what attaches its
    /// program again where it was, read first.
    func detachLinkForSuccessor(_ path: TreePath) throws(KernelError) -> DetachedLink
    /// Makes a new link that attaches `detached`'s program where it was (`renamed`: the ids of links
    /// attached again before it, old → new); returns it and its id.
    func reattach(_ detached: DetachedLink, renamed: [UInt32: UInt32]) throws(KernelError) -> (Descriptor, id: UInt32)
    /// Moves the link pinned at `path` to the program pinned at `program` (`BPF_LINK_UPDATE`), refused
    /// unless it holds program `expecting` until then.
    func updateLink(_ path: TreePath, to program: TreePath, expecting: UInt32) throws(KernelError)
    /// Runs one batch of map ops; one result per op, in op order.
    func run(_ batch: MapBatch) throws(KernelError) -> [BatchResult]
    /// Runs one batch of `BPF_LINK_CREATE`s; one result per link, in order.
    func run(_ links: [LinkOp]) throws(KernelError) -> [BatchResult]
    /// Writes `contents` (values as the kernel takes them) into `map`, one update each.
    func write(_ contents: [(key: [UInt8], value: [UInt8])], into map: Descriptor, path: TreePath) throws(KernelError)
    func freeze(_ map: Descriptor, path: TreePath) throws(KernelError)
    /// Copies every entry of the map pinned at `path`, refused unless it is map `id`, into `new`; returns
    /// how many were copied.
    func copyEntries(from path: TreePath, id: UInt32, into new: Descriptor, keySize: UInt32,
                     valueLength: Int) throws(KernelError) -> UInt64
    /// Loads the programs `specs` declare (of one object, with one `ProgramSpec.loadKey`) in one load of
    /// their object, its maps bound to `maps`; returns them, in order, with their tags. `path`: the first
    /// program's, for errors.
    func load(_ specs: [ProgramSpec], maps: [(name: String, map: Descriptor)], path: TreePath) throws(KernelError) -> [(Descriptor, tag: UInt64)]

    /// Writes ledger records (replacing any at their paths).
    func record(_ records: [LedgerRecord]) throws(KernelError)
    /// Removes the ledger records at `paths`.
    func forget(_ paths: [TreePath]) throws(KernelError)
}

extension KernelOperations {
    public func pin(_ pins: [(object: Descriptor, path: TreePath)]) -> [PinOutcome?] {
        PinOutcome.inOrder(pins[...], pin: { (object, path) throws(KernelError) in try self.pin(object, at: path) },
                           status: { (path) throws(KernelError) in try status(path) })
    }
}

/// What became of one pin of `KernelOperations.pin(_:)`.
public struct PinOutcome: Sendable {
    /// Whether the object is pinned (its status may still have been refused).
    public var pinned: Bool
    public var status: Result<EntryStatus, KernelError>

    public var succeeded: Bool { if case .success = status { true } else { false } }

    /// Pins each of `pins` in order with `pin`, then reads its status with `status`, stopping at the first
    /// refusal (the rest nil).
    static func inOrder(_ pins: ArraySlice<(object: Descriptor, path: TreePath)>,
                        pin: (Descriptor, TreePath) throws(KernelError) -> Void,
                        status: (TreePath) throws(KernelError) -> EntryStatus) -> [PinOutcome?] {
        var outcomes = [PinOutcome?](repeating: nil, count: pins.count)
        for (offset, item) in pins.enumerated() {
            let outcome: PinOutcome
            do throws(KernelError) {
                try pin(item.object, item.path)
                do throws(KernelError) { outcome = PinOutcome(pinned: true, status: .success(try status(item.path))) }
                catch { outcome = PinOutcome(pinned: true, status: .failure(error)) }
            } catch {
                outcome = PinOutcome(pinned: false, status: .failure(error))
            }
            outcomes[offset] = outcome
            if !outcome.succeeded { break }
        }
        return outcomes
    }
}

/// What `fstatat` tells of an entry.
public struct EntryStatus: Equatable, Sendable {
    public var inode: UInt64
    /// Permission bits.
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var isDirectory: Bool

    public init(inode: UInt64, mode: UInt32, uid: UInt32, gid: UInt32, isDirectory: Bool) {
        (self.inode, self.mode, self.uid, self.gid, self.isDirectory) = (inode, mode, uid, gid, isDirectory)
    }
}

/// The result of one op of a batch run.
public enum BatchResult {
    /// A create's new object.
    case made(Descriptor)
    /// An update or freeze that succeeded.
    case done
    /// The op's -errno.
    case refused(Int32)

    /// The object a create made; otherwise `operation` on `path` failed.
    func object(_ operation: KernelOperation, path: TreePath) throws(KernelError) -> Descriptor {
        switch self {
        case .made(let descriptor): return descriptor
        case .refused(let error): throw KernelError(operation, path: path.description, negativeErrno: error)
        case .done: throw KernelError(operation, path: path.description, negativeErrno: -EINVAL, detail: "no object made")
        }
    }
}

/// A link a batch makes from arguments in bpftree's memory.
private enum SpecialLink {
    case rawTracepoint(String)
    case kprobeMulti([String], UInt32)
    case uprobeMulti(String, [UInt64], UInt32, UInt32)
}

/// One `BPF_LINK_CREATE` of a batch run.
public struct LinkOp {
    public var program: Descriptor
    /// The cgroup of a cgroup link, the namespace of a netns link, the perf event of a tracepoint or probe
    /// link; nil for the rest.
    public var target: Descriptor?
    /// A raw tracepoint link's tracepoint (`BPF_RAW_TRACEPOINT_OPEN`, not LINK_CREATE); nil otherwise.
    public var rawTracepoint: String? {
        get { if case .rawTracepoint(let name)? = special.first { name } else { nil } }
        set { special = newValue.map { [.rawTracepoint($0)] } ?? [] }
    }
    /// Descriptors `info` names (a map iterator's map), open until the run.
    public var keepAlive: [Descriptor] = []
    /// link_create's bytes after flags when they are not a tcx neighbour (a netfilter link's hook); empty
    /// otherwise.
    public var args: [UInt8] = []
    /// A kprobe_multi link's functions and flags; nil otherwise.
    public var kprobeMulti: (functions: [String], flags: UInt32)? {
        get { if case .kprobeMulti(let functions, let flags)? = special.first { (functions, flags) } else { nil } }
        set { special = newValue.map { [.kprobeMulti($0.functions, $0.flags)] } ?? [] }
    }
    /// A uprobe_multi link's file, offsets, flags and process (0: every one); nil otherwise.
    public var uprobeMulti: (file: String, offsets: [UInt64], flags: UInt32, pid: UInt32)? {
        get { if case .uprobeMulti(let file, let offsets, let flags, let pid)? = special.first { (file, offsets, flags, pid) } else { nil } }
        set { special = newValue.map { [.uprobeMulti($0.file, $0.offsets, $0.flags, $0.pid)] } ?? [] }
    }
    /// The above, out of line: a batch holds thousands of cgroup links, which have none.
    private var special: [SpecialLink] = []
    /// The interface index of an XDP or tcx link; 0 otherwise.
    public var interfaceIndex: UInt32
    public var attachType: UInt32
    /// `link_create.flags`: an XDP link's mode, a tcx link's position; 0 otherwise.
    public var flags: UInt32
    /// A tcx link's neighbour (program or link id) when `flags` has `BPF_F_ID`; 0 otherwise.
    public var relativeID: UInt32 = 0
    /// The `bpf_iter_link_info` of an iterator; empty otherwise.
    public var info: [UInt8]

    public init(program: Descriptor, target: Descriptor?, interfaceIndex: UInt32 = 0, attachType: UInt32,
                flags: UInt32 = 0, relativeID: UInt32 = 0, info: [UInt8]) {
        self.relativeID = relativeID
        (self.program, self.target, self.interfaceIndex, self.attachType, self.flags, self.info)
            = (program, target, interfaceIndex, attachType, flags, info)
    }
}
