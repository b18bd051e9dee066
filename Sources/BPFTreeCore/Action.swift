/// One change to the tree. Actions are plain data; the kernel layer's executor carries them out.
public struct Action: Hashable, Sendable {
    public enum Change: Hashable, Sendable {
        case createDirectory(mode: UInt32, owner: Owner)
        case createMap(MapSpec, mode: UInt32, owner: Owner)
        case setMode(from: UInt32, to: UInt32)
        case setOwner(from: Owner, to: Owner)
    }

    public var path: TreePath
    public var change: Change
    /// The declaration that asks for it; nil for an implicit parent directory.
    public var origin: Origin?

    public init(path: TreePath, change: Change, origin: Origin? = nil) {
        self.path = path
        self.change = change
        self.origin = origin
    }

    /// Stable name used in JSON output: `createDirectory`, `createMap`, `setMode`, `setOwner`.
    public var kind: String {
        switch change {
        case .createDirectory: "createDirectory"
        case .createMap: "createMap"
        case .setMode: "setMode"
        case .setOwner: "setOwner"
        }
    }

    public var isCreate: Bool {
        switch change {
        case .createDirectory, .createMap: true
        case .setMode, .setOwner: false
        }
    }

    /// Why the action is needed, in words.
    public var reason: String {
        switch change {
        case .createDirectory, .createMap: "missing"
        case .setMode(let from, let to): "mode is \(formatMode(from)), declared \(formatMode(to))"
        case .setOwner(let from, let to): "owner is \(from), declared \(to)"
        }
    }

    /// What the action makes, in words.
    public var detail: String {
        switch change {
        case .createDirectory(let mode, let owner):
            "directory, mode \(formatMode(mode))" + (owner.isManaged ? ", owner \(owner)" : "")
        case .createMap(let spec, let mode, let owner):
            "map \(spec.summary), mode \(formatMode(mode))" + (owner.isManaged ? ", owner \(owner)" : "")
        case .setMode(let from, let to): "mode \(formatMode(from)) -> \(formatMode(to))"
        case .setOwner(let from, let to): "owner \(from) -> \(to)"
        }
    }
}
