/// What only the kernel can tell that planning needs beyond the live tree, gathered by the kernel layer
/// before the planner runs (so that the planner is the plan's only author): how many entries the maps that
/// differ from their declaration hold (a migration must fit), and which loaded programs use them (they
/// keep using a map whose pin is replaced).
public struct KernelFacts: Sendable {
    /// Entries held by each differing map that would be migrated, by path (hash-like maps only: an array
    /// is always full).
    public var entryCounts: [TreePath: UInt64] = [:]
    /// Map id -> the loaded programs that use it.
    public var mapUsers: [UInt32: [LoadedProgram]] = [:]

    public init(entryCounts: [TreePath: UInt64] = [:], mapUsers: [UInt32: [LoadedProgram]] = [:]) {
        self.entryCounts = entryCounts
        self.mapUsers = mapUsers
    }
}

/// A loaded BPF program, as the kernel lists it.
public struct LoadedProgram: Hashable, Sendable, CustomStringConvertible {
    public var id: UInt32
    public var name: String

    public init(id: UInt32, name: String) {
        self.id = id
        self.name = name
    }

    public var description: String { name.isEmpty ? "id \(id)" : "id \(id) (\(name))" }
}

extension DesiredTree {
    /// The declared maps whose pinned map has another shape: the ones a plan may replace or migrate, and
    /// so the ones `KernelFacts` are gathered for; `migrates`: what `policies` choose for it is migrate.
    public func differingMaps(in live: LiveTree, _ policies: PolicySet)
        -> [(path: TreePath, spec: MapSpec, live: LiveMapInfo, migrates: Bool)] {
        entries.compactMap { entry in
            guard case .map(let spec) = entry.kind, case .map(let info)? = live[entry.path]?.kind,
                  !spec.differences(from: info).isEmpty else { return nil }
            return (entry.path, spec, info, entry.incompatibleChoice(in: policies.scope(for: entry.path)) == .migrate)
        }
    }
}

extension DesiredEntry {
    /// What to do when the pinned object differs: the entry's own choice, else its policy scope's, else fail.
    public func incompatibleChoice(in scope: PolicyScope?) -> IncompatibleAction {
        onIncompatible ?? scope?.onIncompatible ?? .fail
    }
}
