/// What the kernel layer found the declared programs and links to be before planning, by entry path:
/// what loading each program gave, and what each link's target is (a cgroup's id, an interface's index,
/// a namespace's inode, a tracepoint's id, a uprobe's offsets). The desired tree stays as declared; the
/// planner reads this table, and the plan's program and link actions carry their part of it.
public struct ResolvedTargets: Sendable {
    public var images: [TreePath: ProgramImage]
    public var links: [TreePath: LinkResolution]
    /// Each program object's identity (device, inode, size, modification time) as read before it was
    /// loaded, by the path it is read from: a stamp of the tree holds only while it is the same.
    public var objects: [String: String] = [:]

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
}
