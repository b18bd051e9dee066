import BPFTreeYAML

/// Decodes `program:` and `link:` blocks. References to other entries (a program's maps, a link's
/// program) are anchor-relative paths; in a template they and a link's cgroup may hold placeholders.
struct PinSpecDecoder {
    var reader: NodeReader
    /// The manifest is a template (`forEachCgroup`): placeholders are allowed in references.
    var template: Bool

    static let programFields = ["object", "name", "type", "attachType", "maps", "globals"]
    static let linkFields = ["program", "cgroup", "interface", "netns", "map", "attachType", "xdpMode", "position", "before", "after",
                             "iter", "order", "pid", "tid"] + probeFields
    /// The fields that name a probe link's target, each implying its attach type.
    static let probeFields = ["tracepoint", "rawTracepoint", "uprobe", "kprobe", "netfilter"]

    func program(_ block: Fields, node: YAMLNode, _ field: String) -> ProgramSpec? {
        let before = reader.diagnostics.count
        var locations: [String: SourceLocation] = [:]
        for name in ["object", "name", "type"] { if let node = block[name] { locations[name] = node.location } }
        let object = block["object"].flatMap { reader.string($0, join(field, "object")) }
        if let object, object.isEmpty, let node = block["object"] {
            reader.error("object must name a BPF ELF file", at: node, join(field, "object"))
        }
        let name = block["name"].flatMap { reader.string($0, join(field, "name")) }
        let type = block["type"].flatMap { programType($0, join(field, "type")) }
        var attach = block["attachType"].flatMap { attachType($0, join(field, "attachType")) }
        // The kernel loads a netfilter program only for its one attach type; libbpf 1.1 cannot say it.
        if type == .netfilter, block["attachType"] == nil { attach = .netfilter }
        var maps: [MapBinding] = []
        if let mapsNode = block["maps"], let pairs = reader.mapping(mapsNode, join(field, "maps")) {
            for (mapName, keyNode, value) in pairs {
                let mapField = join(join(field, "maps"), mapName)
                guard let path = reference(value, mapField, placeholders: ["{cgroup.id}", "{cgroup.name}"]) else { continue }
                maps.append(MapBinding(name: mapName, path: path, location: keyNode.location))
            }
        }
        var globals: [GlobalAssignment] = []
        if let globalsNode = block["globals"], let pairs = reader.mapping(globalsNode, join(field, "globals")) {
            for (variable, keyNode, value) in pairs {
                if let decoded = globalValue(value, join(join(field, "globals"), variable), depth: 0) {
                    globals.append(GlobalAssignment(name: variable, value: decoded, location: keyNode.location))
                }
            }
        }
        guard let object, let name, reader.diagnostics.count == before else { return nil }
        var spec = ProgramSpec(object: object, objectPath: Self.resolve(object, besides: node.location.file), program: name,
                               type: type, attachType: attach, maps: maps)
        spec.globals = globals.sorted { Array($0.name.utf8).lexicographicallyPrecedes($1.name.utf8) }
        spec.locations = locations
        return spec
    }

    /// A global's value: an integer, `true`/`false`, a string (quoted, or plain when it is neither), or a
    /// list of those for an array.
    private func globalValue(_ node: YAMLNode, _ field: String, depth: Int) -> GlobalValue? {
        switch node.value {
        case .scalar(let scalar) where !node.isNull:
            if scalar.isPlain {
                if let integer = IntegerLiteral(scalar.text) { return .integer(negative: integer.isNegative, magnitude: integer.magnitude) }
                switch scalar.text {
                case "true", "True", "TRUE": return .bool(true)
                case "false", "False", "FALSE": return .bool(false)
                default: break
                }
            }
            return .string(scalar.text)
        case .sequence(let items) where depth == 0:
            var values: [GlobalValue] = []
            for (index, item) in items.enumerated() {
                guard let value = globalValue(item, "\(field)[\(index)]", depth: 1) else { return nil }
                values.append(value)
            }
            return .list(values)
        default:
            reader.error(depth == 0 ? "expected an integer, true or false, a string or a list of those, found \(reader.describe(node))"
                                    : "expected an integer, true or false or a string, found \(reader.describe(node))",
                         at: node, field)
            return nil
        }
    }

    func link(_ block: Fields, node: YAMLNode, _ field: String) -> LinkSpec? {
        let before = reader.diagnostics.count
        var locations: [String: SourceLocation] = [:]
        for name in ["program", "cgroup", "interface", "netns", "map", "position", "before", "after", "pid", "tid"] + Self.probeFields {
            if let node = block[name] { locations[name] = node.location }
        }
        let program = block["program"].flatMap { reference($0, join(field, "program"), placeholders: ["{cgroup.id}", "{cgroup.name}"]) }
        var target: LinkSpec.Target?
        var on = LinkHost.cgroup
        let probes = Self.probeFields.filter { block[$0] != nil }
        if probes.count > 1, let second = probes.dropFirst().first, let node = block[second] {
            reader.error("a link has one of \(Self.probeFields.joined(separator: ", ")), not \(probes.joined(separator: " and "))",
                         at: node, join(field, second))
        }
        if let probe = probes.first, let probeNode = block[probe] {
            on = .probe(probe)
            target = probeTarget(probe, probeNode, join(field, probe))
            let implied: AttachType = switch target {
            case .rawTracepoint?: .traceRawTP
            case .uprobeMulti?: .traceUprobeMulti
            case .kprobeMulti?: .traceKprobeMulti
            case .netfilter?: .netfilter
            default: .perfEvent
            }
            if let attachNode = block["attachType"], let attach = attachType(attachNode, join(field, "attachType")), attach != implied {
                reader.error("a \(probe) link's attach type is \(implied.name) (attachType may be left out)", at: attachNode, join(field, "attachType"))
            }
            if let iterNode = block["iter"] {
                reader.error("iter makes an iterator link; this link is a \(probe) link", at: iterNode, join(field, "iter"))
            }
            if let order = block["order"] {
                reader.error("order applies to cgroup iterators (iter: cgroup)", at: order, join(field, "order"))
            }
        } else {
        switch (block["attachType"], block["iter"]) {
        case (let attachNode?, nil):
            if let order = block["order"] {
                reader.error("order applies to iterator links (iter: cgroup)", at: order, join(field, "order"))
            }
            if let attach = attachType(attachNode, join(field, "attachType")) {
                if attach.isCgroup {
                    target = .cgroup(attach)
                } else if attach == .xdp {
                    on = .interface
                    target = .xdp(block["xdpMode"].flatMap { reader.choice($0, join(field, "xdpMode"), XDPMode.self) })
                } else if AttachType.multiProgramHooks.contains(attach) {
                    on = .interface
                    target = .tcx(attach, tcxPosition(block, field))
                } else if attach == .skLookup || attach == .flowDissector {
                    on = .netns
                    target = .netns(attach)
                } else if AttachType.sockmap.contains(attach) {
                    on = .map
                    target = .sockmap(attach)
                } else if AttachType.tracing.contains(attach) {
                    on = .probe(attach.name)
                    target = .tracing(attach)
                } else if attach == .perfEvent {
                    reader.error("a perf_event link needs one of tracepoint, uprobe or kprobe", at: attachNode, join(field, "attachType"))
                } else {
                    reader.error("attach type \(attach.name) is not supported for links; supported: xdp, tcx_ingress, tcx_egress, netkit_primary, netkit_peer, sk_lookup, flow_dissector, \(AttachType.sockmap.map(\.name).joined(separator: ", ")), netfilter, \(AttachType.tracing.map(\.name).joined(separator: ", ")), perf_event, trace_uprobe_multi and the cgroup attach types (\(AttachType.cgroupNames.joined(separator: ", ")))",
                                 at: attachNode, join(field, "attachType"))
                }
            }
        case (nil, let iterNode?):
            if let text = reader.string(iterNode, join(field, "iter")) {
                if text == "cgroup" {
                    let order = block["order"].flatMap { reader.choice($0, join(field, "order"), CgroupIteratorOrder.self) }
                    target = .cgroupIterator(order ?? .selfOnly)
                } else if IteratorTargets.overMaps.contains(text) {
                    on = .map
                    target = .mapIterator(text)
                    if let order = block["order"] {
                        reader.error("order applies to cgroup iterators (iter: cgroup)", at: order, join(field, "order"))
                    }
                } else if IteratorTargets.plain.contains(text) {
                    on = .none(iterating: text)
                    target = .iterator(text, taskScope(block, field, target: text))
                    if let order = block["order"] {
                        reader.error("order applies to cgroup iterators (iter: cgroup)", at: order, join(field, "order"))
                    }
                } else {
                    let known = ["cgroup"] + IteratorTargets.overMaps + IteratorTargets.plain
                    var message = "iterator '\(text)' is not supported; supported: \(known.joined(separator: ", "))"
                    if let suggestion = closest(to: text, in: known) { message += "; did you mean '\(suggestion)'?" }
                    reader.error(message, at: iterNode, join(field, "iter"))
                }
            }
        case (.some, .some):
            reader.error("a link has either attachType (a cgroup, XDP or network namespace link) or iter (an iterator link), not both", at: node, field)
        case (nil, nil):
            reader.error("a link needs attachType (e.g. cgroup_inet_egress, xdp), iter (e.g. cgroup, task) or one of \(Self.probeFields.joined(separator: ", "))",
                         at: node, field)
        }
        }
        if let xdpMode = block["xdpMode"], target.map({ if case .xdp = $0 { true } else { false } }) != true {
            reader.error("xdpMode applies to XDP links (attachType: xdp)", at: xdpMode, join(field, "xdpMode"))
        }
        if target.map({ if case .iterator = $0 { true } else { false } }) != true {
            for name in ["pid", "tid"] {
                guard let misplaced = block[name] else { continue }
                reader.error("\(name) applies to task iterators (iter: \(TaskScope.targets.joined(separator: ", ")))", at: misplaced, join(field, name))
            }
        }
        if target.map({ if case .tcx = $0 { true } else { false } }) != true {
            for name in ["position", "before", "after"] {
                guard let misplaced = block[name] else { continue }
                reader.error("\(name) applies to tcx and netkit links (attachType: tcx_ingress, tcx_egress, netkit_primary, netkit_peer)", at: misplaced, join(field, name))
            }
        }
        for other in LinkHost.withFields where other != on {
            guard let name = other.field, let misplaced = block[name] else { continue }
            reader.error("\(name) applies to \(other.links); this link is \(on.description)", at: misplaced, join(field, name))
        }
        if let host = on.field, block[host] == nil, target != nil {
            reader.error("missing required field '\(host)'", at: node, join(field, host))
        }
        let cgroup = on == .cgroup ? block["cgroup"].flatMap { cgroupPath($0, join(field, "cgroup")) } : nil
        let interface = on == .interface ? block["interface"].flatMap { interfaceName($0, join(field, "interface")) } : nil
        let netns = on == .netns ? block["netns"].flatMap { namespacePath($0, join(field, "netns")) } : nil
        let map = on == .map ? block["map"].flatMap { reference($0, join(field, "map"), placeholders: ["{cgroup.id}", "{cgroup.name}"]) } : nil
        guard let program, let target, on.field == nil || cgroup != nil || interface != nil || netns != nil || map != nil,
              reader.diagnostics.count == before else { return nil }
        var spec = LinkSpec(program: program, cgroup: cgroup, interface: interface, netns: netns, target: target)
        spec.map = map
        spec.locations = locations
        return spec
    }

    /// The target of a probe link's `field` (`tracepoint`, `rawTracepoint`, `uprobe`, `kprobe`).
    private func probeTarget(_ probe: String, _ node: YAMLNode, _ field: String) -> LinkSpec.Target? {
        switch probe {
        case "tracepoint":
            guard let text = reader.string(node, field) else { return nil }
            let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, parts.allSatisfy(Self.isEventName) else {
                reader.error("'\(text)' is not a tracepoint: write CATEGORY/NAME as tracefs lists it, e.g. sched/sched_process_exec", at: node, field)
                return nil
            }
            return .tracepoint(category: parts[0], name: parts[1])
        case "rawTracepoint":
            guard let text = reader.string(node, field) else { return nil }
            guard Self.isEventName(text) else {
                reader.error("'\(text)' is not a raw tracepoint: write its name alone, e.g. sched_process_exec", at: node, field)
                return nil
            }
            return .rawTracepoint(text)
        case "uprobe":
            guard let block = reader.object(node, field, known: ["binary", "symbol", "symbols", "offset", "pid", "return"], required: ["binary"])
            else { return nil }
            let before = reader.diagnostics.count
            let binary = block["binary"].flatMap { reader.string($0, join(field, "binary")) }
            if let binary, let binaryNode = block["binary"], !binary.hasPrefix("/") || binary.utf8.contains(0) {
                reader.error("'\(binary)' must be the absolute path of an executable or library", at: binaryNode, join(field, "binary"))
            }
            let symbol = block["symbol"].flatMap { symbolName($0, join(field, "symbol")) }
            let offset = block["offset"].flatMap { reader.unsigned($0, join(field, "offset"), max: UInt64(UInt32.max)) }
            let pid = block["pid"].flatMap { reader.unsigned($0, join(field, "pid"), max: UInt64(Int32.max)) }
            if let pidNode = block["pid"], pid == 0 {
                reader.error("pid 0 is no process; leave pid out to probe every process", at: pidNode, join(field, "pid"))
            }
            let isReturn = block["return"].flatMap { reader.bool($0, join(field, "return")) } ?? false
            var symbols: [String]?
            if let symbolsNode = block["symbols"] {
                symbols = []
                let items = reader.sequence(symbolsNode, join(field, "symbols"))
                for index in items?.indices ?? 0..<0 {
                    guard let item = items?[index] else { continue }
                    if let pattern = symbolName(item, "\(join(field, "symbols"))[\(index)]") { symbols?.append(pattern) }
                }
                if items?.isEmpty == true { reader.error("symbols needs at least one pattern", at: symbolsNode, join(field, "symbols")) }
                for other in ["symbol", "offset"] {
                    if let misplaced = block[other] {
                        reader.error("\(other) is for a single uprobe; symbols makes a uprobe_multi link of every matching function",
                                     at: misplaced, join(field, other))
                    }
                }
            } else if block["symbol"] == nil, block["offset"] == nil {
                reader.error("a uprobe needs symbol (a function's ELF symbol), symbols (shell patterns) or offset (a file offset)", at: node, field)
            }
            guard let binary, reader.diagnostics.count == before else { return nil }
            if let symbols {
                return .uprobeMulti(UprobeMultiTarget(binary: binary, symbols: symbols, pid: pid.map { Int32($0) }, isReturn: isReturn))
            }
            return .uprobe(UprobeTarget(binary: binary, symbol: symbol, offset: offset ?? 0, pid: pid.map { Int32($0) }, isReturn: isReturn))
        case "netfilter":
            guard let block = reader.object(node, field, known: ["family", "hook", "priority", "defrag"], required: ["family", "hook", "priority"])
            else { return nil }
            let family = block["family"].flatMap { reader.choice($0, join(field, "family"), NetfilterHook.Family.self) }
            let hook = block["hook"].flatMap { reader.choice($0, join(field, "hook"), NetfilterHook.Hook.self) }
            var priority: Int32?
            if let node = block["priority"], let value = reader.integer(node, join(field, "priority")) {
                // The kernel keeps the ends for itself (NF_IP_PRI_FIRST, NF_IP_PRI_LAST).
                let limit = UInt64(Int32.max) - 1
                if value.magnitude > limit {
                    reader.error("\(value) is out of range -\(limit)...\(limit)", at: node, join(field, "priority"))
                } else {
                    priority = value.isNegative ? -Int32(value.magnitude) : Int32(value.magnitude)
                }
            }
            let defrag = block["defrag"].flatMap { reader.bool($0, join(field, "defrag")) } ?? false
            guard let family, let hook, let priority else { return nil }
            return .netfilter(NetfilterHook(family: family, hook: hook, priority: priority, defrag: defrag))
        default:
            guard let block = reader.object(node, field, known: ["function", "functions", "offset", "return"]) else { return nil }
            let before = reader.diagnostics.count
            if let functionsNode = block["functions"] {
                var functions: [String] = []
                let items = reader.sequence(functionsNode, join(field, "functions"))
                for index in items?.indices ?? 0..<0 {
                    guard let item = items?[index] else { continue }
                    if let pattern = symbolName(item, "\(join(field, "functions"))[\(index)]") { functions.append(pattern) }
                }
                if items?.isEmpty == true { reader.error("functions needs at least one pattern", at: functionsNode, join(field, "functions")) }
                for other in ["function", "offset"] {
                    if let misplaced = block[other] {
                        reader.error("\(other) is for a single kprobe; functions makes a kprobe_multi link of every matching function",
                                     at: misplaced, join(field, other))
                    }
                }
                let isReturn = block["return"].flatMap { reader.bool($0, join(field, "return")) } ?? false
                guard reader.diagnostics.count == before else { return nil }
                return .kprobeMulti(KprobeMultiTarget(functions: functions, isReturn: isReturn))
            }
            if block["function"] == nil {
                reader.error("a kprobe needs function (a kernel function) or functions (shell patterns)", at: node, field)
                return nil
            }
            let function = block["function"].flatMap { symbolName($0, join(field, "function")) }
            let offset = block["offset"].flatMap { reader.unsigned($0, join(field, "offset"), max: UInt64(UInt32.max)) }
            let isReturn = block["return"].flatMap { reader.bool($0, join(field, "return")) } ?? false
            if let offsetNode = block["offset"], isReturn, offset != 0 {
                reader.error("a kretprobe is on the function's return, without an offset", at: offsetNode, join(field, "offset"))
            }
            guard let function, reader.diagnostics.count == before else { return nil }
            return .kprobe(KprobeTarget(function: function, offset: offset ?? 0, isReturn: isReturn))
        }
    }

    /// A tracepoint's category or name as tracefs shows them: letters, digits and `_`, 1 to 255 bytes.
    private static func isEventName(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count < 256
            && text.utf8.allSatisfy { $0 == UInt8(ascii: "_") || (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) }
    }

    /// A function's symbol: 1 to 255 bytes without white space, NUL or `/`.
    private func symbolName(_ node: YAMLNode, _ field: String) -> String? {
        guard let text = reader.string(node, field) else { return nil }
        guard !text.isEmpty, text.utf8.count < 256, !text.utf8.contains(where: { $0 <= 32 || $0 == 127 || $0 == UInt8(ascii: "/") }) else {
            reader.error("'\(text)' is not a function's symbol name", at: node, field)
            return nil
        }
        return text
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

    /// Where a tcx link goes: `position: first|last`, or `before`/`after` a declared program or tcx link;
    /// at most one of the three.
    private func tcxPosition(_ block: Fields, _ field: String) -> TCXPosition? {
        let given = ["position", "before", "after"].compactMap { name in block[name].map { (name, $0) } }
        if given.count > 1, let second = given.dropFirst().first {
            reader.error("a tcx link has at most one of position, before and after", at: second.1, join(field, second.0))
            return nil
        }
        guard let (name, node) = given.first else { return nil }
        if name == "position" {
            return reader.choice(node, join(field, name), TCXEnd.self).map { $0 == .first ? .first : .last }
        }
        guard let path = reference(node, join(field, name), placeholders: ["{cgroup.id}", "{cgroup.name}"]) else { return nil }
        return name == "before" ? .before(path) : .after(path)
    }

    /// A network namespace file: an absolute path such as `/proc/PID/ns/net` or `/run/netns/NAME`.
    private func namespacePath(_ node: YAMLNode, _ field: String) -> String? {
        guard let text = reader.string(node, field) else { return nil }
        guard text.hasPrefix("/"), !text.utf8.contains(0) else {
            reader.error("'\(text)' must be the absolute path of a network namespace file, e.g. /proc/PID/ns/net or /run/netns/NAME", at: node, field)
            return nil
        }
        return text
    }

    /// A network interface name as the kernel takes it (`dev_valid_name`): 1–15 bytes, not `.` or `..`,
    /// without `/`, `:` or white space.
    private func interfaceName(_ node: YAMLNode, _ field: String) -> String? {
        guard let text = reader.string(node, field) else { return nil }
        let bytes = Array(text.utf8)
        if bytes.isEmpty || bytes.count > 15 || text == "." || text == ".."
            || bytes.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ":") || $0 <= 32 || $0 == 127 }) {
            reader.error("'\(text)' is not a network interface name (1 to 15 bytes, no '/', ':' or white space)", at: node, field)
            return nil
        }
        return text
    }

    /// An anchor-relative path to another entry; placeholders only in a template.
    private func reference(_ node: YAMLNode, _ field: String, placeholders: [String]) -> TreePath? {
        guard let text = reader.string(node, field) else { return nil }
        if let problem = placeholderProblem(text, placeholders) {
            reader.error(problem, at: node, field)
            return nil
        }
        let filled = CgroupTemplate.fill(text, with: Cgroup(id: 1, name: "x", path: "x"), source: CgroupSource(path: "x", depth: 1))
        switch TreePath.parse(relative: filled) {
        case .success: return TreePath(joined: text)
        case .failure(let problem):
            reader.error("'\(text)' is not an anchor-relative path: \(problem.message)", at: node, field)
            return nil
        }
    }

    /// A cgroup v2 directory: absolute or relative to the cgroup v2 mount, without `.`/`..` segments.
    private func cgroupPath(_ node: YAMLNode, _ field: String) -> String? {
        guard let text = reader.string(node, field) else { return nil }
        if let problem = placeholderProblem(text, CgroupTemplate.linkPlaceholders) {
            reader.error(problem, at: node, field)
            return nil
        }
        if text.isEmpty || text.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) {
            reader.error("'\(text)' must name a cgroup directory, without '.' or '..' segments", at: node, field)
            return nil
        }
        return text
    }

    private func placeholderProblem(_ text: String, _ allowed: [String]) -> String? {
        switch CgroupTemplate.placeholders(in: text) {
        case .failure(let problem):
            return problem.message
        case .success(let found):
            guard let first = found.first else { return nil }
            guard template else { return "placeholders such as \(first) need spec.forEachCgroup" }
            guard let unknown = found.first(where: { !allowed.contains($0) }) else { return nil }
            return "unknown placeholder '\(unknown)' here; known: \(allowed.joined(separator: ", "))"
        }
    }

    private func programType(_ node: YAMLNode, _ field: String) -> ProgramType? {
        guard let text = reader.string(node, field) else { return nil }
        if let type = ProgramType(name: text) { return type }
        var message = "unknown program type '\(text)'"
        if let suggestion = closest(to: text, in: ProgramType.allNames) { message += "; did you mean '\(suggestion)'?" }
        reader.error(message, at: node, field)
        return nil
    }

    private func attachType(_ node: YAMLNode, _ field: String) -> AttachType? {
        guard let text = reader.string(node, field) else { return nil }
        if let type = AttachType(name: text) { return type }
        var message = "unknown attach type '\(text)'"
        if let suggestion = closest(to: text, in: AttachType.names) { message += "; did you mean '\(suggestion)'?" }
        reader.error(message, at: node, field)
        return nil
    }

    /// `object` relative to the directory of the manifest `file` (absolute stays as is).
    static func resolve(_ object: String, besides file: String) -> String {
        guard !object.hasPrefix("/"), let slash = file.lastIndex(of: "/") else { return object }
        return String(file[...slash]) + object
    }
}

/// `position:` of a tcx link.
private enum TCXEnd: String, CaseIterable {
    case first, last
}

/// What a link is attached to, and the `link:` field that names it.
private enum LinkHost: Equatable {
    case cgroup, interface, netns, map
    /// An iterator over a target that takes no parameters: attached to nothing.
    case none(iterating: String)
    /// A tracepoint or probe, named by its own field (or, for tracing programs, by the program).
    case probe(String)

    static let withFields: [LinkHost] = [.cgroup, .interface, .netns, .map]

    var field: String? {
        switch self {
        case .cgroup: "cgroup"
        case .interface: "interface"
        case .netns: "netns"
        case .map: "map"
        case .none, .probe: nil
        }
    }

    /// The links whose host this is.
    var links: String {
        switch self {
        case .cgroup: "cgroup links and iterators"
        case .interface: "XDP, tcx and netkit links (attachType: xdp, tcx_ingress, tcx_egress, netkit_primary, netkit_peer)"
        case .netns: "network namespace links (attachType: sk_lookup, flow_dissector)"
        case .map: "map iterators (iter: bpf_map_elem, sockmap) and sockmap links (attachType: sk_msg_verdict, sk_skb_stream_parser, sk_skb_stream_verdict, sk_skb_verdict)"
        case .none, .probe: "no link"
        }
    }

    var description: String {
        switch self {
        case .cgroup: "on a cgroup"
        case .interface: "on an interface"
        case .netns: "on a network namespace"
        case .map: "on a map"
        case .none(let target): "an iterator over \(target)"
        case .probe(let kind): "a \(kind) link"
        }
    }
}

