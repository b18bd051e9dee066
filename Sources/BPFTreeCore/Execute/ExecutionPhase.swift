/// The order a plan's actions run in: ledger repairs, creations (staged, then committed together),
/// attributes, removals (children first, as planned).
public enum ExecutionPhase: CaseIterable, Sendable {
    case repair, create, attributes, removals

    public static func of(_ action: Action) -> ExecutionPhase {
        switch action.change {
        case .removeTemporary, .forgetRecord, .recordOwnership: .repair
        case .createDirectory, .createMap, .replaceMap, .createProgram, .replaceProgram, .createLink, .replaceLink: .create
        // A link moves to its new program once the program is in place.
        case .setMode, .setOwner, .updateLink: .attributes
        case .remove: .removals
        }
    }

    /// The positions of `plan`'s actions, by phase in phase order, each phase in plan order.
    public static func order(_ plan: Plan) -> [(phase: ExecutionPhase, actions: [Int])] {
        // Positions, not copies: an action is a few hundred bytes.
        var byPhase: [ExecutionPhase: [Int]] = [:]
        for index in plan.actions.indices { byPhase[of(plan.actions[index]), default: []].append(index) }
        return allCases.map { ($0, byPhase[$0] ?? []) }
    }
}

extension Action {
    /// Whether the action replaces an existing object (pinned under a temporary name and exchanged).
    public var isReplacement: Bool {
        switch change {
        case .replaceMap, .replaceProgram, .replaceLink: true
        default: false
        }
    }

    /// Whether the action makes a link its hook takes once (`LinkSpec.exclusive`).
    public var makesExclusiveLink: Bool {
        switch change {
        case .createLink(let link, _, _), .replaceLink(let link, _, _, _): link.spec.exclusive
        default: false
        }
    }

    /// The kind of object a creation or replacement makes; nil for every other action.
    public var madeKind: LedgerRecord.Kind? {
        switch change {
        case .createDirectory: .directory
        case .createMap, .replaceMap: .map
        case .createProgram, .replaceProgram: .program
        case .createLink, .replaceLink: .link
        default: nil
        }
    }
}
