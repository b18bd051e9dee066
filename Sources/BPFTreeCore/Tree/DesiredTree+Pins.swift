import BPFTreeYAML

extension DesiredTree {
    /// Lets the kernel layer fill in what only the kernel can tell about each declared program and link
    /// (`ProgramSpec.image`, `LinkSpec.cgroupID`); paths do not change.
    public mutating func resolvePins(_ body: (inout DesiredEntry.Kind, Origin) -> Void) {
        updateEntries { entry in
            guard let origin = entry.origin else { return }
            switch entry.kind {
            case .program, .link: body(&entry.kind, origin)
            case .directory, .map: break
            }
        }
    }

    /// Each program's bound maps must exist in its object with the declared map's type, key and value
    /// size (the program was compiled against them). Needs the programs' images.
    public func bindingProblems() -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        for entry in entries {
            guard case .program(let spec) = entry.kind, let image = spec.image, let origin = entry.origin else { continue }
            for binding in spec.maps {
                let field = "\(origin.field).program.maps.\(binding.name)"
                guard let own = image.objectMaps[binding.name], !own.internal else {
                    let names = image.objectMaps.filter { !$0.value.internal }.keys.sorted().joined(separator: ", ")
                    diagnostics.append(Diagnostic("\(spec.object) has no map named '\(binding.name)'; it has: \(names.isEmpty ? "none" : names)",
                                                  at: binding.location, field: field))
                    continue
                }
                guard case .map(let declared)? = self[binding.path]?.kind else { continue }
                var differences: [String] = []
                if own.type != declared.type.kernelValue {
                    differences.append("type \(MapType(kernelValue: own.type)?.rawValue ?? "\(own.type)") in the object, \(declared.type.rawValue) declared")
                }
                if own.keySize != declared.keySize { differences.append("keySize \(own.keySize) in the object, \(declared.keySize) declared") }
                if own.valueSize != declared.valueSize { differences.append("valueSize \(own.valueSize) in the object, \(declared.valueSize) declared") }
                if !differences.isEmpty {
                    diagnostics.append(Diagnostic("map \(binding.name) of \(spec.object) does not match '\(binding.path)': \(differences.joined(separator: "; "))",
                                                  at: binding.location, field: field))
                }
            }
        }
        return diagnostics
    }

    /// Each link's program must be one the link can attach: an iterator's program is for the declared
    /// iterator target (its section `iter/TARGET` says so; the kernel takes the target from the program),
    /// an XDP link's is an XDP program. Needs the programs' images.
    public func linkProblems() -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        for entry in entries {
            guard case .link(let spec) = entry.kind, let origin = entry.origin,
                  case .program(let program)? = self[spec.program]?.kind, let image = program.image else { continue }
            let location = spec.locations["program"] ?? origin.location
            let iterator: String?
            switch spec.target {
            case .iterator(let name, _): iterator = name
            case .cgroupIterator: iterator = "cgroup"
            case .mapIterator(let name): iterator = name
            case .cgroup, .xdp, .netns, .tcx, .tracepoint, .rawTracepoint, .uprobe, .uprobeMulti, .kprobeMulti, .kprobe, .tracing, .netfilter, .sockmap:
                iterator = nil
            }
            if let map = spec.map, let problem = mapProblem(spec, map) {
                diagnostics.append(Diagnostic(problem, at: spec.locations["map"] ?? origin.location, field: "\(origin.field).link.map"))
            }
            if let problem = Self.probeProgramProblem(spec.target, image) {
                diagnostics.append(Diagnostic("'\(spec.program)' is \(problem)", at: location, field: "\(origin.field).link.program"))
            }
            if let iterator, image.iteratorTarget != iterator {
                let found = image.iteratorTarget.map { "an iterator over \($0)" } ?? "not an iterator (section '\(image.section)')"
                diagnostics.append(Diagnostic("'\(spec.program)' is \(found); this link is an iterator over \(iterator)",
                                              at: location, field: "\(origin.field).link.program"))
            }
            if case .xdp = spec.target, image.type != ProgramType.xdp.kernelValue {
                let type = ProgramType(kernelValue: image.type)?.name ?? "type \(image.type)"
                diagnostics.append(Diagnostic("'\(spec.program)' is a \(type) program; an XDP link needs an xdp program",
                                              at: location, field: "\(origin.field).link.program"))
            }
            if case .tcx(_, let position) = spec.target {
                if image.type != ProgramType.schedCLS.kernelValue {
                    let type = ProgramType(kernelValue: image.type)?.name ?? "type \(image.type)"
                    diagnostics.append(Diagnostic("'\(spec.program)' is a \(type) program; a tcx link needs a sched_cls program (section \"tc\" or \"tcx/ingress\")",
                                                  at: location, field: "\(origin.field).link.program"))
                }
                if let relative = position?.relative, let problem = tcxRelativeProblem(spec, relative, path: entry.path) {
                    let name = if case .before? = position { "before" } else { "after" }
                    diagnostics.append(Diagnostic(problem, at: spec.locations[name] ?? origin.location, field: "\(origin.field).link.\(name)"))
                }
            }
        }
        return diagnostics
    }

    /// What is wrong with a probe or tracing link's program, as "a TYPE program; …".
    static func probeProgramProblem(_ target: LinkSpec.Target, _ image: ProgramImage) -> String? {
        let type = ProgramType(kernelValue: image.type)
        let named = "a \(type?.name ?? "type \(image.type)") program (section '\(image.section)')"
        switch target {
        case .tracepoint:
            return type == .tracepoint ? nil : "\(named); a tracepoint link needs a tracepoint program (section tp/CATEGORY/NAME)"
        case .rawTracepoint:
            return type == .rawTracepoint || type == .rawTracepointWritable ? nil
                : "\(named); a rawTracepoint link needs a raw_tracepoint program (section raw_tp/NAME); a tp_btf program takes attachType: trace_raw_tp"
        case .uprobe, .kprobe:
            guard type == .kprobe else { return "\(named); a probe link needs a kprobe program (section uprobe, kprobe, uretprobe or kretprobe)" }
            // The kernel takes a multi-probe program only in a multi-probe link (EINVAL from the perf event's).
            let multi = [AttachType.traceUprobeMulti, .traceKprobeMulti].first { $0.kernelValue == image.expectedAttachType }
            let (one, many) = if case .uprobe = target { ("function of a binary (uprobe: {symbol})", "symbols: [...]") }
                else { ("kernel function (kprobe: {function})", "functions: [...]") }
            return multi.map { "\(named) loaded for \($0.name); a link on one \(one) needs a kprobe program loaded without it: declare a second program from the same object, or give this link \(many)" }
        case .uprobeMulti:
            return type == .kprobe && image.expectedAttachType == AttachType.traceUprobeMulti.kernelValue ? nil
                : "\(named) loaded for \(AttachType(kernelValue: image.expectedAttachType)?.name ?? "attach type \(image.expectedAttachType)"); a uprobe link with symbols needs a kprobe program loaded for trace_uprobe_multi (program: {type: kprobe, attachType: trace_uprobe_multi}: Debian 12's libbpf 1.1 knows no uprobe.multi sections)"
        case .kprobeMulti:
            return type == .kprobe && image.expectedAttachType == AttachType.traceKprobeMulti.kernelValue ? nil
                : "\(named) loaded for \(AttachType(kernelValue: image.expectedAttachType)?.name ?? "attach type \(image.expectedAttachType)"); a kprobe link with functions needs a kprobe program loaded for trace_kprobe_multi (program: {type: kprobe, attachType: trace_kprobe_multi})"
        case .sockmap(let attach):
            let wanted: ProgramType? = attach.name == "sk_msg_verdict" ? ProgramType(name: "sk_msg") : ProgramType(name: "sk_skb")
            return type == wanted ? nil : "\(named); a \(attach.name) link needs a\(wanted.map { " \($0.name)" } ?? "n sk_skb") program"
        case .netfilter:
            return type == .netfilter ? nil
                : "\(named); a netfilter link needs a netfilter program (program: {type: netfilter}: Debian 12's libbpf 1.1 knows no netfilter section)"
        case .tracing(let attach):
            guard type == .tracing || type == .lsm else {
                return "\(named); a \(attach.name) link needs a tracing or LSM program (section fentry/, fexit/, fmod_ret/, tp_btf/ or lsm/)"
            }
            guard image.expectedAttachType == attach.kernelValue else {
                return "\(named) loaded for \(AttachType(kernelValue: image.expectedAttachType)?.name ?? "attach type \(image.expectedAttachType)"); this link is \(attach.name)"
            }
            return nil
        case .cgroup, .cgroupIterator, .iterator, .xdp, .netns, .tcx, .mapIterator:
            return nil
        }
    }

    /// Why a link cannot be on map `path`: it must be a declared map, a sockmap or sockhash for a sockmap
    /// link or iterator.
    private func mapProblem(_ spec: LinkSpec, _ path: TreePath) -> String? {
        guard case .map(let map)? = self[path]?.kind else { return "'\(path)' is not declared as a map" }
        switch spec.target {
        case .sockmap, .mapIterator("sockmap"):
            return map.type == .sockmap || map.type == .sockhash ? nil : "'\(path)' is a \(map.type.rawValue) map; this link needs a sockmap or sockhash"
        default:
            return nil
        }
    }

    /// Why a tcx link at `path` cannot go next to `relative`: it must be a declared program, or a declared
    /// tcx link on the same interface and hook that does not itself (through others) go next to this one.
    private func tcxRelativeProblem(_ spec: LinkSpec, _ relative: TreePath, path: TreePath) -> String? {
        var seen: Set<TreePath> = [path]
        var next: TreePath? = relative
        while let current = next {
            switch self[current]?.kind {
            case .program?:
                // The kernel places a link relative to a program only while that program is on the hook
                // (ENOENT, after the links being moved were detached): a declared tcx link must attach it there.
                let attached = entries.contains { entry in
                    guard entry.path != path, case .link(let other) = entry.kind, other.program == current,
                          case .tcx(let attach, _) = other.target else { return false }
                    return attach == spec.attachType && other.interface == spec.interface
                }
                return attached ? nil
                    : "'\(current)' is a declared program that no declared tcx link attaches at \(spec.attachType.name) of interface \(spec.interface ?? ""): a position relative to it cannot be kept; declare its link, or place this one relative to a link or program on the hook"
            case .link(let other)?:
                guard case .tcx(let attach, let position) = other.target, attach == spec.attachType, other.interface == spec.interface else {
                    return "'\(current)' is not a tcx link on interface \(spec.interface ?? "") at \(spec.attachType.name)"
                }
                guard seen.insert(current).inserted else {
                    return "'\(relative)' is placed relative to this link in turn: tcx positions must not form a cycle"
                }
                next = position?.relative
            default:
                return "'\(current)' is not declared as a program or a tcx link"
            }
        }
        return nil
    }
}
