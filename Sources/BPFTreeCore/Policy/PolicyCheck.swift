import BPFTreeYAML

/// Checks every declaration against the policies before anything is changed: each violation names the
/// manifest's location and field and the policy rule that refuses it.
public enum PolicyCheck {
    /// `machineMemory`: a map estimated above it can never be made (the kernel refuses it, or takes the
    /// machine's memory trying).
    /// `scopeMemory`: what maps not in `desired` already need in each scope (by the scope's location),
    /// when `desired` is a view of a larger tree. `targets`: what loading the programs gave (their type).
    public static func violations(_ desired: DesiredTree, _ policies: PolicySet, possibleCPUs: Int,
                                  machineMemory: UInt64 = .max, scopeMemory baseline: [SourceLocation: UInt64] = [:],
                                  targets: ResolvedTargets = ResolvedTargets()) -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        var scopeMemory = baseline
        for entry in desired.entries {
            guard let origin = entry.origin else { continue }
            func refuse(_ what: String, _ scope: PolicyScope?, rule: String, field: String = "") {
                let by = scope.map { "; refused by \($0.reference): \(rule)" } ?? "; \(rule)"
                diagnostics.append(Diagnostic("\(entry.path): \(what)\(by)", at: origin.location,
                                              field: field.isEmpty ? origin.field : "\(origin.field).\(field)"))
            }
            if let scope = policies.ignoringScope(for: entry.path) {
                refuse("the path is ignored", scope, rule: "ignore")
                continue
            }
            guard let scope = policies.scope(for: entry.path) else {
                let scopes = policies.scopes.flatMap { $0.paths.map(\.text) }
                refuse("outside every policy scope", nil,
                       rule: "the policies govern only \(scopes.joined(separator: ", ")); add a scope or move the entry")
                continue
            }
            if let mode = entry.mode, let ceiling = scope.maxMode, mode & ~ceiling != 0 {
                refuse("mode \(formatMode(mode)) has bits above the ceiling", scope, rule: "maxMode \(formatMode(ceiling))", field: "mode")
            }
            if let uid = entry.owner.uid, let allowed = scope.uids, !allowed.contains(where: { $0.contains(uid) }) {
                refuse("uid \(uid) is not allowed", scope, rule: "uids \(allowed.map(\.description).joined(separator: ", "))", field: "uid")
            }
            if let gid = entry.owner.gid, let allowed = scope.gids, !allowed.contains(where: { $0.contains(gid) }) {
                refuse("gid \(gid) is not allowed", scope, rule: "gids \(allowed.map(\.description).joined(separator: ", "))", field: "gid")
            }
            if let chosen = entry.onIncompatible, chosen != scope.onIncompatible, !scope.allowOnIncompatible.contains(chosen) {
                let allowed = [scope.onIncompatible] + scope.allowOnIncompatible.sorted { $0.rawValue < $1.rawValue }
                refuse("onIncompatible '\(chosen.rawValue)' is not allowed", scope,
                       rule: "onIncompatible \(scope.onIncompatible.rawValue), allowOnIncompatible [\(Set(allowed).map(\.rawValue).sorted().joined(separator: ", "))]",
                       field: "onIncompatible")
            }
            switch entry.kind {
            case .program(let spec):
                let type = targets.program(spec, at: entry.path).type
                if let types = scope.programTypes, let type, !types.contains(type) {
                    refuse("program type \(type.name) is not allowed", scope,
                           rule: "programTypes [\(types.sorted().map(\.name).joined(separator: ", "))]", field: "program.type")
                }
                continue
            case .link(let spec):
                let attach = spec.attachType
                if let types = scope.attachTypes, !types.contains(attach) {
                    refuse("attach type \(attach.name) is not allowed", scope,
                           rule: "attachTypes [\(types.map(\.name).sorted().joined(separator: ", "))]", field: "link")
                }
                if let allowed = scope.cgroups, let cgroup = spec.cgroup, !allowed.contains(where: { $0.matches(cgroup) }) {
                    refuse("cgroup '\(cgroup)' is not one this scope may attach to", scope,
                           rule: "cgroups [\(allowed.map(\.description).joined(separator: ", "))]", field: "link.cgroup")
                }
                continue
            case .directory, .map:
                break
            }
            guard case .map(let spec) = entry.kind else { continue }
            if let types = scope.mapTypes, !types.contains(spec.type) {
                refuse("map type \(spec.type.rawValue) is not allowed", scope,
                       rule: "mapTypes [\(types.map(\.rawValue).sorted().joined(separator: ", "))]", field: "map.type")
            }
            if let limit = scope.maxEntries, spec.maxEntries > limit {
                refuse("maxEntries \(spec.maxEntries) is above the limit", scope, rule: "maxEntries \(limit)", field: "map.maxEntries")
            }
            let memory = spec.estimatedMemory(possibleCPUs: possibleCPUs)
            if memory > machineMemory {
                refuse("estimated memory \(formatBytes(memory)) is more than this machine has (\(formatBytes(machineMemory)))", nil,
                       rule: "lower maxEntries or valueSize", field: "map")
            }
            if let limit = scope.maxMapMemory, memory > limit {
                refuse("estimated memory \(formatBytes(memory)) is above the per-map limit", scope,
                       rule: "maxMapMemory \(formatBytes(limit))", field: "map")
            }
            let key = scope.location
            let before = scopeMemory[key, default: 0]
            scopeMemory[key] = before + memory
            if let limit = scope.maxScopeMemory, before <= limit, before + memory > limit {
                refuse("the maps of the scope need an estimated \(formatBytes(before + memory)) with this one, above the limit",
                       scope, rule: "maxScopeMemory \(formatBytes(limit))", field: "map")
            }
        }
        return diagnostics
    }

}

extension PolicyCheck {
    /// The estimated memory of the maps among `entries`, added up by the policy scope that governs each
    /// (by the scope's location), as `violations` adds it up for `maxScopeMemory`; nothing when no scope
    /// sets that limit.
    public static func scopeMemory(_ entries: some Sequence<DesiredEntry>, _ policies: PolicySet,
                                   possibleCPUs: Int) -> [SourceLocation: UInt64] {
        var memory: [SourceLocation: UInt64] = [:]
        guard policies.scopes.contains(where: { $0.maxScopeMemory != nil }) else { return memory }
        for entry in entries where entry.origin != nil {
            guard case .map(let spec) = entry.kind, let scope = policies.scope(for: entry.path),
                  policies.ignoringScope(for: entry.path) == nil else { continue }
            memory[scope.location, default: 0] += spec.estimatedMemory(possibleCPUs: possibleCPUs)
        }
        return memory
    }
}

/// Bytes with a binary unit, e.g. `64 KiB`, `1.5 MiB`.
public func formatBytes(_ bytes: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes), unit = 0
    while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
    if unit == 0 { return "\(bytes) B" }
    let rounded = (value * 10).rounded() / 10
    return rounded == rounded.rounded() ? "\(Int(rounded)) \(units[unit])" : "\(rounded) \(units[unit])"
}
