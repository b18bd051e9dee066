/// A path relative to the anchor directory, as its components. The empty path is the anchor itself.
public struct TreePath: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var components: [String]

    public init(_ components: [String] = []) { self.components = components }

    public static let anchor = TreePath()

    public var isAnchor: Bool { components.isEmpty }
    public var name: String { components.last ?? "." }
    public var parent: TreePath { TreePath(Array(components.dropLast())) }
    public var depth: Int { components.count }

    public func appending(_ name: String) -> TreePath { TreePath(components + [name]) }

    /// Every proper ancestor, from the anchor down (the anchor itself excluded).
    public var ancestors: [TreePath] {
        components.indices.dropLast().map { TreePath(Array(components[...$0])) }
    }

    public func isDescendant(of other: TreePath) -> Bool {
        components.count > other.components.count && Array(components.prefix(other.components.count)) == other.components
    }

    public var description: String { components.isEmpty ? "." : components.joined(separator: "/") }

    /// Lexicographic by component, so a parent sorts right before its children.
    public static func < (a: TreePath, b: TreePath) -> Bool {
        a.components.lexicographicallyPrecedes(b.components)
    }

    /// Why `name` cannot be one bpffs path component, or nil when it can.
    public static func problem(withComponent name: String) -> String? {
        if name.isEmpty { return "empty path segment" }
        if name == ".." { return "'..' is not allowed: paths stay beneath the anchor" }
        if name == "." { return "'.' is not allowed as a path segment" }
        if name.contains("/") { return "'\(name)' contains '/': one name per entry, nest with directory entries" }
        if name.contains(".") { return "'\(name)' contains '.', which bpffs refuses in names" }
        if name == Reserved.ledgerName || name.hasPrefix(Reserved.temporaryPrefix) {
            return "'\(name)' is reserved for bpftree's own use (the ledger '\(Reserved.ledgerName)' and temporary '\(Reserved.temporaryPrefix)*' pins)"
        }
        if name.utf8.count > 255 { return "name is \(name.utf8.count) bytes long; the limit is 255" }
        if name.utf8.contains(0) { return "name contains a NUL byte" }
        return nil
    }

    /// Parses an anchor-relative path such as `jobs/A`; returns the path or the reasons it is invalid.
    public static func parse(relative text: String) -> Result<TreePath, PathError> {
        if text.hasPrefix("/") { return .failure(PathError(message: "absolute path '\(text)': paths are relative to the anchor")) }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        for part in parts {
            if let problem = problem(withComponent: part) { return .failure(PathError(message: "in '\(text)': \(problem)")) }
        }
        return .success(TreePath(parts))
    }

    public struct PathError: Error, Sendable { public var message: String }
}
