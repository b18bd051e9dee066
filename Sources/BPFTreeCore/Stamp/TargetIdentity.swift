/// Something outside the bpffs that a stamped tree depends on, with what it was when the tree was
/// planned: a program's object file (a rebuilt object is a changed program that no walk of the tree sees).
/// The kernel layer reads each again before trusting the stamp. Links' targets (cgroups, interfaces,
/// namespaces, probed binaries) join them once trees with links are stamped.
public struct TargetIdentity: Hashable, Sendable {
    public enum Kind: UInt8, Sendable {
        /// A program's object file: device, inode, size and modification time.
        case object = 1
    }

    public var kind: Kind
    public var name: String
    public var identity: String

    public init(_ kind: Kind, _ name: String, _ identity: String) {
        (self.kind, self.name, self.identity) = (kind, name, identity)
    }

    /// What the programs of a tree depend on outside the bpffs, as `targets` found it, in a stable order.
    public static func list(_ targets: ResolvedTargets) -> [TargetIdentity] {
        targets.objects.map { TargetIdentity(.object, $0.key, $0.value) }.sorted { $0.name < $1.name }
    }
}
