import BPFTreeYAML

/// A decoded `kind: Tree` document: the entries it declares, flattened, root first.
public struct Manifest: Sendable {
    public var name: String
    public var location: SourceLocation
    public var root: TreePath
    public var entries: [DesiredEntry]
    /// Set for a template (`spec.forEachCgroup`): `root` is then the root as written, placeholders and
    /// all, and `instances(_:)` gives the manifests to merge.
    public var forEachCgroup: CgroupTemplate?
    /// `metadata.owner`: the manifest set it belongs to (`OwnerScope`), with where it is written.
    public var owner: String?
    public var ownerLocation: SourceLocation?

    public init(name: String, location: SourceLocation, root: TreePath, entries: [DesiredEntry],
                forEachCgroup: CgroupTemplate? = nil) {
        self.name = name
        self.location = location
        self.root = root
        self.entries = entries
        self.forEachCgroup = forEachCgroup
    }
}

/// Where a desired entry was declared.
public struct Origin: Hashable, Sendable, CustomStringConvertible {
    public var manifest: String
    public var location: SourceLocation
    /// Dotted field path of the declaration, e.g. `spec.entries.config`.
    public var field: String

    public init(manifest: String, location: SourceLocation, field: String) {
        self.manifest = manifest
        self.location = location
        self.field = field
    }

    public var description: String { "\(location) (\(manifest), \(field))" }
}

/// One path as the manifests want it.
public struct DesiredEntry: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        case directory
        case map(MapSpec)
        // Boxed: entries are mostly directories and maps, and an inline ProgramSpec would make every entry
        // (and every action) larger: 22 MiB of peak RSS for the 100,000-map bench apply, with Action's boxes.
        indirect case program(ProgramSpec)
        indirect case link(LinkSpec)

        public var name: String {
            switch self {
            case .directory: "directory"
            case .map: "map"
            case .program: "program"
            case .link: "link"
            }
        }
    }

    public var path: TreePath
    public var kind: Kind
    /// nil: not managed (implicit parents, the anchor unless a manifest sets its mode).
    public var mode: UInt32?
    public var owner: Owner
    /// nil for an implicit parent directory that no manifest declares itself.
    public var origin: Origin?
    /// Take over an entry that exists but that bpftree did not create (it must be compatible).
    public var adopt: Bool
    /// The entry's own choice, which its policy scope must allow; nil: the scope's default.
    public var onIncompatible: IncompatibleAction?

    public init(path: TreePath, kind: Kind, mode: UInt32?, owner: Owner = .unmanaged, origin: Origin?,
                adopt: Bool = false, onIncompatible: IncompatibleAction? = nil) {
        self.path = path
        self.kind = kind
        self.mode = mode
        self.owner = owner
        self.origin = origin
        self.adopt = adopt
        self.onIncompatible = onIncompatible
    }

    /// For an implicit parent: the manifest whose declarations need it.
    public var implicitFor: String?

    public var isImplicit: Bool { origin == nil }
    /// The manifest the ledger records as owner of what is created for this entry.
    public var manifest: String { origin?.manifest ?? implicitFor ?? "" }
}

/// Defaults applied where a manifest is silent.
public enum Defaults {
    public static let directoryMode: UInt32 = 0o755
    /// What the kernel gives a new pin (S_IRUSR | S_IWUSR).
    public static let pinMode: UInt32 = 0o600
}
