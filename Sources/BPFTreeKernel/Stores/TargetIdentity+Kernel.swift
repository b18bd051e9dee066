import BPFTreeCore
import Glibc

extension TargetIdentity {
    /// What the target reads as now, in the form `TargetIdentity.list` recorded ("none": it is gone).
    public var current: String {
        switch kind {
        case .object: FileBytes.identity(name)
        case .cgroup: (try? PinResolver.cgroupID(name).get()).map { "\($0)" } ?? "none"
        case .interface: (try? PinResolver.interfaceIndex(name).get()).map { "\($0)" } ?? "none"
        case .netns: (try? PinResolver.namespaceInode(name).get()).map { "\($0)" } ?? "none"
        case .file: Self.file(name)
        }
    }

    /// A probed binary's device and inode (`DEVICE:INODE`), as a uprobe's resolution records it.
    public static func file(_ path: String) -> String {
        var status = stat()
        guard stat(path, &status) == 0 else { return "none" }
        return "\(status.st_dev):\(status.st_ino)"
    }

    /// Whether every target in `targets` reads as it was.
    public static func hold(_ targets: [TargetIdentity]) -> Bool {
        targets.allSatisfy { $0.current == $0.identity }
    }
}
