/// The ordered actions that converge the live tree on the desired one, or the problems that forbid it.
public struct Plan: Sendable {
    /// In path order: a parent before its children.
    public var actions: [Action]
    /// Declarations the live tree cannot be converged to without deleting or replacing something.
    public var problems: [PlanProblem]
    /// Things worth telling that need no action (e.g. a symlink left alone).
    public var notices: [PlanNotice]

    public init(actions: [Action] = [], problems: [PlanProblem] = [], notices: [PlanNotice] = []) {
        self.actions = actions
        self.problems = problems
        self.notices = notices
    }

    public var hasChanges: Bool { !actions.isEmpty }
    public var creates: Int { actions.count(where: \.isCreate) }
    public var updates: Int { actions.count - creates }
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
        (origin.map { "\($0.location): \($0.field): " } ?? "") + "\(path): \(message)"
    }
}

/// Something observed that needs no action.
public struct PlanNotice: Hashable, Sendable, CustomStringConvertible {
    public var path: TreePath
    public var message: String
    public init(path: TreePath, message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { "\(path): \(message)" }
}
