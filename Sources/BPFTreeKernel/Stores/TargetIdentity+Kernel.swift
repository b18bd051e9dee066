import BPFTreeCore

extension TargetIdentity {
    /// What the target reads as now, in the form `TargetIdentity.list` recorded.
    public var current: String {
        switch kind {
        case .object: FileBytes.identity(name)
        }
    }

    /// Whether every target in `targets` reads as it was.
    public static func hold(_ targets: [TargetIdentity]) -> Bool {
        targets.allSatisfy { $0.current == $0.identity }
    }
}
