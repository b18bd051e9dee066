import BPFTreeCore
import Synchronization

/// The ledger records of some paths only, looked up one by one as a view's pass needs them (a view of a
/// few subtrees need not read a ledger of 100,000 records). Each path is looked up once, whichever walk
/// thread asks first. Only records of `scope` are the run's; the others are kept apart (`Ledger.others`).
public final class LedgerLookups: Sendable {
    private let scope: OwnerScope
    private let state: Mutex<Found>

    private struct Found {
        let store: LedgerStore?
        var records: [TreePath: LedgerRecord] = [:]
        var looked: Set<TreePath> = []
        /// The first lookup that failed; `ledger()` throws it.
        var failure: KernelError?
    }

    /// Lookups in the ledger at `anchor`, if it has one.
    public init(_ anchor: Anchor, scope: OwnerScope) throws(KernelError) {
        state = Mutex(Found(store: try LedgerStore.open(anchor, create: false)))
        self.scope = scope
    }

    /// The run's record of `path`, if there is one.
    public func record(at path: TreePath) -> LedgerRecord? {
        let record = state.withLock { found -> LedgerRecord? in
            if let store = found.store, found.looked.insert(path).inserted {
                do throws(KernelError) { found.records[path] = try store.record(at: path) } catch { found.failure = found.failure ?? error }
            }
            return found.records[path]
        }
        return record.flatMap { scope.claims($0) ? $0 : nil }
    }

    /// The records found so far, as a ledger of the run's records and the others.
    public func ledger() throws(KernelError) -> Ledger {
        let (records, failure) = state.withLock { ($0.records, $0.failure) }
        if let failure { throw failure }
        return Ledger(records: Array(records.values)).restricted(to: scope)
    }
}
