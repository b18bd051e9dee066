/// Where the new objects of one pass are made before they are committed, and what has been made.
///
/// Nothing appears at a declared path until every object of the pass exists: a new directory whose
/// parent exists is made under a temporary name beside it (its whole new subtree is made inside it under
/// the final names), and a new pin in an existing directory, or a replacement, is pinned under a
/// temporary name. The commit then renames each into place (`RENAME_NOREPLACE`, or `RENAME_EXCHANGE` for a
/// replacement). A failure before the commit removes everything made, so the tree is as it was.
public struct Staging {
    /// Final path -> its temporary name (staged directories, pins in existing directories, replacements).
    public private(set) var temporaries: [TreePath: TreePath] = [:]
    /// Final path of every new directory -> where it is made.
    private var directories: [TreePath: TreePath] = [:]
    /// Which ledger kind each temporary holds.
    public private(set) var temporaryKinds: [(TreePath, LedgerRecord.Kind, String)] = []
    /// What was made, in order (inode, mode and owner once they are set).
    public var made: [MadeEntry] = []
    /// Entries a migration copied, by the action's position.
    public var copied: [Int: UInt64] = [:]

    public init() {}

    /// Decides where the object of `path` is made (`replacing`: it replaces an existing one);
    /// `temporary` gives a fresh temporary name beside a path. Called in plan order, parents first.
    public mutating func place(_ path: TreePath, kind: LedgerRecord.Kind, manifest: String, replacing: Bool,
                        temporary: (TreePath) -> TreePath) {
        if !replacing, let parent = directories[path.parent] {
            if kind == .directory { directories[path] = parent.appending(path.name) }
            return
        }
        let name = temporary(path)
        temporaries[path] = name
        temporaryKinds.append((name, kind, manifest))
        if kind == .directory { directories[path] = name }
    }

    /// Where the object of a declared `path` is now: its temporary name, its place inside a staged
    /// directory, or the path itself.
    public func location(of path: TreePath) -> TreePath {
        if temporaries.isEmpty && directories.isEmpty { return path }
        if let temporary = temporaries[path] { return temporary }
        if let directory = directories[path] { return directory }
        if let parent = directories[path.parent] { return parent.appending(path.name) }
        return path
    }

    /// The staged entry that carries `path` into place: the nearest of it and its ancestors with a
    /// temporary name.
    public func top(of path: TreePath) -> TreePath {
        if temporaries[path] != nil { return path }
        var ancestor = path.parent
        while !ancestor.isAnchor, temporaries[ancestor] == nil { ancestor = ancestor.parent }
        return temporaries[ancestor] != nil ? ancestor : path
    }
}
