import BPFTreeCore
import BPFTreeKernel
import BPFTreeYAML

/// What the reconcile service keeps between passes, so that a cgroup event costs what changed: the
/// inputs of the last full pass, the cgroups there are (kept current by cgroup passes), and the declared
/// tree in parts (`DesiredParts`), and what its fixed part's programs and links were resolved to.
struct ServiceKnowledge {
    let decoded: ManifestLoader.Decoded
    /// The cgroups of each source by their path below it.
    var cgroups: [CgroupSource: [String: Cgroup]]
    var parts: DesiredParts
    /// What loading the fixed part's programs gave and what its links' targets are.
    let fixedTargets: ResolvedTargets
    /// The directory of each template source.
    var directories: [CgroupSource: String]
    /// What the maps of the whole declared tree need in each policy scope (`PolicyCheck.scopeMemory`).
    var scopeMemory: [SourceLocation: UInt64] = [:]
    /// What each instance adds to `scopeMemory`, taken off when it goes.
    private var instanceMemory: [TreePath: [SourceLocation: UInt64]] = [:]
    /// The inputs digest (files, settings, cgroups) of the full pass it was made after; emptied once a
    /// cgroup pass changed it, so that the next full pass makes it again from its own scan.
    var key: [UInt8] = []
    /// Why a cgroup event needs a full pass with these inputs; nil when a cgroup pass can do.
    var fullPassesOnly: String?
    /// The template manifests, compiled once rather than at every event.
    private let compiled: [CompiledTemplate]

    /// What a successful full pass with `decoded` and `scan` leaves; nil when the fixed declarations do
    /// not resolve (the full pass that follows says why).
    init?(decoded: ManifestLoader.Decoded, scan: CgroupScan, delegation: BPFDelegation?) {
        let (rendered, _) = DesiredParts.render(decoded.manifests, cgroups: scan.cgroups)
        guard case .success(let parts) = rendered else { return nil }
        var targets = ResolvedTargets()
        guard PinResolver.resolve(parts.fixed, into: &targets, delegation: delegation).isEmpty else { return nil }
        fixedTargets = targets
        var directories: [CgroupSource: String] = [:]
        for source in Set(decoded.cgroupSources) {
            guard let directory = try? CgroupScanner.directory(of: source) else { return nil }
            directories[source] = directory
        }
        self.decoded = decoded
        compiled = decoded.manifests.compactMap(CompiledTemplate.init)
        cgroups = scan.cgroups.mapValues { Dictionary($0.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first }) }
        self.parts = parts
        self.directories = directories
        if parts.referencesAcrossInstances {
            fullPassesOnly = "a template entry uses a path of another cgroup's subtree"
        }
        scopeMemory = PolicyCheck.scopeMemory(parts.fixed.entries, decoded.policies, possibleCPUs: Machine.possibleCPUs)
        for (root, entries) in parts.instances { addMemory(root, entries) }
    }

    /// Adds an instance's entries to the declared tree (`parts` and `scopeMemory`).
    mutating func add(_ root: TreePath, _ entries: [DesiredEntry]) {
        parts.add(root, entries)
        addMemory(root, entries)
    }

    /// Removes the instance at `root` from the declared tree.
    mutating func remove(_ root: TreePath) {
        for (scope, bytes) in instanceMemory.removeValue(forKey: root) ?? [:] {
            scopeMemory[scope] = (scopeMemory[scope] ?? 0) - min(bytes, scopeMemory[scope] ?? 0)
        }
        parts.remove(root)
    }

    private mutating func addMemory(_ root: TreePath, _ entries: [DesiredEntry]) {
        let memory = PolicyCheck.scopeMemory(entries, decoded.policies, possibleCPUs: Machine.possibleCPUs)
        guard !memory.isEmpty else { return }
        scopeMemory.merge(memory) { $0 &+ $1 }
        instanceMemory[root, default: [:]].merge(memory) { $0 &+ $1 }
    }

    /// What the maps of the whole tree other than `view`'s need in each scope.
    func scopeMemory(besides view: DesiredTree) -> [SourceLocation: UInt64] {
        var baseline = scopeMemory
        for (scope, bytes) in PolicyCheck.scopeMemory(view.entries, decoded.policies, possibleCPUs: Machine.possibleCPUs) {
            baseline[scope] = (baseline[scope] ?? 0) - min(bytes, baseline[scope] ?? 0)
        }
        return baseline
    }

    /// The templates rendered for cgroups of `source`.
    func templates(of source: CgroupSource) -> [CompiledTemplate] {
        compiled.filter { $0.template.source == source }
    }
}
