import BPFTreeCore

/// O_PATH descriptors of the directories on the way to the last directory used. Actions arrive in path
/// order, so keeping just this chain opens each directory once while holding only depth-many fds.
final class DirectoryChain {
    private let anchor: Anchor
    private var chain: [(path: TreePath, descriptor: Descriptor)] = []

    init(anchor: Anchor) { self.anchor = anchor }

    /// The descriptor of `directory`, opened component by component with `openat2` (no symlinks).
    func descriptor(for directory: TreePath) throws(KernelError) -> Int32 {
        if directory.isAnchor { return anchor.fd }
        var keep = 0
        while keep < chain.count, keep < directory.depth, chain[keep].path.components[keep] == directory.components[keep] {
            keep += 1
        }
        chain.removeLast(chain.count - keep)
        while chain.count < directory.depth {
            let path = TreePath(Array(directory.components.prefix(chain.count + 1)))
            let parent = chain.last?.descriptor.rawValue ?? anchor.fd
            chain.append((path, try anchor.openDirectory(path.name, from: parent, displayPath: path)))
        }
        return chain[chain.count - 1].descriptor.rawValue
    }
}
