/// What a BPF token made from a delegated bpffs may do: the mount's `delegate_cmds`, `delegate_maps`,
/// `delegate_progs` and `delegate_attachs` options (Linux 6.9), as /proc/self/mountinfo shows them
/// (`any`, or names joined by `:`).
public struct BPFDelegation: Equatable, Sendable {
    /// One option's value.
    public enum Grant: Equatable, Sendable {
        case any
        case only(Set<String>)
        /// A mask the kernel printed as a number (bits it has no name for): not checked here, the kernel decides.
        case unknown

        public func allows(_ name: String) -> Bool {
            switch self {
            case .any, .unknown: true
            case .only(let names): names.contains(name)
            }
        }

        var isEmpty: Bool { self == .only([]) }

        init(_ value: Substring?) {
            guard let value else { self = .only([]); return }
            if value == "any" { self = .any; return }
            let names = value.split(separator: ":").map(String.init)
            self = names.contains { $0.hasPrefix("0x") || $0.first?.isNumber == true } ? .unknown : .only(Set(names))
        }
    }

    /// What a token needs delegated, by the mount option that grants it.
    public enum Option: String, Sendable, CaseIterable {
        case commands = "delegate_cmds", maps = "delegate_maps", programs = "delegate_progs", attachTypes = "delegate_attachs"

        /// How a missing grant is named in messages: "map type lru_hash".
        public var noun: String {
            switch self {
            case .commands: "command"
            case .maps: "map type"
            case .programs: "program type"
            case .attachTypes: "attach type"
            }
        }
    }

    public var commands: Grant
    public var maps: Grant
    public var programs: Grant
    public var attachTypes: Grant

    public init(commands: Grant = .only([]), maps: Grant = .only([]), programs: Grant = .only([]),
                attachTypes: Grant = .only([])) {
        self.commands = commands
        self.maps = maps
        self.programs = programs
        self.attachTypes = attachTypes
    }

    /// From a bpffs mount's super options, e.g. `rw,uid=0,delegate_cmds=map_create:prog_load,delegate_maps=any`.
    public init(superOptions: String) {
        var values: [String: Substring] = [:]
        for option in superOptions.split(separator: ",") {
            guard let equals = option.firstIndex(of: "=") else { continue }
            values[String(option[..<equals])] = option[option.index(after: equals)...]
        }
        self.init(commands: Grant(values[Option.commands.rawValue]), maps: Grant(values[Option.maps.rawValue]),
                  programs: Grant(values[Option.programs.rawValue]), attachTypes: Grant(values[Option.attachTypes.rawValue]))
    }

    /// Delegation this process cannot read (the mount is not in its mountinfo): nothing is checked up
    /// front, the kernel refuses what is not delegated.
    public static let unknown = BPFDelegation(commands: .unknown, maps: .unknown, programs: .unknown, attachTypes: .unknown)

    /// Whether the mount delegates anything at all (a token can be made from it).
    public var isDelegated: Bool { ![commands, maps, programs, attachTypes].allSatisfy(\.isEmpty) }

    public subscript(option: Option) -> Grant {
        switch option {
        case .commands: commands
        case .maps: maps
        case .programs: programs
        case .attachTypes: attachTypes
        }
    }

    public func allows(_ option: Option, _ name: String) -> Bool { self[option].allows(name) }

    /// The grants as mount options, names sorted: the same text for the same delegation in every process.
    public var summary: String {
        Option.allCases.map { option in
            let grant = switch self[option] {
            case .any: "any"
            case .unknown: "unknown"
            case .only(let names): names.sorted().joined(separator: ":")
            }
            return "\(option.rawValue)=\(grant)"
        }.joined(separator: ",")
    }
}
