/// An anchor-relative glob: `*` and `?` match within one name, `**` matches any number of names
/// (including none), e.g. `jobs/*`, `jobs/**/stats`.
public struct PathPattern: Hashable, Sendable, CustomStringConvertible {
    public let text: String
    /// The segments, as bytes.
    private let parts: [[UInt8]]
    private let hasDoubleStar: Bool
    /// The pattern as a path when it has no wildcard at all.
    private let literal: String?

    /// Parses a pattern; fails on absolute paths, `..`, `.` and empty segments.
    public static func parse(_ text: String) -> Result<PathPattern, TreePath.PathError> {
        if text.hasPrefix("/") {
            return .failure(.init(message: "absolute pattern '\(text)': patterns are relative to the anchor"))
        }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        for part in parts {
            if part.isEmpty { return .failure(.init(message: "in '\(text)': empty path segment")) }
            if part == "." || part == ".." { return .failure(.init(message: "in '\(text)': '\(part)' is not allowed")) }
            if part.contains("**") && part != "**" {
                return .failure(.init(message: "in '\(text)': '**' must be a whole path segment"))
            }
        }
        return .success(PathPattern(text: text, parts: parts))
    }

    /// A pattern written in bpftree's own source, known to be valid.
    init(trusted text: String) {
        self.init(text: text, parts: text.split(separator: "/").map(String.init))
    }

    private init(text: String, parts: [String]) {
        self.text = text
        self.parts = parts.map { Array($0.utf8) }
        hasDoubleStar = parts.contains("**")
        literal = text.contains(where: { $0 == "*" || $0 == "?" }) ? nil : parts.joined(separator: "/")
    }

    public static func == (a: PathPattern, b: PathPattern) -> Bool { a.text == b.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }

    public var description: String { text }

    /// Segments without wildcards: the more, the more specific the pattern.
    public var literalSegments: Int { parts.count { !$0.contains(UInt8(ascii: "*")) && !$0.contains(UInt8(ascii: "?")) } }

    public func matches(_ path: TreePath) -> Bool { Self.match(parts[...], Self.names(path)[...]) }

    /// Whether the pattern matches `path` or one of its ancestors (the pattern covers a subtree).
    public func covers(_ path: TreePath) -> Bool { coveringDepth(path) != nil }

    /// Depth of the shortest prefix of `path` (path itself included) that the pattern matches; only `**`
    /// matches the empty prefix, so only it covers the anchor itself.
    public func coveringDepth(_ path: TreePath) -> Int? {
        if let literal { return TreePath.isPrefix(literal, of: path.text) ? parts.count : nil }
        if !hasDoubleStar {
            // Without `**` only the prefix with as many names as the pattern can match.
            guard path.depth >= parts.count else { return nil }
            return Self.match(parts[...], Self.names(path.prefix(parts.count))[...]) ? parts.count : nil
        }
        let names = Self.names(path)
        return (0...names.count).first { Self.match(parts[...], names.prefix($0)) }
    }

    private static func names(_ path: TreePath) -> [ArraySlice<UInt8>] {
        path.isAnchor ? [] : Array(path.text.utf8).split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
    }

    private static func match(_ pattern: ArraySlice<[UInt8]>, _ names: ArraySlice<ArraySlice<UInt8>>) -> Bool {
        guard let head = pattern.first else { return names.isEmpty }
        if head.count == 2 && head[0] == UInt8(ascii: "*") && head[1] == UInt8(ascii: "*") {
            let rest = pattern.dropFirst()
            return (0...names.count).contains { match(rest, names.dropFirst($0)) }
        }
        guard let name = names.first, matchName(head[...], name) else { return false }
        return match(pattern.dropFirst(), names.dropFirst())
    }

    private static func matchName(_ pattern: ArraySlice<UInt8>, _ name: ArraySlice<UInt8>) -> Bool {
        guard let head = pattern.first else { return name.isEmpty }
        switch head {
        case UInt8(ascii: "*"):
            return (0...name.count).contains { matchName(pattern.dropFirst(), name.dropFirst($0)) }
        case UInt8(ascii: "?"):
            return !name.isEmpty && matchName(pattern.dropFirst(), name.dropFirst())
        default:
            return name.first == head && matchName(pattern.dropFirst(), name.dropFirst())
        }
    }
}
