/// Computes the plan: a pure function of the desired tree, the live tree, the ownership ledger and the
/// policies.
///
/// Ownership: an entry is bpftree's when the ledger has a record for its path that describes it (same
/// kind and inode). Records an interrupted run left unsettled are settled first from what the tree shows:
/// a temporary pin is removed, an entry being created is claimed if it exists, an entry being replaced
/// belongs to bpftree under either its old or its new inode.
public enum Planner {
    /// `facts`: what the kernel says about the maps that differ (`KernelFacts`); `targets`: what loading the
    /// declared programs gave and what their links' targets are (`ResolvedTargets`).
    public static func plan(desired: DesiredTree, live: LiveTree, ledger: Ledger = Ledger(),
                            policies: PolicySet = .builtin, force: Bool = false, facts: KernelFacts = KernelFacts(),
                            targets: ResolvedTargets = ResolvedTargets()) -> Plan {
        var planning = Planning(desired: desired, live: live, policies: policies, force: force, facts: facts, targets: targets)
        planning.settle(ledger)
        planning.converge()
        planning.noteProgramsOfReplacedMaps()
        planning.prune()
        planning.listUnmanaged()
        planning.noteManifestsOutsideTheRun()
        for rejected in ledger.rejected {
            planning.plan.notices.append(PlanNotice(
                path: TreePath([Reserved.ledgerName]),
                message: "record '\(rejected.key)' ignored (\(rejected.reason)): bpftree never writes such a record, so nothing is changed on its word",
                category: .ledger))
        }
        planning.plan.actions = planning.ledgerActions.sorted { $0.path < $1.path } + planning.plan.actions
        return planning.plan
    }
}

/// The state of one planning pass.
private struct Planning {
    let desired: DesiredTree
    let live: LiveTree
    let policies: PolicySet
    let force: Bool
    let facts: KernelFacts
    let targets: ResolvedTargets
    /// Live paths under each live directory (built when first needed).
    lazy var children: [TreePath: [TreePath]] = {
        var children: [TreePath: [TreePath]] = [:]
        for path in live.entries.keys where !path.isAnchor { children[path.parent, default: []].append(path) }
        return children
    }()

    var plan = Plan()
    /// Ledger repairs, which go first.
    var ledgerActions: [Action] = []
    /// Entries bpftree owns once the ledger is settled. A record in state owned is checked against the
    /// live entry where the path is visited anyway (`converge` for declared paths, `prune` for the rest).
    var owned = Owned()
    /// How many records `owned` held before any was found not to describe its path.
    var ownedAfterSettle = 0
    /// Temporary pins being removed.
    var temporaries: Set<TreePath> = []
    /// Other manifest sets' records (`Ledger.others`), and the run's owner (`Ledger.owner`).
    var others: [TreePath: LedgerRecord] = [:]
    var runOwner: String?
    /// Counted by `converge`, so that a converged tree skips the searches of `prune` and `listUnmanaged`:
    /// declared entries that are owned, and declared entries that exist.
    var declaredOwned = 0
    var declaredLive = 0
    /// Paths planned to get a new object in this pass (maps created or replaced, programs loaded): what
    /// uses them (programs, links) must be made again too.
    var changed: Set<TreePath> = []
    /// Ids of the programs that stay as they are, for the links that hold them.
    var programIDs: [TreePath: UInt32] = [:]
    var blocked: Set<TreePath> = []

    init(desired: DesiredTree, live: LiveTree, policies: PolicySet, force: Bool, facts: KernelFacts, targets: ResolvedTargets) {
        self.desired = desired
        self.live = live
        self.policies = policies
        self.force = force
        self.facts = facts
        self.targets = targets
    }

    // MARK: Ledger

    mutating func settle(_ ledger: Ledger) {
        owned.ledger = ledger.records
        (others, runOwner) = (ledger.others, ledger.owner)
        defer { ownedAfterSettle = owned.count }
        for record in ledger.records.values {
            let path = record.path
            guard !policies.isIgnored(path) else {
                owned.disown(record)
                continue
            }
            if record.state == .owned { continue }
            let current = live[path]
            func ledgerAction(_ change: Action.Change) {
                ledgerActions.append(Action(path: path, change: change, manifest: record.manifest))
            }
            switch record.state {
            case .temporary:
                if !Reserved.isTemporaryName(path.name) {
                    // Only names of the form bpftree makes are ever temporary: no record claims a real one.
                    ledgerAction(.forgetRecord(why: "a temporary record, but '\(path.name)' is not a temporary name bpftree makes"))
                } else if let current, current.kind.ledgerKind == record.kind {
                    ledgerAction(.removeTemporary)
                    temporaries.insert(path)
                } else {
                    ledgerAction(.forgetRecord(why: current == nil ? "the temporary pin is already gone"
                                               : "what is there now is a \(current?.kind.name ?? ""), not the \(record.kind.name) bpftree made"))
                }
            case .creating, .replacing:
                if let current, record.describes(current) {
                    let why = record.state == .creating ? "created by an interrupted run" : "settled after an interrupted replace"
                    ledgerAction(.recordOwnership(record.kind, inode: current.inode, why: why))
                    var settled = record
                    (settled.state, settled.inode, settled.pendingInode) = (.owned, current.inode, 0)
                    owned.settle(settled)
                } else if current != nil || !desired.declares(path) {
                    ledgerAction(.forgetRecord(why: current == nil ? "an interrupted run did not create it"
                                               : "what is there now was not made by bpftree"))
                }
            case .owned:
                break
            }
        }
    }

    /// Whether the owned `record` describes what is at its path now; if not, it is forgotten.
    mutating func stillOwned(_ record: LedgerRecord, _ current: LiveEntry?, declared: Bool) -> Bool {
        if let current, record.describes(current) { return true }
        owned.disown(record)
        let action: (String) -> Action = { Action(path: record.path, change: .forgetRecord(why: $0), manifest: record.manifest) }
        if let current {
            ledgerActions.append(action("a \(current.kind.name) bpftree did not create is there now (inode \(current.inode), recorded \(record.inode))"))
        } else if !declared {
            // A declared path that is gone is simply created again, which rewrites its record.
            ledgerActions.append(action("gone from the tree"))
        }
        return false
    }

    // MARK: Declarations

    mutating func converge() {
        var created: Set<TreePath> = []
        // Programs are planned once every map they may use is, and links once every program is.
        var programs: [(DesiredEntry, LiveEntry?, LedgerRecord?)] = []
        var links: [(DesiredEntry, LiveEntry?, LedgerRecord?)] = []
        for entry in desired.entries {
            let path = entry.path
            // Entries come parent first and every ancestor is declared or implied, so the parent tells.
            if !blocked.isEmpty && !path.isAnchor && blocked.contains(path.parent) {
                blocked.insert(path)
                continue
            }
            if policies.isIgnored(path) { continue }
            let current = !created.isEmpty && !path.isAnchor && created.contains(path.parent) ? nil : live[path]
            var record = owned[path]
            if current != nil { declaredLive += 1 }
            if let owner = record {
                declaredOwned += 1
                if !stillOwned(owner, current, declared: true) { record = nil }
            }
            if record == nil, !others.isEmpty, let current, let other = others[path], other.state == .owned, other.describes(current) {
                // Another manifest set's entry: a directory is shared as that set keeps it; anything else is
                // a conflict, never taken over (nor adopted).
                guard case .directory = entry.kind else {
                    problem(entry, "is \(OwnerScope.describe(other))'s \(other.kind.name): a manifest set never takes over another's entry; declare it in one set only")
                    blocked.insert(path)
                    continue
                }
                if !entry.isImplicit {
                    plan.notices.append(PlanNotice(path: path, message: "directory of \(OwnerScope.describe(other)); shared, and left as that set keeps it",
                                                   category: .unmanaged))
                }
                continue
            }
            switch entry.kind {
            case .program: programs.append((entry, current, record)); continue
            case .link: links.append((entry, current, record)); continue
            case .directory, .map: break
            }
            guard let current else {
                switch entry.kind {
                case .directory:
                    add(entry, .createDirectory(mode: entry.mode ?? Defaults.directoryMode, owner: entry.owner))
                    created.insert(path)
                case .map(let spec):
                    add(entry, .createMap(spec, mode: entry.mode ?? Defaults.pinMode, owner: entry.owner))
                    changed.insert(path)
                case .program, .link:
                    break
                }
                continue
            }
            switch (entry.kind, current.kind) {
            case (.directory, .directory):
                break
            case (.map(let spec), .map(let info)):
                let differences = spec.differences(from: info)
                guard differences.isEmpty else {
                    if !incompatible(entry, spec, info, differences, owned: record != nil) { blocked.insert(path) }
                    continue
                }
            case (.map(let spec), .recordedMap(let fingerprint)):
                guard fingerprint == spec.fingerprint else {
                    problem(entry, "the pin was not inspected because the ledger vouched for it, but with another shape; run again with --verify")
                    blocked.insert(path)
                    continue
                }
            default:
                wrongKind(entry, current)
                continue
            }
            own(entry, current, record)
        }
        convergePrograms(programs)
        for (entry, current, record) in Self.neighboursFirst(links) { convergeLink(entry, current, record) }
    }

    /// `links` with each tcx link after the link it is placed next to, so that a neighbour made again is
    /// known (`changed`) when the link placed next to it is planned.
    private static func neighboursFirst(_ links: [(DesiredEntry, LiveEntry?, LedgerRecord?)]) -> [(DesiredEntry, LiveEntry?, LedgerRecord?)] {
        guard links.contains(where: { if case .link(let spec) = $0.0.kind { spec.relative != nil } else { false } })
        else { return links }
        var index: [TreePath: Int] = [:]
        for (position, link) in links.enumerated() { index[link.0.path] = position }
        var ordered: [(DesiredEntry, LiveEntry?, LedgerRecord?)] = []
        var placed = Set<Int>()
        func place(_ position: Int, depth: Int) {
            // Cycles are refused before planning; the depth bound only keeps a bad tree from recursing deep.
            guard depth < links.count, !placed.contains(position) else { return }
            if case .link(let spec) = links[position].0.kind, let neighbour = spec.relative.flatMap({ index[$0] }) {
                place(neighbour, depth: depth + 1)
            }
            if placed.insert(position).inserted { ordered.append(links[position]) }
        }
        for position in links.indices { place(position, depth: 0) }
        return ordered
    }

    private mutating func wrongKind(_ entry: DesiredEntry, _ current: LiveEntry) {
        if current.kind == .symlink {
            problem(entry, "is a symlink where a \(entry.kind.name) is declared; bpftree never follows symlinks: remove it or change the manifest")
        } else {
            problem(entry, "is a \(current.kind.name) where a \(entry.kind.name) is declared")
        }
        blocked.insert(entry.path)
    }

    /// What converging a declared program finds before its load group is considered.
    private enum ProgramFinding {
        case blocked
        case missing
        case differs(LiveProgramInfo, [FieldDifference])
        case same(LiveProgramInfo)
    }

    /// The declared programs: each loaded when missing, loaded again when what is pinned is not what
    /// loading the declaration gives (type, name, tag, globals) or does not use the maps it is bound to.
    /// Programs of one load (`ProgramSpec.loadKey`) share the object's maps, so when one is loaded again
    /// all are, and live ones that share none of the maps they should are loaded again together.
    private mutating func convergePrograms(_ programs: [(DesiredEntry, LiveEntry?, LedgerRecord?)]) {
        var findings = programs.map { findProgram($0.0, $0.1, $0.2) }
        var groups: [ProgramSpec.LoadKey: [Int]] = [:]
        for (index, program) in programs.enumerated() {
            if case .program(let spec) = program.0.kind { groups[spec.loadKey, default: []].append(index) }
        }
        for members in groups.values where members.count > 1 {
            let loaded = members.first { index in
                switch findings[index] {
                case .missing, .differs: true
                case .blocked, .same: false
                }
            }
            if let loaded {
                for index in members {
                    guard case .same(let info) = findings[index] else { continue }
                    findings[index] = .differs(info, [FieldDifference(
                        field: "object", declared: "one load with \(programs[loaded].0.path), which is loaded now",
                        live: "program id \(info.id)")])
                }
            } else {
                for (index, difference) in unsharedMaps(members.map { (programs[$0].0, findings[$0]) }) {
                    guard case .same(let info) = findings[members[index]] else { continue }
                    findings[members[index]] = .differs(info, [difference])
                }
            }
        }
        for ((entry, current, record), finding) in zip(programs, findings) {
            guard case .program(let spec) = entry.kind else { continue }
            let path = entry.path, mode = entry.mode ?? Defaults.pinMode
            switch finding {
            case .blocked:
                continue
            case .missing:
                add(entry, .createProgram(targets.program(spec, at: path), mode: mode, owner: entry.owner))
                changed.insert(path)
            case .differs(_, let differences):
                if replaces(entry, "program", differences, owned: record != nil) {
                    add(entry, .replaceProgram(targets.program(spec, at: path), mode: mode, owner: entry.owner, differences: differences))
                    changed.insert(path)
                } else {
                    blocked.insert(path)
                }
            case .same(let info):
                programIDs[path] = info.id
                if let current { own(entry, current, record) }
            }
        }
    }

    /// Members of one load group, all live and unchanged, that do not share the object's maps both use
    /// (one was loaded apart): each with what differs, as indices into `members`.
    private func unsharedMaps(_ members: [(entry: DesiredEntry, finding: ProgramFinding)]) -> [(Int, FieldDifference)] {
        func unbound(_ spec: ProgramSpec, _ info: LiveProgramInfo) -> Set<UInt32> {
            var ids = Set(info.mapIDs)
            for binding in spec.maps {
                if case .map(let map)? = live[binding.path]?.kind { ids.remove(map.id) }
            }
            return ids
        }
        var found: [(Int, FieldDifference)] = []
        guard case .program(let first) = members[0].entry.kind, case .same(let firstInfo) = members[0].finding,
              let firstImage = targets.images[members[0].entry.path] else { return [] }
        let firstIDs = unbound(first, firstInfo)
        let bound = Set(first.maps.map(\.name))
        for (index, member) in members.enumerated().dropFirst() {
            guard case .program(let spec) = member.entry.kind, case .same(let info) = member.finding,
                  let image = targets.images[member.entry.path] else { continue }
            let both = firstImage.objectMaps.filter { name, map in
                map.used && image.objectMaps[name]?.used == true && !bound.contains(name)
            }
            guard !both.isEmpty, firstIDs.intersection(unbound(spec, info)).count < both.count else { continue }
            func apart(from other: TreePath) -> FieldDifference {
                FieldDifference(field: "maps", declared: "\(both.keys.sorted().joined(separator: ", ")) shared with \(other) (one load of \(spec.object))",
                                live: "maps of its own (loaded apart)")
            }
            found.append((index, apart(from: members[0].entry.path)))
            // The first member is loaded again with them: say with which one, once.
            if found.count == 1 { found.append((0, apart(from: member.entry.path))) }
        }
        return found
    }

    /// One declared program on its own: missing, blocked (reported), or live and how it differs.
    private mutating func findProgram(_ entry: DesiredEntry, _ current: LiveEntry?, _ record: LedgerRecord?) -> ProgramFinding {
        guard case .program(let spec) = entry.kind else { return .blocked }
        let path = entry.path
        if let blocker = spec.maps.first(where: { blocked.contains($0.path) }) {
            problem(entry, "its map \(blocker.name) is bound to \(blocker.path), which has a conflict")
            blocked.insert(path)
            return .blocked
        }
        guard let current else { return .missing }
        guard case .program(let info) = current.kind else {
            wrongKind(entry, current)
            return .blocked
        }
        let image = targets.images[path]
        var differences = ResolvedProgram(spec, image: image).differences(from: info)
        for binding in spec.maps {
            let field = "maps.\(binding.name)"
            if changed.contains(binding.path) {
                differences.append(FieldDifference(field: field, declared: "\(binding.path), which is created or replaced now",
                                                   live: "the map it was loaded with"))
            } else if case .map(let map)? = live[binding.path]?.kind, !info.mapIDs.contains(map.id),
                      image?.objectMaps[binding.name]?.used != false {
                // A bound map the program's instructions never name is not among its map ids.
                differences.append(FieldDifference(field: field, declared: "\(binding.path) (map id \(map.id))",
                                                   live: "map ids \(info.mapIDs.map(String.init).joined(separator: ", "))"))
            }
        }
        // The tag leaves data out: globals are known from the ledger's record of the load.
        if differences.isEmpty, let record, record.fingerprint != 0, record.fingerprint != spec.fingerprint(tag: info.tag) {
            let declared = spec.globals.isEmpty ? "none" : spec.globals.map(\.description).joined(separator: ", ")
            differences.append(FieldDifference(field: "globals", declared: declared, live: "others, when the program was loaded"))
        }
        return differences.isEmpty ? .same(info) : .differs(info, differences)
    }

    /// A declared link: created when missing; made again when what is pinned links something else (type,
    /// attach type, cgroup) or another program than the one declared.
    private mutating func convergeLink(_ entry: DesiredEntry, _ current: LiveEntry?, _ record: LedgerRecord?) {
        guard case .link(let spec) = entry.kind else { return }
        let path = entry.path, mode = entry.mode ?? Defaults.pinMode
        let link = targets.link(spec, at: path)
        if blocked.contains(spec.program) {
            problem(entry, "its program \(spec.program) has a conflict")
            blocked.insert(path)
            return
        }
        guard let current else {
            add(entry, .createLink(link, mode: mode, owner: entry.owner))
            changed.insert(path)
            return
        }
        guard case .link(let info) = current.kind else { return wrongKind(entry, current) }
        var differences = link.differences(from: info, programID: programIDs[spec.program])
        if changed.contains(spec.program) {
            differences.append(FieldDifference(field: "program", declared: "\(spec.program), which is loaded now",
                                               live: "program id \(info.programID)"))
        }
        // Only a program that differs is moved in place (`updateLink`); whatever else differs too must be seen
        // here, or the program alone would move and the rest stay as it was.
        var onlyProgram: Bool { differences.allSatisfy { $0.field == "program" } }
        if let position = spec.position, let relative = position.relative, changed.contains(relative) {
            // Its neighbour is made again (detached, then placed anew): this link must be placed anew after it.
            differences.append(FieldDifference(field: position.field,
                                               declared: "\(relative), which is made again now", live: "next to the link as it was"))
        }
        if case .netDevice(let device) = spec.target, let position = spec.position, onlyProgram {
            // Placed next to a declared program or link: the neighbour it must have, by its live id.
            let relative: (id: UInt32, isLink: Bool)? = switch position.relative.flatMap({ live[$0]?.kind }) {
            case .program(let program)?: (program.id, false)
            case .link(let link)?: (link.id, true)
            default: nil
            }
            if let difference = device.positionDifference(from: info, relative: relative) { differences.append(difference) }
        }
        if let map = spec.map, onlyProgram {
            if changed.contains(map) {
                differences.append(FieldDifference(field: "map", declared: "\(map), which is created or replaced now", live: "the map it was made on"))
            } else if case .map(let mapInfo)? = live[map]?.kind, mapInfo.id != info.mapID {
                differences.append(FieldDifference(field: "map", declared: "\(map) (map id \(mapInfo.id))", live: "map id \(info.mapID)"))
            }
        }
        // What bpf_link_info does not tell (a tcx position, an XDP mode) is known from the ledger's record.
        if onlyProgram, let unobserved = link.unobserved, let record, record.fingerprint != 0,
           record.fingerprint != link.fingerprint {
            differences.append(FieldDifference(field: unobserved.field, declared: unobserved.value, live: "another, when the link was made"))
        }
        guard differences.isEmpty else {
            if spec.updatable, differences.allSatisfy({ $0.field == "program" }) {
                // Only the program differs: the link moves to it in place, never leaving the hook empty.
                if replaces(entry, "link", differences, owned: record != nil) {
                    add(entry, .updateLink(link, from: info.programID, differences: differences))
                    own(entry, current, record)
                } else {
                    blocked.insert(path)
                }
            } else if replaces(entry, "link", differences, owned: record != nil) {
                add(entry, .replaceLink(link, mode: mode, owner: entry.owner, differences: differences))
                changed.insert(path)
            } else {
                blocked.insert(path)
            }
            return
        }
        own(entry, current, record)
    }

    /// Whether a pinned program or link that differs from its declaration may be replaced: bpftree owns
    /// it and the entry's or scope's onIncompatible is replace (or migrate, which for these is the same).
    private mutating func replaces(_ entry: DesiredEntry, _ what: String, _ differences: [FieldDifference], owned: Bool) -> Bool {
        let fields = differences.map(\.description).joined(separator: "; ")
        guard owned else {
            problem(entry, "the pinned \(what) differs (\(fields)); it was not created by bpftree: bpftree only replaces what it created; remove the pin or change the manifest", differences)
            return false
        }
        let scope = policies.scope(for: entry.path)
        let choice = entry.incompatibleChoice(in: scope)
        let rule = entry.onIncompatible != nil ? "the entry's onIncompatible" : scope.map { "onIncompatible of \($0.reference)" } ?? "the default"
        guard choice != .fail else {
            problem(entry, "the pinned \(what) differs (\(fields)); \(rule) is fail: change the manifest, or allow replace", differences)
            return false
        }
        if let scope, scope.protects(entry.path), !force {
            problem(entry, "the pinned \(what) differs (\(fields)) and is protected by \(scope.reference); replace needs --force", differences)
            return false
        }
        return true
    }

    /// Ownership and attributes of a declared entry that exists with the right kind and content.
    private mutating func own(_ entry: DesiredEntry, _ current: LiveEntry, _ record: LedgerRecord?) {
        let path = entry.path
        guard let kind = current.kind.ledgerKind else { return }
        if let record {
            if !entry.isImplicit && record.manifest != entry.manifest {
                add(entry, .recordOwnership(kind, inode: current.inode,
                                            why: "now declared by manifest \(entry.manifest) (recorded for \(record.manifest))"))
            } else if let runOwner, record.owner.isEmpty {
                add(entry, .recordOwnership(kind, inode: current.inode, why: "recorded for owner \(runOwner) (the record named none)"))
            }
        } else if entry.adopt && !path.isAnchor {
            add(entry, .recordOwnership(kind, inode: current.inode, why: "adopted (adopt: true)"))
        } else if !path.isAnchor {
            if !entry.isImplicit {
                plan.notices.append(PlanNotice(
                    path: path, message: "exists but was not created by bpftree; left alone (declare adopt: true to manage it)",
                    category: .unmanaged))
            }
            return
        }
        plan.actions += entry.attributeActions(current)
    }

    /// A declared map whose live shape differs: replace or migrate it when bpftree owns it and the policy
    /// allows; otherwise a problem. Returns whether a replacement was planned (false: the path is blocked).
    private mutating func incompatible(_ entry: DesiredEntry, _ spec: MapSpec, _ info: LiveMapInfo,
                                       _ differences: [FieldDifference], owned: Bool) -> Bool {
        let fields = differences.map(\.description).joined(separator: "; ")
        guard owned else {
            let adopt = entry.adopt ? "it cannot be adopted, and " : ""
            problem(entry, "the pinned map has a different shape (\(fields)); it was not created by bpftree: \(adopt)bpftree only replaces maps it created; remove the pin or change the manifest", differences)
            return false
        }
        let scope = policies.scope(for: entry.path)
        let choice = entry.incompatibleChoice(in: scope)
        let rule = entry.onIncompatible != nil ? "the entry's onIncompatible" : scope.map { "onIncompatible of \($0.reference)" } ?? "the default"
        switch choice {
        case .fail:
            problem(entry, "the pinned map has a different shape (\(fields)); \(rule) is fail: change the manifest, or allow replace or migrate", differences)
            return false
        case .replace, .migrate:
            if let scope, scope.protects(entry.path), !force {
                problem(entry, "the pinned map has a different shape (\(fields)) and is protected by \(scope.reference); \(choice.rawValue) needs --force", differences)
                return false
            }
            if choice == .migrate, let why = spec.migrationProblem(from: info) {
                problem(entry, "cannot migrate: \(why) (\(fields))", differences)
                return false
            }
            if choice == .migrate, !spec.type.isArray, let count = facts.entryCounts[entry.path], count > UInt64(spec.maxEntries) {
                problem(entry, "cannot migrate: the map holds \(count) entries and the new maxEntries is \(spec.maxEntries)", differences)
                return false
            }
            add(entry, .replaceMap(spec, mode: entry.mode ?? Defaults.pinMode, owner: entry.owner, old: info,
                                   migrate: choice == .migrate, differences: differences))
            changed.insert(entry.path)
            return true
        }
    }

    /// Programs that keep using a map the plan replaces (a pin is only a name), except declared programs
    /// the plan loads again.
    mutating func noteProgramsOfReplacedMaps() {
        guard !facts.mapUsers.isEmpty else { return }
        let reloaded = Set(plan.actions.compactMap { action -> UInt32? in
            guard case .replaceProgram = action.change, case .program(let info)? = live[action.path]?.kind else { return nil }
            return info.id
        })
        for action in plan.actions {
            guard case .replaceMap(_, _, _, let old, _, _) = action.change else { continue }
            let programs = (facts.mapUsers[old.id] ?? []).filter { !reloaded.contains($0.id) }
            guard !programs.isEmpty else { continue }
            plan.notices.append(PlanNotice(
                path: action.path,
                message: "map id \(old.id) is used by program\(programs.count == 1 ? "" : "s") \(programs.map(\.description).joined(separator: ", ")); \(programs.count == 1 ? "it keeps" : "they keep") using the old map after the replacement",
                category: .programs))
        }
        plan.notices.sort { $0.path < $1.path }
    }

    // MARK: Prune

    mutating func prune() {
        var removed = temporaries
        guard declaredOwned < ownedAfterSettle else { return }
        let undeclared = owned.records.filter { !desired.declares($0.path) && !$0.path.isAnchor }
            .filter { stillOwned($0, live[$0.path], declared: false) }
        // Children first; sorting positions moves integers, not records.
        let order = undeclared.indices.sorted { undeclared[$0].path > undeclared[$1].path }
        for record in order.lazy.map({ undeclared[$0] }) where !policies.isIgnored(record.path) {
            let path = record.path
            func keep(_ why: String) {
                plan.notices.append(PlanNotice(path: path, message: "no longer declared; kept: \(why)", category: .kept))
            }
            guard let scope = policies.scope(for: path) else {
                keep("no policy scope governs it")
                continue
            }
            guard scope.prune == .owned else {
                keep("prune is none in \(scope.reference)")
                continue
            }
            if scope.protects(path) && !force {
                keep("protected by \(scope.reference); --force removes it")
                continue
            }
            if record.kind == .directory, !(children[path] ?? []).allSatisfy(removed.contains) {
                keep("it holds entries bpftree does not remove")
                continue
            }
            removed.insert(path)
            plan.actions.append(Action(path: path, change: .remove(record.kind), manifest: record.manifest))
        }
    }

    // MARK: Unmanaged

    mutating func listUnmanaged() {
        func isForeign(_ path: TreePath) -> Bool {
            !path.isAnchor && !desired.declares(path) && owned[path] == nil && !temporaries.contains(path)
                && !policies.isIgnored(path)
        }
        // What a staging directory holds goes with it.
        func isStaged(_ path: TreePath) -> Bool {
            !temporaries.isEmpty && path.ancestors.contains(where: temporaries.contains)
        }
        let anchorUndeclared = live[.anchor] != nil && !desired.declares(.anchor) ? 1 : 0
        guard declaredLive + anchorUndeclared < live.entries.count else { return }
        for (path, entry) in live.entries where isForeign(path) && !isForeign(path.parent) && !isStaged(path) {
            if entry.kind == .symlink {
                plan.notices.append(PlanNotice(path: path, message: "symlink left alone, never followed", category: .symlink))
                continue
            }
            if !others.isEmpty, let other = others[path], other.describes(entry) {
                plan.notices.append(PlanNotice(path: path, message: "\(entry.kind.name) of \(OwnerScope.describe(other)); left alone",
                                               category: .unmanaged))
                continue
            }
            var message = "unmanaged \(entry.kind.name): not created by bpftree; left alone"
            if entry.kind == .directory {
                let inside = descendants(of: path)
                if inside > 0 { message += " (\(inside) \(inside == 1 ? "entry" : "entries") inside)" }
            }
            plan.notices.append(PlanNotice(path: path, message: message, category: .unmanaged))
        }
        plan.notices.sort { $0.path < $1.path }
    }

    /// One notice per manifest that is not part of this run but made entries no owner names: a run prunes
    /// only what its own manifests (or its owner) made, so what such a manifest made stays until a run of
    /// it, or of an owner that takes it over, declares it no more.
    mutating func noteManifestsOutsideTheRun() {
        guard !others.isEmpty else { return }
        var byManifest: [String: (top: TreePath, count: Int)] = [:]
        for record in others.values where record.owner.isEmpty && record.state == .owned {
            let known = byManifest[record.manifest]
            byManifest[record.manifest] = (min(known?.top ?? record.path, record.path), (known?.count ?? 0) + 1)
        }
        guard !byManifest.isEmpty else { return }
        for (manifest, found) in byManifest {
            plan.notices.append(PlanNotice(
                path: found.top,
                message: "\(found.count) \(found.count == 1 ? "entry" : "entries") of manifest '\(manifest)', which this run does not include, kept: a run prunes only what its own manifests made (name the set with --owner or metadata.owner to prune the manifests it drops)",
                category: .kept))
        }
        plan.notices.sort { $0.path < $1.path }
    }

    private mutating func descendants(of path: TreePath) -> Int {
        var count = 0
        for child in children[path] ?? [] { count += 1 + descendants(of: child) }
        return count
    }

    // MARK: Helpers

    private mutating func add(_ entry: DesiredEntry, _ change: Action.Change) {
        plan.actions.append(Action(path: entry.path, change: change, origin: entry.origin, manifest: entry.manifest))
    }

    private mutating func problem(_ entry: DesiredEntry, _ message: String, _ differences: [FieldDifference] = []) {
        plan.problems.append(PlanProblem(path: entry.path, message: message, origin: entry.origin ?? desired.origin(for: entry.path),
                                         differences: differences))
    }

}


/// The ledger's records that stand for what is in the tree once it is settled: the ledger itself, less
/// records that do not describe the live entry, plus records settled in this pass. Kept as exceptions to
/// the ledger's own table, so a converged tree costs one lookup per path and no copy.
private struct Owned {
    var ledger: [TreePath: LedgerRecord] = [:]
    private var settled: [TreePath: LedgerRecord] = [:]
    private var disowned: Set<TreePath> = []
    /// Owned-state ledger records that are disowned.
    private var disownedOwned = 0

    subscript(path: TreePath) -> LedgerRecord? {
        if !settled.isEmpty, let record = settled[path] { return record }
        guard let record = ledger[path], record.state == .owned else { return nil }
        return !disowned.isEmpty && disowned.contains(path) ? nil : record
    }

    mutating func settle(_ record: LedgerRecord) { settled[record.path] = record }

    mutating func disown(_ record: LedgerRecord) {
        if disowned.insert(record.path).inserted && record.state == .owned { disownedOwned += 1 }
    }

    var count: Int { ledger.values.count { $0.state == .owned } - disownedOwned + settled.count }

    /// Every owned record.
    var records: [LedgerRecord] {
        ledger.values.filter { $0.state == .owned && !disowned.contains($0.path) } + settled.values
    }
}

extension DesiredEntry {
    /// Mode and owner changes for this entry when it exists with the right kind as `current`.
    public func attributeActions(_ current: LiveEntry) -> [Action] {
        var actions: [Action] = []
        let liveMode = current.mode & 0o7777
        if let mode, mode != liveMode {
            actions.append(Action(path: path, change: .setMode(from: liveMode, to: mode), origin: origin, manifest: manifest))
        }
        if (owner.uid.map { $0 != current.uid } ?? false) || (owner.gid.map { $0 != current.gid } ?? false) {
            let from = Owner(uid: current.uid, gid: current.gid)
            let to = Owner(uid: owner.uid ?? current.uid, gid: owner.gid ?? current.gid)
            actions.append(Action(path: path, change: .setOwner(from: from, to: to), origin: origin, manifest: manifest))
        }
        return actions
    }
}
