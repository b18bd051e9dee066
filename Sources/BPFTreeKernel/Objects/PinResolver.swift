import BPFTreeCore
import CBPFTreeShim
import Glibc

/// Finds what only the kernel can tell about the declared programs and links before planning: each
/// program's image (it is loaded once, so an object that does not load is refused before anything
/// changes) and each link's target: its cgroup id, interface index, namespace inode, tracepoint id or
/// uprobe file offset, or that its raw tracepoint or kernel function exists (`ProbeTargets`). The desired
/// tree is only read; what is found goes into a `ResolvedTargets` table.
public enum PinResolver {
    /// Resolves every program and link of `desired` that `targets` has no entry for yet, into `targets`;
    /// returns the problems as diagnostics of the entries.
    /// `delegation`: what the run's BPF token allows, to name the delegation a refused load lacked.
    /// `images`: the anchor's cache of what loading each program gave, consulted before loading one.
    public static func resolve(_ desired: DesiredTree, into targets: inout ResolvedTargets, delegation: BPFDelegation? = nil,
                               images: ImageStore? = nil) -> [Diagnostic] {
        let environment = ["token \(delegation?.summary ?? "none")"]
        var diagnostics: [Diagnostic] = []
        // Links of one cgroup (an instance's egress and stats) open it once.
        var cgroupIDs: [String: Result<UInt64, KernelError>] = [:]
        for entry in desired.entries {
            guard let origin = entry.origin, !targets.contains(entry.path) else { continue }
            switch entry.kind {
            case .program(let spec):
                // Read before the object is: a file replaced in between is then seen as changed, never the other way.
                if targets.objects[spec.objectPath] == nil { targets.objects[spec.objectPath] = FileBytes.identity(spec.objectPath) }
                switch ProgramLoader.image(spec, images: images, environment: environment) {
                case .success(let image):
                    targets.images[entry.path] = image
                case .failure(var failure):
                    if let delegation, let refused = failure.refused, refused.errno == EPERM,
                       let reason = DelegationCheck.refusal(type: refused.type, attach: refused.attach, delegation) {
                        failure.message = "cannot load program '\(spec.program)' from \(spec.object): \(reason)"
                    }
                    let field = "\(origin.field).program.\(failure.field)"
                    let location = if failure.field.hasPrefix("maps.") {
                        spec.maps.first { "maps.\($0.name)" == failure.field }?.location
                    } else if failure.field.hasPrefix("globals.") {
                        spec.globals.first { "globals.\($0.name)" == failure.field }?.location
                    } else {
                        spec.locations[failure.field]
                    }
                    diagnostics.append(Diagnostic(failure.message, at: location ?? origin.location, field: field))
                }
            case .link(let spec):
                if let since = spec.kernelSince {
                    let type = LiveLinkInfo.typeName(spec.kernelType)
                    if let missing = KernelFeatures.missing("BPF_LINK_TYPE_\(type.uppercased())", what: "\(type) links", since: since) {
                        diagnostics.append(Diagnostic(missing, at: origin.location, field: "\(origin.field).link"))
                        continue
                    }
                }
                switch spec.target.kernel.resolve(spec, cgroups: &cgroupIDs) {
                case .success(let resolved):
                    targets.links[entry.path] = resolved
                case .failure(let problem):
                    diagnostics.append(Diagnostic("\(problem.field) '\(problem.value)': \(problem.error.detail ?? problem.error.description)",
                                                  at: spec.locations[problem.field] ?? origin.location, field: "\(origin.field).link.\(problem.field)"))
                }
            case .directory, .map:
                break
            }
        }
        return diagnostics + desired.bindingProblems(targets.images) + desired.linkProblems(targets.images)
    }

    /// The id of the cgroup v2 directory `path` (absolute, or relative to the cgroup v2 mount).
    public static func cgroupID(_ path: String) -> Result<UInt64, KernelError> {
        Result { () throws(KernelError) in
            try openCgroup(path: path).id
        }
    }

    /// Opens the cgroup v2 directory `path` names (absolute, or relative to the cgroup v2 mount). A
    /// relative path is tried first below the mount found last, without checking that mount again: what
    /// opens is checked to be a cgroup v2 directory anyway. Only when that fails is the mount looked up
    /// afresh (it moved, or the cgroup is not there).
    static func openCgroup(path: String) throws(KernelError) -> (descriptor: Descriptor, id: UInt64) {
        if !path.hasPrefix("/"), let known = CgroupScanner.lastMount,
           case .success(let opened) = Result(catching: { () throws(KernelError) in try openCgroup(known + "/" + path) }) {
            return opened
        }
        return try openCgroup(CgroupScanner.directory(of: CgroupSource(path: path, depth: 1)))
    }

    /// The index of the network interface `name` in bpftree's network namespace.
    public static func interfaceIndex(_ name: String) -> Result<UInt32, KernelError> {
        let index = if_nametoindex(name)
        if index == 0 {
            let error = errno
            return .failure(KernelError(.call(.ifNameToIndex), path: name, negativeErrno: -error,
                                        detail: error == ENODEV || error == ENXIO ? "no such network interface in bpftree's network namespace" : nil))
        }
        return .success(index)
    }

    /// The inode (the id) of the network namespace file `path`.
    public static func namespaceInode(_ path: String) -> Result<UInt64, KernelError> {
        Result { () throws(KernelError) in
            try openNamespace(path).inode
        }
    }

    /// Opens a network namespace file; refuses anything else.
    static func openNamespace(_ path: String) throws(KernelError) -> (descriptor: Descriptor, inode: UInt64) {
        var inode: UInt64 = 0
        let fd = bt_netns_open(path, &inode)
        guard fd >= 0 else {
            let detail: String? = switch fd {
            case -ENOENT: "no such file"
            case -ENOTTY: "not a namespace file (such as /proc/PID/ns/net or /run/netns/NAME)"
            case -EINVAL: "a namespace file, but not of a network namespace"
            default: nil
            }
            throw KernelError(.step(.openNetworkNamespace), path: path, negativeErrno: fd, detail: detail)
        }
        return (Descriptor(owning: fd), inode)
    }

    /// Opens a cgroup v2 directory; refuses anything else.
    static func openCgroup(_ directory: String) throws(KernelError) -> (descriptor: Descriptor, id: UInt64) {
        var id: UInt64 = 0
        let fd = withCgroupPath(directory) { bt_cgroup_open($0, &id) }
        guard fd >= 0 else {
            throw KernelError(.step(.openCgroup), path: directory, negativeErrno: fd,
                              detail: fd == -ENOENT ? "no such cgroup directory"
                                : fd == -ELOOP ? "a symlink is in the way; a cgroup is opened by its own path, never through a symlink" : nil)
        }
        let descriptor = Descriptor(owning: fd)
        var type: Int64 = 0
        guard bt_fstatfs_type(fd, &type) == 0, type == CgroupScanner.cgroup2Magic else {
            throw KernelError(.step(.openCgroup), path: directory, detail: "not a cgroup v2 directory")
        }
        return (descriptor, id)
    }
}
