/// The ordered actions that converge the live tree on the desired one, or the problems that forbid it.
public struct Plan: Sendable {
    /// Ledger repairs first, then declarations in path order (a parent before its children), then
    /// removals (children before their parent).
    public var actions: [Action]
    /// Declarations the live tree cannot be converged to (incompatible maps, protected paths, ...).
    public var problems: [PlanProblem]
    /// Things worth telling that need no action: unmanaged entries, symlinks, entries kept by policy.
    public var notices: [PlanNotice]

    public init(actions: [Action] = [], problems: [PlanProblem] = [], notices: [PlanNotice] = []) {
        self.actions = actions
        self.problems = problems
        self.notices = notices
    }

    public var hasChanges: Bool { !actions.isEmpty }
    /// By position, so that no action is copied (each is a few hundred bytes with a dozen references).
    public func count(_ category: Action.Category) -> Int {
        var count = 0
        for index in actions.indices where actions[index].category == category { count += 1 }
        return count
    }
    public var creates: Int { count(.create) }
    public var updates: Int { count(.update) }
}

/// A declaration that conflicts with what is in the tree.
public struct PlanProblem: Hashable, Sendable, CustomStringConvertible {
    public var path: TreePath
    public var message: String
    public var origin: Origin?
    /// For an incompatible map: each differing field.
    public var differences: [FieldDifference]

    public init(path: TreePath, message: String, origin: Origin?, differences: [FieldDifference] = []) {
        self.path = path
        self.message = message
        self.origin = origin
        self.differences = differences
    }

    public var description: String {
        (origin.map { "\($0.location): \($0.field): " } ?? "") + "\(path): \(escapingControlCharacters(message))"
    }
}

/// Something observed that needs no action.
public struct PlanNotice: Hashable, Sendable, CustomStringConvertible {
    public enum Category: String, Sendable {
        /// Exists, but bpftree did not create it: left alone.
        case unmanaged
        case symlink
        /// Owned and undeclared, but kept (policy, protection, or unmanaged content).
        case kept
        /// Programs that hold a map being replaced keep using the old map.
        case programs
        /// A cgroup a template cannot render a subtree for.
        case cgroup
        /// A ledger record that cannot be bpftree's, ignored.
        case ledger
    }

    public var path: TreePath
    public var message: String
    public var category: Category

    public init(path: TreePath, message: String, category: Category) {
        self.path = path
        self.message = message
        self.category = category
    }

    public var description: String { "\(path): \(escapingControlCharacters(message))" }
}

