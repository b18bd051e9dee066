import BPFTreeYAML

/// A tracepoint, kprobe or uprobe link through a perf event (`BPF_LINK_TYPE_PERF_EVENT`): a `tracepoint`
/// program on a kernel tracepoint, or a `kprobe` program on a kernel function or a function of a binary.
public enum ProbeLink: Hashable, Sendable, LinkFamily {
    /// Named as tracefs names it: `sched/sched_process_exec`.
    case tracepoint(category: String, name: String)
    case kprobe(KprobeTarget)
    case uprobe(UprobeTarget)

    /// What `bpf_link_info` reports of a perf event link: the event's kind (`PerfEventKind`), the
    /// tracepoint, kernel function or (uprobes) file, and the probe's offset.
    public struct Live: Hashable, Sendable {
        public var kind: UInt32
        public var name: String
        public var offset: UInt64

        public init(kind: UInt32, name: String, offset: UInt64 = 0) {
            (self.kind, self.name, self.offset) = (kind, name, offset)
        }
    }

    var kernelType: UInt32 { 7 }
    var attachType: AttachType { .perfEvent }

    var capabilityNeed: (Capability, String)? {
        if case .uprobe = self { (.sysAdmin, "opening a uprobe perf event") } else { (.perfmon, "opening a perf event") }
    }

    func summary(_ program: TreePath, _ resolved: LinkResolution) -> String {
        switch self {
        case .tracepoint(let category, let name): return "\(program) on tracepoint \(category)/\(name)"
        case .kprobe(let probe): return "\(program) as \(probe)"
        case .uprobe(let probe):
            let offset = if case .uprobe(_, let offset, _) = resolved { " (file offset 0x\(String(offset, radix: 16)))" } else { "" }
            return "\(program) as \(probe)\(offset)"
        }
    }

    func unobserved(_ resolved: LinkResolution) -> (field: String, value: String)? {
        guard case .uprobe(let probe) = self else { return nil }
        let identity = if case .uprobe(_, _, let identity) = resolved { identity } else { "?" }
        return ("uprobe", "\(probe.binary) as it is now (device:inode \(identity)), in \(probe.pid.map { "process \($0)" } ?? "every process")")
    }

    func fingerprintText(_ resolved: LinkResolution) -> String {
        switch self {
        case .tracepoint(let category, let name): return "tracepoint \(category)/\(name)"
        case .kprobe(let probe): return "\(probe)"
        case .uprobe(let probe):
            let identity = if case .uprobe(_, _, let identity) = resolved { identity } else { "" }
            return "\(probe) \(identity)"
        }
    }

    func differences(from info: LiveLinkInfo, _ resolved: LinkResolution) -> [FieldDifference] {
        guard case .probe(let live) = info.details else { return [] }
        switch self {
        case .tracepoint(let category, let name):
            return Self.eventDifference(live, kind: .tracepoint, field: "tracepoint", declared: name, shown: "\(category)/\(name)").map { [$0] } ?? []
        case .uprobe(let probe):
            let (file, offset): (String?, UInt64?) = if case .uprobe(let file, let offset, _) = resolved { (file, offset) } else { (nil, nil) }
            if let difference = Self.eventDifference(live, kind: probe.isReturn ? .uretprobe : .uprobe, field: "uprobe.binary",
                                                     declared: file ?? probe.binary, shown: probe.binary) {
                return [difference]
            }
            guard let offset, live.offset != offset else { return [] }
            return [FieldDifference(field: "uprobe.symbol", declared: "\(probe.location) (file offset 0x\(String(offset, radix: 16)))",
                                    live: "file offset 0x\(String(live.offset, radix: 16))")]
        case .kprobe(let probe):
            if let difference = Self.eventDifference(live, kind: probe.isReturn ? .kretprobe : .kprobe, field: "kprobe.function",
                                                     declared: probe.function, shown: probe.function) {
                return [difference]
            }
            return live.offset == probe.offset ? []
                : [FieldDifference(field: "kprobe.offset", declared: "\(probe.offset)", live: "\(live.offset)")]
        }
    }

    /// A perf event link's event kind and name against the declared ones.
    private static func eventDifference(_ live: Live, kind: PerfEventKind, field: String, declared: String,
                                        shown: String) -> FieldDifference? {
        if live.kind != kind.rawValue {
            return FieldDifference(field: "event", declared: kind.name,
                                   live: PerfEventKind(rawValue: live.kind)?.name ?? "perf event type \(live.kind)")
        }
        return live.name == declared ? nil : FieldDifference(field: field, declared: shown, live: live.name)
    }

    func problems(of spec: LinkSpec, image: ProgramImage, at path: TreePath, in tree: DesiredTree) -> [LinkProblem] {
        let type = ProgramType(kernelValue: image.type)
        switch self {
        case .tracepoint:
            return programProblem(spec, type == .tracepoint ? nil
                : "\(named(image)); a tracepoint link needs a tracepoint program (section tp/CATEGORY/NAME)")
        case .uprobe, .kprobe:
            guard type == .kprobe else {
                return programProblem(spec, "\(named(image)); a probe link needs a kprobe program (section uprobe, kprobe, uretprobe or kretprobe)")
            }
            // The kernel takes a multi-probe program only in a multi-probe link (EINVAL from the perf event's).
            let multi = [AttachType.traceUprobeMulti, .traceKprobeMulti].first { $0.kernelValue == image.expectedAttachType }
            let (one, many) = if case .uprobe = self { ("function of a binary (uprobe: {symbol})", "symbols: [...]") }
                else { ("kernel function (kprobe: {function})", "functions: [...]") }
            return programProblem(spec, multi.map {
                "\(named(image)) loaded for \($0.name); a link on one \(one) needs a kprobe program loaded without it: declare a second program from the same object, or give this link \(many)"
            })
        }
    }
}

/// `uprobe:` of a link: a function of a user-space binary (by ELF symbol, or by file offset), entered or
/// (`return: true`) returned from, in every process or one.
public struct UprobeTarget: Hashable, Sendable, CustomStringConvertible {
    /// The binary or library: an absolute path.
    public var binary: String
    /// The function's ELF symbol; nil: `offset` is a file offset.
    public var symbol: String?
    /// Bytes past the symbol, or the file offset when there is no symbol.
    public var offset: UInt64
    /// Only this process (nil: every process that maps the binary).
    public var pid: Int32?
    /// A uretprobe: runs when the function returns.
    public var isReturn: Bool

    public init(binary: String, symbol: String?, offset: UInt64 = 0, pid: Int32? = nil, isReturn: Bool = false) {
        (self.binary, self.symbol, self.offset, self.pid, self.isReturn) = (binary, symbol, offset, pid, isReturn)
    }

    /// As libbpf's section names write it: `/bin/app:add+0x4`.
    public var location: String {
        let at = symbol.map { offset == 0 ? $0 : "\($0)+0x\(String(offset, radix: 16))" } ?? "0x\(String(offset, radix: 16))"
        return "\(binary):\(at)"
    }

    public var description: String {
        "\(isReturn ? "uretprobe" : "uprobe") \(location)\(pid.map { " of process \($0)" } ?? "")"
    }
}

/// `kprobe:` of a link: a kernel function (plus an offset), entered or (`return: true`) returned from.
public struct KprobeTarget: Hashable, Sendable, CustomStringConvertible {
    public var function: String
    public var offset: UInt64
    public var isReturn: Bool

    public init(function: String, offset: UInt64 = 0, isReturn: Bool = false) {
        (self.function, self.offset, self.isReturn) = (function, offset, isReturn)
    }

    public var description: String {
        "\(isReturn ? "kretprobe" : "kprobe") \(function)\(offset == 0 ? "" : "+0x\(String(offset, radix: 16))")"
    }
}

/// `enum bpf_perf_event_type`: what a perf event link's event is.
public enum PerfEventKind: UInt32, Sendable {
    case uprobe = 1, uretprobe, kprobe, kretprobe, tracepoint

    public var name: String {
        switch self {
        case .uprobe: "uprobe"
        case .uretprobe: "uretprobe"
        case .kprobe: "kprobe"
        case .kretprobe: "kretprobe"
        case .tracepoint: "tracepoint"
        }
    }
}

extension PinSpecDecoder {
    /// A `tracepoint:` link.
    func tracepointLink(_ node: YAMLNode, _ field: String) -> LinkTarget? {
        guard let text = reader.string(node, field) else { return nil }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, parts.allSatisfy(Self.isEventName) else {
            reader.error("'\(text)' is not a tracepoint: write CATEGORY/NAME as tracefs lists it, e.g. sched/sched_process_exec", at: node, field)
            return nil
        }
        return .probe(.tracepoint(category: parts[0], name: parts[1]))
    }

    /// A `uprobe:` link: one function (`symbol`, `offset`), or with `symbols` a uprobe_multi link.
    func uprobeLink(_ node: YAMLNode, _ field: String) -> LinkTarget? {
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
        let symbols = block["symbols"].map { multiProbePatterns($0, block, field, list: "symbols", single: ["symbol", "offset"], link: "uprobe_multi") }
        if symbols == nil, block["symbol"] == nil, block["offset"] == nil {
            reader.error("a uprobe needs symbol (a function's ELF symbol), symbols (shell patterns) or offset (a file offset)", at: node, field)
        }
        guard let binary, reader.diagnostics.count == before else { return nil }
        if let symbols {
            return .multiProbe(.uprobe(UprobeMultiTarget(binary: binary, symbols: symbols, pid: pid.map { Int32($0) }, isReturn: isReturn)))
        }
        return .probe(.uprobe(UprobeTarget(binary: binary, symbol: symbol, offset: offset ?? 0, pid: pid.map { Int32($0) }, isReturn: isReturn)))
    }

    /// A `kprobe:` link: one kernel function (`function`, `offset`), or with `functions` a kprobe_multi link.
    func kprobeLink(_ node: YAMLNode, _ field: String) -> LinkTarget? {
        guard let block = reader.object(node, field, known: ["function", "functions", "offset", "return"]) else { return nil }
        let before = reader.diagnostics.count
        if let functionsNode = block["functions"] {
            let functions = multiProbePatterns(functionsNode, block, field, list: "functions", single: ["function", "offset"], link: "kprobe_multi")
            let isReturn = block["return"].flatMap { reader.bool($0, join(field, "return")) } ?? false
            guard reader.diagnostics.count == before else { return nil }
            return .multiProbe(.kprobe(KprobeMultiTarget(functions: functions, isReturn: isReturn)))
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
        return .probe(.kprobe(KprobeTarget(function: function, offset: offset ?? 0, isReturn: isReturn)))
    }

    /// A tracepoint's category or name as tracefs shows them: letters, digits and `_`, 1 to 255 bytes.
    static func isEventName(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count < 256
            && text.utf8.allSatisfy { $0 == UInt8(ascii: "_") || (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) }
    }

    /// A function's symbol: 1 to 255 bytes without white space, NUL or `/`.
    func symbolName(_ node: YAMLNode, _ field: String) -> String? {
        guard let text = reader.string(node, field) else { return nil }
        guard !text.isEmpty, text.utf8.count < 256, !text.utf8.contains(where: { $0 <= 32 || $0 == 127 || $0 == UInt8(ascii: "/") }) else {
            reader.error("'\(text)' is not a function's symbol name", at: node, field)
            return nil
        }
        return text
    }
}
