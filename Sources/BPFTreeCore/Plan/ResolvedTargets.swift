/// What the kernel layer found the declared programs and links to be before planning, by entry path:
/// what loading each program gave, and what each link's target is (a cgroup's id, an interface's index,
/// a namespace's inode, a tracepoint's id, a uprobe's offsets). The desired tree stays as declared; the
/// planner reads this table, and the plan's program and link actions carry their part of it.
public struct ResolvedTargets: Sendable {
    public var images: [TreePath: ProgramImage]
    public var links: [TreePath: LinkResolution]

    public init(images: [TreePath: ProgramImage] = [:], links: [TreePath: LinkResolution] = [:]) {
        (self.images, self.links) = (images, links)
    }

    /// The program declared at `path` with what loading it gave.
    public func program(_ spec: ProgramSpec, at path: TreePath) -> ResolvedProgram {
        ResolvedProgram(spec, image: images[path])
    }

    /// The link declared at `path` with what its target was found to be.
    public func link(_ spec: LinkSpec, at path: TreePath) -> ResolvedLink {
        ResolvedLink(spec, links[path] ?? .none)
    }

    /// Whether the program or link at `path` was resolved already.
    public func contains(_ path: TreePath) -> Bool {
        images[path] != nil || links[path] != nil
    }

    /// `other`'s entries added, replacing this table's for the same paths.
    public func merging(_ other: ResolvedTargets) -> ResolvedTargets {
        guard !other.images.isEmpty || !other.links.isEmpty else { return self }
        var merged = self
        merged.images.merge(other.images) { $1 }
        merged.links.merge(other.links) { $1 }
        return merged
    }
}
