import BPFTreeYAML

/// What to do when a declared map differs in shape from the one bpftree pinned earlier.
public enum IncompatibleAction: String, CaseIterable, Sendable, Hashable {
    /// Refuse, naming the fields that differ.
    case fail
    /// Pin a new empty map in its place (readers never see the path missing).
    case replace
    /// Like replace, copying every entry of the old map first.
    case migrate
}

/// Whether entries bpftree created and no manifest declares any more are deleted.
public enum PruneMode: String, CaseIterable, Sendable, Hashable {
    case none
    case owned
}

/// An inclusive range of numeric ids, e.g. uids `1000-1999`.
public struct IDRange: Hashable, Sendable, CustomStringConvertible {
    public var lower: UInt32
    public var upper: UInt32
    public init(_ lower: UInt32, _ upper: UInt32) {
        self.lower = lower
        self.upper = upper
    }
    public func contains(_ id: UInt32) -> Bool { lower <= id && id <= upper }
    public var description: String { lower == upper ? String(lower) : "\(lower)-\(upper)" }
}

/// The rules for one set of anchor-relative subtrees.
public struct PolicyScope: Sendable, Hashable {
    /// The policy (`metadata.name`) and where the scope is written.
    public var policy: String
    public var location: SourceLocation
    /// Subtrees the scope governs: a path is governed when a pattern matches it or an ancestor.
    public var paths: [PathPattern]
    /// nil: every type bpftree can create.
    public var mapTypes: Set<MapType>?
    /// nil: any program type; likewise any attach type of a link (an iterator's is `trace_iter`).
    public var programTypes: Set<ProgramType>?
    public var attachTypes: Set<AttachType>?
    /// The cgroups a link may attach to (a cgroup link's or cgroup iterator's `cgroup`), as patterns of
    /// the path as manifests write it (relative to the cgroup v2 mount, or absolute); nil: any cgroup.
    public var cgroups: [CgroupPattern]?
    public var maxEntries: UInt32?
    /// Estimated kernel memory (`MapSpec.estimatedMemory`) per map and for all maps of the scope.
    public var maxMapMemory: UInt64?
    public var maxScopeMemory: UInt64?
    /// Ceiling on permission bits: a mode may not have a bit the ceiling lacks.
    public var maxMode: UInt32?
    /// nil: any owner.
    public var uids: [IDRange]?
    public var gids: [IDRange]?
    public var onIncompatible: IncompatibleAction
    /// Values a manifest entry may choose for itself with `onIncompatible:`.
    public var allowOnIncompatible: Set<IncompatibleAction>
    public var prune: PruneMode
    /// Never deleted or replaced without `--force`.
    public var protect: [PathPattern]
    /// Never shown, touched or pruned.
    public var ignore: [PathPattern]

    public init(policy: String, location: SourceLocation, paths: [PathPattern], mapTypes: Set<MapType>? = nil,
                maxEntries: UInt32? = nil, maxMapMemory: UInt64? = nil, maxScopeMemory: UInt64? = nil,
                maxMode: UInt32? = nil, uids: [IDRange]? = nil, gids: [IDRange]? = nil,
                onIncompatible: IncompatibleAction = .fail, allowOnIncompatible: Set<IncompatibleAction> = [],
                prune: PruneMode = .none, protect: [PathPattern] = [], ignore: [PathPattern] = []) {
        self.policy = policy
        self.location = location
        self.paths = paths
        self.mapTypes = mapTypes
        self.maxEntries = maxEntries
        self.maxMapMemory = maxMapMemory
        self.maxScopeMemory = maxScopeMemory
        self.maxMode = maxMode
        self.uids = uids
        self.gids = gids
        self.onIncompatible = onIncompatible
        self.allowOnIncompatible = allowOnIncompatible
        self.prune = prune
        self.protect = protect
        self.ignore = ignore
    }

    /// How the scope is named in messages: `policy 'platform' scope jobs/* (policies/platform.yaml:8:7)`.
    public var reference: String {
        "policy '\(policy)' scope \(paths.map(\.text).joined(separator: ", ")) (\(location))"
    }

    /// How specific the scope is for `path`: deeper matches win, then more literal segments.
    func specificity(for path: TreePath) -> (depth: Int, literals: Int)? {
        paths.compactMap { pattern in pattern.coveringDepth(path).map { ($0, pattern.literalSegments) } }
            .max { ($0.0, $0.1) < ($1.0, $1.1) }
    }

    /// Whether a `protect` pattern matches `path` or one of its ancestors.
    public func protects(_ path: TreePath) -> Bool { protect.contains { $0.covers(path) } }
}

/// A decoded `kind: Policy` document.
public struct Policy: Sendable {
    public var name: String
    public var location: SourceLocation
    public var scopes: [PolicyScope]
    public init(name: String, location: SourceLocation, scopes: [PolicyScope]) {
        self.name = name
        self.location = location
        self.scopes = scopes
    }
}

/// Every scope of a run's policies; answers which scope governs a path.
public struct PolicySet: Sendable {
    public private(set) var scopes: [PolicyScope] {
        didSet { ignorePatterns = scopes.flatMap(\.ignore) }
    }
    /// Every scope's `ignore` patterns, asked about every path of a pass.
    private var ignorePatterns: [PathPattern]
    /// Ignored everywhere: the kernel's own entries at the root of every bpffs mount.
    public static let defaultIgnore = ["maps.debug", "progs.debug"]

    public init(scopes: [PolicyScope]) {
        self.scopes = scopes
        ignorePatterns = scopes.flatMap(\.ignore)
    }

    /// What applies when no `--policy` is given: the whole anchor, any map, no deletion, refuse
    /// incompatible maps. Equal to `policies/default.yaml`.
    public static let builtin = PolicySet(scopes: [PolicyScope(
        policy: "builtin-default", location: SourceLocation(file: "<builtin>", line: 1, column: 1),
        paths: [pattern("**")], ignore: defaultIgnore.map(pattern))])

    /// The most specific scope governing `path`, or nil when the path is outside every scope.
    public func scope(for path: TreePath) -> PolicyScope? {
        var best: (scope: PolicyScope, rank: (Int, Int))?
        for scope in scopes {
            guard let rank = scope.specificity(for: path) else { continue }
            if best.map({ rank > $0.rank }) ?? true { best = (scope, rank) }
        }
        return best?.scope
    }

    /// The first scope that says `path` is never shown, touched or pruned.
    public func ignoringScope(for path: TreePath) -> PolicyScope? {
        scopes.first { scope in scope.ignore.contains { $0.covers(path) } }
    }

    public func isIgnored(_ path: TreePath) -> Bool { ignorePatterns.contains { $0.covers(path) } }

    /// Merges decoded policies; duplicate policy names and a pattern given by two scopes are conflicts.
    public static func build(_ policies: [Policy]) -> Result<PolicySet, ValidationFailure> {
        var diagnostics: [Diagnostic] = []
        var names: [String: Policy] = [:]
        var patterns: [String: PolicyScope] = [:]
        for policy in policies {
            if let other = names[policy.name] {
                diagnostics.append(Diagnostic("policy name '\(policy.name)' is also used at \(other.location)",
                                              at: policy.location, field: "metadata.name"))
            }
            names[policy.name] = policy
            for scope in policy.scopes {
                for pattern in scope.paths {
                    if let other = patterns[pattern.text] {
                        diagnostics.append(Diagnostic(
                            "conflicting policies: scope path '\(pattern)' is also governed by \(other.reference); give each subtree one scope",
                            at: scope.location, field: "spec.scopes.paths"))
                    } else {
                        patterns[pattern.text] = scope
                    }
                }
            }
        }
        guard diagnostics.isEmpty else { return .failure(ValidationFailure(diagnostics)) }
        return .success(PolicySet(scopes: policies.flatMap(\.scopes)))
    }
}

private func pattern(_ text: String) -> PathPattern { PathPattern(trusted: text) }

/// A pattern of cgroup paths (`PathPattern` rules: `*` within a name, `**` for any depth), relative to the
/// cgroup v2 mount or absolute; it matches only paths written the same way.
public struct CgroupPattern: Sendable, Hashable, CustomStringConvertible {
    public var isAbsolute: Bool
    public var pattern: PathPattern

    public static func parse(_ text: String) -> Result<CgroupPattern, TreePath.PathError> {
        let isAbsolute = text.hasPrefix("/")
        let relative = isAbsolute ? String(text.drop { $0 == "/" }) : text
        return PathPattern.parse(relative).map { CgroupPattern(isAbsolute: isAbsolute, pattern: $0) }
    }

    /// Whether the cgroup `path` (as a manifest writes it) is one the pattern allows.
    public func matches(_ path: String) -> Bool {
        guard path.hasPrefix("/") == isAbsolute else { return false }
        let relative = isAbsolute ? String(path.drop { $0 == "/" }) : path
        let trimmed = relative.hasSuffix("/") ? String(relative.dropLast()) : relative
        return pattern.matches(TreePath(joined: trimmed))
    }

    public var description: String { (isAbsolute ? "/" : "") + pattern.text }
}
