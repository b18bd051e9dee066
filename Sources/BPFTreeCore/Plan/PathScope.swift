/// The subtrees one pass plans: every path at or beneath one of `roots`. Roots are kept sorted and
/// topmost, so that membership is one binary search (paths sort parent first, a subtree contiguous).
public struct PathScope: Hashable, Sendable {
    public let roots: [TreePath]

    public init(_ paths: some Sequence<TreePath>) { roots = TreePath.topmost(Array(paths)) }

    public var isEmpty: Bool { roots.isEmpty }

    /// Whether `path` is one of the roots or lies beneath one.
    public func contains(_ path: TreePath) -> Bool {
        // The greatest root not after `path` is the only one that can hold it.
        let after = roots.partitionIndex { path < $0 }
        guard after > 0 else { return false }
        let root = roots[after - 1]
        return root == path || path.isDescendant(of: root)
    }
}

extension Plan {
    /// The actions, problems and notices about paths in `scope`, in their order.
    public func restricted(to scope: PathScope) -> Plan {
        Plan(actions: actions.filter { scope.contains($0.path) },
             problems: problems.filter { scope.contains($0.path) },
             notices: notices.filter { scope.contains($0.path) })
    }

    /// Whether everything this plan says is about paths in `scope`.
    public func lies(within scope: PathScope) -> Bool {
        actions.allSatisfy { scope.contains($0.path) } && problems.allSatisfy { scope.contains($0.path) }
            && notices.allSatisfy { scope.contains($0.path) }
    }
}
