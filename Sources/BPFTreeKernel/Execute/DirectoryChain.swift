import BPFTreeCore
import SystemPackage

/// O_PATH descriptors of the directories on the way to the last directory used. Actions arrive in path
/// order, so keeping just this chain opens each directory once while holding only depth-many fds.
final class DirectoryChain {
    private let anchor: Anchor
    private var chain: [(path: TreePath, descriptor: Descriptor)] = []

    init(anchor: Anchor) { self.anchor = anchor }

    /// The descriptor of `directory`, opened component by component with `openat2` (no symlinks).
    func descriptor(for directory: TreePath) throws(KernelError) -> FileDescriptor {
        if directory.isAnchor { return anchor.fd }
        if let last = chain.last, last.path == directory { return last.descriptor.fd }
        // chain[i] is the ancestor of depth i + 1; keep the ones `directory` shares.
        while let last = chain.last, last.path != directory, !directory.isDescendant(of: last.path) {
            chain.removeLast()
        }
        let depth = directory.depth
        while chain.count < depth {
            let path = directory.prefix(chain.count + 1)
            let parent = chain.last?.descriptor.fd ?? anchor.fd
            chain.append((path, try anchor.openDirectory(path.name, from: parent, displayPath: path)))
        }
        return chain[chain.count - 1].descriptor.fd
    }
}
