import BPFTreeCore

/// The ledger records of some paths only, looked up one by one as a view's pass needs them (a view of a
/// few subtrees need not read a ledger of 100,000 records). Each path is looked up once. Only records of
/// `scope` are the run's; the others are kept apart (`Ledger.others`).
public final class LedgerLookups {
    private let store: LedgerStore?
    private let scope: OwnerScope
    private var found: [TreePath: LedgerRecord] = [:]
    private var looked: Set<TreePath> = []
    /// The first lookup that failed; `ledger()` throws it.
    private var failure: KernelError?

    /// Lookups in the ledger at `anchor`, if it has one.
    public init(_ anchor: Anchor, scope: OwnerScope) throws(KernelError) {
        store = try LedgerStore.open(anchor, create: false)
        self.scope = scope
    }

    /// The run's record of `path`, if there is one.
    public func record(at path: TreePath) -> LedgerRecord? {
        if let store, looked.insert(path).inserted {
            do { found[path] = try store.record(at: path) } catch { failure = failure ?? error }
        }
        return found[path].flatMap { scope.claims($0) ? $0 : nil }
    }

    /// The records found so far, as a ledger of the run's records and the others.
    public func ledger() throws(KernelError) -> Ledger {
        if let failure { throw failure }
        return Ledger(records: Array(found.values)).restricted(to: scope)
    }
}
