/// Checks, before anything is made, that a BPF token from a delegated bpffs allows what a run needs:
/// what bpftree itself always does (its batch program, the ledger) and each declared map type and
/// program type (with its expected attach type, which the kernel checks at load too).
public enum DelegationCheck {
    /// One thing a token must allow, and why it is needed.
    public struct Need: Sendable, Equatable {
        public var option: BPFDelegation.Option
        public var name: String
        public var purpose: String
    }

    /// What every run with a token needs, found on Linux 6.18 with libbpf 1.1.
    public static let bpftreeNeeds: [Need] = [
        Need(option: .commands, name: "map_create", purpose: "every map, the ledger and the batch program's data"),
        Need(option: .commands, name: "prog_load", purpose: "bpftree's batch program"),
        Need(option: .commands, name: "btf_load", purpose: "the batch program's BTF (its bpf_loop callback)"),
        Need(option: .programs, name: "syscall", purpose: "bpftree's batch program"),
        Need(option: .programs, name: "socket_filter", purpose: "libbpf's probes of kernel features"),
        Need(option: .attachTypes, name: AttachType.names[0],
             purpose: "every program load without an attach type, the batch program's included (the kernel checks attach type 0)"),
        Need(option: .maps, name: MapType.array.rawValue, purpose: "the batch program's data"),
        Need(option: .maps, name: MapType.hash.rawValue, purpose: "the ownership ledger"),
    ]

    /// "map type lru_hash not delegated on this bpffs (delegate_maps=array:hash)".
    public static func message(_ option: BPFDelegation.Option, _ name: String, _ delegation: BPFDelegation) -> String {
        let granted: String
        switch delegation[option] {
        case .any, .unknown: granted = "any"
        case .only(let names): granted = names.isEmpty ? "none" : names.sorted().joined(separator: ":")
        }
        return "\(option.noun) \(name) not delegated on this bpffs (\(option.rawValue)=\(granted))"
    }

    /// The needs of `bpftreeNeeds` the delegation lacks, each as a message with its purpose.
    public static func missingBPFTreeNeeds(_ delegation: BPFDelegation) -> [String] {
        bpftreeNeeds.filter { !delegation.allows($0.option, $0.name) }
            .map { "\(message($0.option, $0.name, delegation)), needed for \($0.purpose)" }
    }

    /// One diagnostic per declared map whose type, per program whose declared type or attach type, and
    /// per link whose attach type the delegation lacks. (A type only the object tells is checked when the program is loaded: `PinResolver`.)
    public static func violations(_ desired: DesiredTree, _ delegation: BPFDelegation) -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        for entry in desired.entries {
            guard let origin = entry.origin else { continue }
            func refuse(_ option: BPFDelegation.Option, _ name: String, field: String) {
                diagnostics.append(Diagnostic("\(entry.path): \(message(option, name, delegation))", at: origin.location,
                                              field: "\(origin.field).\(field)"))
            }
            switch entry.kind {
            case .map(let spec):
                if !delegation.allows(.maps, spec.type.rawValue) { refuse(.maps, spec.type.rawValue, field: "map.type") }
            case .program(let spec):
                if let type = spec.type, !delegation.allows(.programs, type.name) {
                    refuse(.programs, type.name, field: "program.type")
                }
                if let attach = spec.attachType, !delegation.allows(.attachTypes, attach.name) {
                    refuse(.attachTypes, attach.name, field: "program.attachType")
                }
            case .link(let spec):
                // BPF_LINK_CREATE takes no token: the delegation is applied here.
                if !delegation.allows(.attachTypes, spec.attachType.name) {
                    refuse(.attachTypes, spec.attachType.name, field: "link.attachType")
                }
            case .directory:
                continue
            }
        }
        return diagnostics
    }

    /// Why loading a program of `type` with expected `attach` type was refused (EPERM) under a token from
    /// this delegation, when the delegation is the reason; nil when it is not.
    public static func refusal(type: ProgramType?, attach: AttachType?, _ delegation: BPFDelegation) -> String? {
        let missing = [type.map { (BPFDelegation.Option.programs, $0.name) }, attach.map { (.attachTypes, $0.name) }]
            .compactMap { $0 }.filter { !delegation.allows($0.0, $0.1) }
        guard !missing.isEmpty else { return nil }
        return missing.map { message($0.0, $0.1, delegation) }.joined(separator: "; ")
    }
}
