/// Computes the plan: a pure function of the desired and the live tree.
public enum Planner {
    public static func plan(desired: DesiredTree, live: LiveTree) -> Plan {
        var plan = Plan()
        var blocked: Set<TreePath> = []
        var created: Set<TreePath> = []
        var declared: Set<TreePath> = []

        for entry in desired.entries {
            declared.insert(entry.path)
            if entry.path.ancestors.contains(where: blocked.contains) {
                blocked.insert(entry.path)
                continue
            }
            let current = created.contains(entry.path.parent) && !entry.path.isAnchor ? nil : live[entry.path]
            guard let current else {
                switch entry.kind {
                case .directory:
                    plan.actions.append(Action(path: entry.path, change: .createDirectory(
                        mode: entry.mode ?? Defaults.directoryMode, owner: entry.owner), origin: entry.origin))
                    created.insert(entry.path)
                case .map(let spec):
                    plan.actions.append(Action(path: entry.path, change: .createMap(
                        spec, mode: entry.mode ?? Defaults.pinMode, owner: entry.owner), origin: entry.origin))
                }
                continue
            }
            switch (entry.kind, current.kind) {
            case (.directory, .directory):
                break
            case (.map(let spec), .map(let info)):
                let differences = spec.differences(from: info)
                if !differences.isEmpty {
                    plan.problems.append(PlanProblem(
                        path: entry.path,
                        message: "the pinned map has a different shape (\(differences.map(\.description).joined(separator: "; "))); bpftree does not replace maps yet: remove the pin or change the manifest",
                        origin: entry.origin, differences: differences))
                    blocked.insert(entry.path)
                    continue
                }
            case (let kind, .symlink):
                plan.problems.append(PlanProblem(
                    path: entry.path,
                    message: "is a symlink where a \(kindName(kind)) is declared; bpftree never follows symlinks: remove it or change the manifest",
                    origin: entry.origin))
                blocked.insert(entry.path)
                continue
            case (let kind, let other):
                plan.problems.append(PlanProblem(
                    path: entry.path,
                    message: "is a \(other.name) where a \(kindName(kind)) is declared",
                    origin: entry.origin))
                blocked.insert(entry.path)
                continue
            }
            plan.actions += attributeActions(entry, current)
        }

        for (path, entry) in live.entries where entry.kind == .symlink && !declared.contains(path) {
            plan.notices.append(PlanNotice(path: path, message: "symlink left alone, never followed"))
        }
        plan.notices.sort { $0.path < $1.path }
        return plan
    }

    private static func kindName(_ kind: DesiredEntry.Kind) -> String {
        switch kind {
        case .directory: "directory"
        case .map: "map"
        }
    }

    /// Mode and owner changes for an entry that exists with the right kind.
    private static func attributeActions(_ entry: DesiredEntry, _ current: LiveEntry) -> [Action] {
        var actions: [Action] = []
        let liveMode = current.mode & 0o7777
        if let mode = entry.mode, mode != liveMode {
            actions.append(Action(path: entry.path, change: .setMode(from: liveMode, to: mode), origin: entry.origin))
        }
        let wanted = entry.owner
        if (wanted.uid.map { $0 != current.uid } ?? false) || (wanted.gid.map { $0 != current.gid } ?? false) {
            let from = Owner(uid: current.uid, gid: current.gid)
            let to = Owner(uid: wanted.uid ?? current.uid, gid: wanted.gid ?? current.gid)
            actions.append(Action(path: entry.path, change: .setOwner(from: from, to: to), origin: entry.origin))
        }
        return actions
    }
}
