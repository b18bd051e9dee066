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
    /// Whether `name` is of the form bpftree's temporary names take (`bpftree_tmp_PID_N`): the only names
    /// a temporary record may claim, since no manifest may declare one.
    public static func isTemporaryName(_ name: some StringProtocol) -> Bool {
        guard name.hasPrefix(temporaryPrefix) else { return false }
        let rest = name.utf8.dropFirst(temporaryPrefix.utf8.count)
        let parts = rest.split(separator: UInt8(ascii: "_"), omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.count <= 10 && $0.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } }
    }
    /// Longest anchor-relative path the ledger can record (its key is 256 bytes, NUL-padded).
    public static let maxPathBytes = 255
}
