import BPFTreeYAML

/// An iterator (`BPF_LINK_TYPE_ITER`): reading the pin runs the program over every object of its target.
public enum IteratorLink: Hashable, Sendable, LinkFamily {
    /// A cgroup iterator anchored at a cgroup v2 directory (absolute, or relative to the cgroup v2 mount).
    case cgroup(String, CgroupIteratorOrder)
    /// Over the elements of a declared map (`IteratorTargets.overMaps`: `bpf_map_elem`, `sockmap` over a
    /// sockmap's).
    case map(String, TreePath)
    /// A target that takes no parameters, e.g. `task`; a task iterator over one thread or process only
    /// when it has a scope.
    case plain(String, TaskScope?)

    /// What `bpf_link_info` reports of an iterator: its target, and the cgroup (id, order), map or
    /// task it walks (0 where it has none).
    public struct Live: Hashable, Sendable {
        public var target: String
        public var order: UInt32 = 0
        public var cgroupID: UInt64 = 0
        public var mapID: UInt32 = 0
        public var taskTID: UInt32 = 0
        public var taskPID: UInt32 = 0

        public init(target: String, order: UInt32 = 0, cgroupID: UInt64 = 0, mapID: UInt32 = 0, taskTID: UInt32 = 0, taskPID: UInt32 = 0) {
            (self.target, self.order, self.cgroupID, self.mapID, self.taskTID, self.taskPID) = (target, order, cgroupID, mapID, taskTID, taskPID)
        }
    }

    /// The iterator target, as the kernel names it.
    var name: String {
        switch self {
        case .cgroup: "cgroup"
        case .map(let name, _), .plain(let name, _): name
        }
    }

    var kernelType: UInt32 { 4 }
    var attachType: AttachType { .traceIter }

    func summary(_ program: TreePath, _ resolved: LinkResolution) -> String {
        switch self {
        case .cgroup(let cgroup, let order):
            "iterator \(program) on cgroup \(cgroup)\(resolved.cgroupID.map { " (id \($0))" } ?? ""), \(order.rawValue)"
        case .map(let target, let map): "iterator \(program) over \(target) of \(map)"
        case .plain(let target, let scope): "iterator \(program) over \(target)\(scope.map { " of \($0)" } ?? "")"
        }
    }

    func fingerprintText(_ resolved: LinkResolution) -> String {
        switch self {
        case .cgroup(_, let order): "iter \(order.kernelValue)"
        case .map(let target, let map): "map iterator \(target) \(map.text)"
        case .plain(let target, let scope): "iterator \(target)\(scope.map { " \($0)" } ?? "")"
        }
    }

    func differences(from info: LiveLinkInfo, _ resolved: LinkResolution) -> [FieldDifference] {
        guard case .iterator(let live) = info.details else { return [] }
        if live.target != name {
            var differences = [FieldDifference(field: "iter", declared: name, live: live.target)]
            if case .cgroup(let cgroup, let order) = self {
                differences += [Self.orderDifference(order, live), CgroupLink.cgroupDifference(cgroup, resolved, live.cgroupID)].compactMap { $0 }
            }
            return differences
        }
        switch self {
        case .cgroup(let cgroup, let order):
            return [Self.orderDifference(order, live), CgroupLink.cgroupDifference(cgroup, resolved, live.cgroupID)].compactMap { $0 }
        case .map:
            return []
        case .plain(_, let scope):
            guard (scope?.tid ?? 0, scope?.pid ?? 0) != (live.taskTID, live.taskPID) else { return [] }
            let liveScope = live.taskTID != 0 ? "thread \(live.taskTID)" : live.taskPID != 0 ? "process \(live.taskPID)" : "every task"
            return [FieldDifference(field: scope?.field ?? "pid", declared: scope?.description ?? "every task", live: liveScope)]
        }
    }

    private static func orderDifference(_ order: CgroupIteratorOrder, _ live: Live) -> FieldDifference? {
        live.order == order.kernelValue ? nil
            : FieldDifference(field: "order", declared: order.rawValue,
                              live: CgroupIteratorOrder(kernelValue: live.order)?.rawValue ?? "\(live.order)")
    }

    func problems(of spec: LinkSpec, image: ProgramImage, at path: TreePath, in tree: DesiredTree) -> [LinkProblem] {
        var problems: [LinkProblem] = []
        if case .map(let target, let map) = self, let problem = SockmapLink.mapProblem(map, in: tree, sockets: target == "sockmap") {
            problems.append(LinkProblem(field: "map", message: problem))
        }
        // The kernel takes the target from the program (its section `iter/TARGET`).
        if image.iteratorTarget != name {
            let found = image.iteratorTarget.map { "an iterator over \($0)" } ?? "not an iterator (section '\(image.section)')"
            problems += programProblem(spec, "\(found); this link is an iterator over \(name)")
        }
        return problems
    }
}

extension PinSpecDecoder {
    /// An iterator link (`iter:`).
    func iteratorLink(_ iterNode: YAMLNode, _ block: Fields, node: YAMLNode, _ field: String) -> LinkTarget? {
        guard let text = reader.string(iterNode, join(field, "iter")) else { return nil }
        let before = reader.diagnostics.count
        if text == "cgroup" {
            let order = block["order"].flatMap { reader.choice($0, join(field, "order"), CgroupIteratorOrder.self) }
            let cgroup = host("cgroup", block, node: node, field, required: reader.diagnostics.count == before, cgroupPath)
            guard let cgroup, reader.diagnostics.count == before else { return nil }
            return .iterator(.cgroup(cgroup, order ?? .selfOnly))
        } else if IteratorTargets.overMaps.contains(text) {
            return hosted("map", block, node: node, field, { reference($0, $1, placeholders: ["{cgroup.id}", "{cgroup.name}"]) }) {
                .iterator(.map(text, $0))
            }
        } else if IteratorTargets.plain.contains(text) {
            let scope = taskScope(block, field, target: text)
            guard reader.diagnostics.count == before else { return nil }
            return .iterator(.plain(text, scope))
        }
        let known = ["cgroup"] + IteratorTargets.overMaps + IteratorTargets.plain
        var message = "iterator '\(text)' is not supported; supported: \(known.joined(separator: ", "))"
        if let suggestion = closest(to: text, in: known) { message += "; did you mean '\(suggestion)'?" }
        reader.error(message, at: iterNode, join(field, "iter"))
        return nil
    }

    /// `pid: N` or `tid: N` of a task, task_file or task_vma iterator: the one process or thread it walks.
    private func taskScope(_ block: Fields, _ field: String, target: String) -> TaskScope? {
        let given = ["pid", "tid"].compactMap { name in block[name].map { (name, $0) } }
        guard let (name, node) = given.first else { return nil }
        guard TaskScope.targets.contains(target) else {
            reader.error("\(name) applies to task iterators (iter: \(TaskScope.targets.joined(separator: ", ")))", at: node, join(field, name))
            return nil
        }
        if given.count > 1 {
            reader.error("a task iterator walks one process (pid) or one thread (tid), not both", at: given[1].1, join(field, given[1].0))
            return nil
        }
        guard let id = reader.unsigned(node, join(field, name), max: UInt64(Int32.max)) else { return nil }
        guard id > 0 else {
            reader.error("\(name) must be a process or thread id above 0 (leave it out for every task)", at: node, join(field, name))
            return nil
        }
        return name == "pid" ? .process(UInt32(id)) : .thread(UInt32(id))
    }
}

/// `order` of a cgroup iterator (`enum bpf_cgroup_iter_order`).
public enum CgroupIteratorOrder: String, Sendable, CaseIterable {
    case selfOnly = "self_only"
    case descendantsPre = "descendants_pre"
    case descendantsPost = "descendants_post"
    case ancestorsUp = "ancestors_up"

    public var kernelValue: UInt32 {
        switch self {
        case .selfOnly: 1
        case .descendantsPre: 2
        case .descendantsPost: 3
        case .ancestorsUp: 4
        }
    }

    public init?(kernelValue: UInt32) {
        guard let match = Self.allCases.first(where: { $0.kernelValue == kernelValue }) else { return nil }
        self = match
    }
}

/// Iterator targets (`iter:`) a link takes without parameters, as the kernel names them
/// (`bpf_iter_reg.target`); `cgroup` takes a cgroup and is an `IteratorLink.cgroup`.
public enum IteratorTargets {
    /// Targets over the elements of a map, given as `map`.
    public static let overMaps = ["bpf_map_elem", "sockmap"]
    public static let plain = ["bpf_link", "bpf_map", "bpf_prog", "dmabuf", "ipv6_route", "kmem_cache", "ksym", "netlink",
                               "task", "task_file", "task_vma", "tcp", "udp", "unix"]
}

/// The one thread or process a task iterator walks (`bpf_iter_link_info.task`, Linux 6.1).
public enum TaskScope: Hashable, Sendable, CustomStringConvertible {
    case thread(UInt32)
    case process(UInt32)

    public var tid: UInt32 { if case .thread(let id) = self { id } else { 0 } }
    public var pid: UInt32 { if case .process(let id) = self { id } else { 0 } }
    /// The link field that declares it.
    public var field: String { if case .thread = self { "tid" } else { "pid" } }
    public var description: String {
        switch self {
        case .thread(let id): "thread \(id)"
        case .process(let id): "process \(id)"
        }
    }
    /// The targets that take one: what `pid`/`tid` apply to.
    public static let targets = ["task", "task_file", "task_vma"]
}
