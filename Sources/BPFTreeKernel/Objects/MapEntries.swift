import BPFTreeCore
import CBPFTreeShim

/// Reads about the entries of a pinned map without changing it.
public enum MapEntries {
    /// How many entries the map pinned at `path` holds (walking its keys with `BPF_MAP_GET_NEXT_KEY`).
    public static func count(anchor: Anchor, path: TreePath, keySize: UInt32) throws(KernelError) -> UInt64 {
        let parent = try anchor.openDirectory(path.parent.isAnchor ? "." : path.parent.description, displayPath: path.parent)
        let fd = withKernelName(path.name) { bt_obj_get_at(parent.rawValue, $0) }
        guard fd >= 0 else { throw KernelError(.bpf(.objGet), path: path.description, negativeErrno: fd) }
        let map = Descriptor(owning: fd)
        var count: UInt64 = 0
        let result = bt_map_count(map.rawValue, keySize, &count)
        guard result == 0 else { throw KernelError(.bpf(.mapGetNextKey), path: path.description, negativeErrno: result) }
        return count
    }
}
