/// Something outside the bpffs that a stamped tree depends on, with what it was when the tree was
/// planned: a program's object file, and a link's cgroup, interface, network namespace file or probed
/// binary, which a declared name may come to mean another of (renamed, made again, replaced) while the
/// link stays where it is. The kernel layer reads each again before trusting the stamp.
public struct TargetIdentity: Hashable, Sendable {
    public enum Kind: UInt8, Sendable {
        /// A program's object file: device, inode, size and modification time.
        case object = 1
        /// A link's cgroup (by its path as declared): its id.
        case cgroup = 2
        /// A link's network interface (by name): its index.
        case interface = 3
        /// A link's network namespace file: its inode.
        case netns = 4
        /// A probed binary: device and inode.
        case file = 5
    }

    public var kind: Kind
    public var name: String
    public var identity: String

    public init(_ kind: Kind, _ name: String, _ identity: String) {
        (self.kind, self.name, self.identity) = (kind, name, identity)
    }

    /// What the programs and links of `desired` depend on outside the bpffs, as `targets` found it, in a
    /// stable order without repeats. `scanned`: the ids of the cgroups the templates were rendered for,
    /// which the stamp's inputs hold with their paths already (an instance's links on its own cgroup add
    /// nothing). `file`: the identity of a probed binary whose resolution does not carry it (uprobe_multi).
    public static func list(_ desired: DesiredTree, _ targets: ResolvedTargets, scanned: Set<UInt64>,
                            file: (String) -> String) -> [TargetIdentity] {
        var found: Set<TargetIdentity> = []
        for (object, identity) in targets.objects { found.insert(TargetIdentity(.object, object, identity)) }
        for entry in desired.entries {
            guard case .link(let spec) = entry.kind else { continue }
            switch targets.links[entry.path] ?? .none {
            case .cgroup(let id):
                if !scanned.contains(id), let cgroup = spec.cgroup { found.insert(TargetIdentity(.cgroup, cgroup, "\(id)")) }
            case .interface(let index):
                if let interface = spec.interface { found.insert(TargetIdentity(.interface, interface, "\(index)")) }
            case .namespace(let inode):
                if let netns = spec.netns { found.insert(TargetIdentity(.netns, netns, "\(inode)")) }
            case .uprobe(let path, _, let identity):
                found.insert(TargetIdentity(.file, path, identity))
            case .uprobeMulti(let path, _):
                found.insert(TargetIdentity(.file, path, file(path)))
            case .none, .tracepoint, .kprobeMulti:
                break
            }
        }
        return found.sorted { ($0.kind.rawValue, $0.name) < ($1.kind.rawValue, $1.name) }
    }
}
