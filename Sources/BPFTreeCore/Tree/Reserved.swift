/// Names bpftree keeps for itself in the tree; manifests cannot declare them.
public enum Reserved {
    /// The ownership ledger, a map pinned at the anchor (bpffs holds no files or xattrs, so the ledger is a map).
    public static let ledgerName = "bpftree_ledger"
    /// The convergence stamp of the last pass that found nothing to do (`TreeStamp`), a map pinned at the anchor.
    public static let stampName = "bpftree_stamp"
    /// What loading each declared program gave, cached between runs (a map pinned at the anchor).
    public static let imagesName = "bpftree_images"
    /// bpftree's own maps at the anchor: never declared, observed or pruned.
    public static let mapNames: Set<String> = [ledgerName, stampName, imagesName]
    /// New objects are pinned under such a name before they are exchanged with the old one.
    public static let temporaryPrefix = "bpftree_tmp_"
    /// Longest anchor-relative path the ledger can record (its key is 256 bytes, NUL-padded).
    public static let maxPathBytes = 255
}
