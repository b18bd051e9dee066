import BPFTreeYAML

/// Every matching function in one link: kernel functions (`BPF_LINK_TYPE_KPROBE_MULTI`, needs
/// `CONFIG_FPROBE`) or functions of a binary (`BPF_LINK_TYPE_UPROBE_MULTI`, Linux 6.6), for a `kprobe`
/// program loaded for `trace_kprobe_multi` or `trace_uprobe_multi`. Declared as `kprobe: {functions}` and
/// `uprobe: {symbols}` (`ProbeLink.swift` decodes both fields).
public enum MultiProbeLink: Hashable, Sendable, LinkFamily {
    case kprobe(KprobeMultiTarget)
    case uprobe(UprobeMultiTarget)

    /// What `bpf_link_info` reports of a multi-probe link: (uprobes) the file, how many offsets or
    /// functions, the offsets' digest (`offsetsDigest`, 0 when not read), the flags (1: return probes)
    /// and the process (0: every one).
    public struct Live: Hashable, Sendable {
        public var file: String
        public var count: Int
        public var digest: UInt64
        public var flags: UInt32
        public var pid: UInt32

        public init(file: String = "", count: Int, digest: UInt64 = 0, flags: UInt32 = 0, pid: UInt32 = 0) {
            (self.file, self.count, self.digest, self.flags, self.pid) = (file, count, digest, flags, pid)
        }
    }

    var kernelType: UInt32 { if case .kprobe = self { 8 } else { 12 } }
    var kernelSince: String? { if case .kprobe = self { nil } else { "Linux 6.6" } }
    var attachType: AttachType { if case .kprobe = self { .traceKprobeMulti } else { .traceUprobeMulti } }

    func summary(_ program: TreePath, _ resolved: LinkResolution) -> String {
        switch self {
        case .uprobe(let probe):
            let count = if case .uprobeMulti(_, let offsets) = resolved { " (\(offsets.count) functions)" } else { "" }
            return "\(program) as \(probe)\(count)"
        case .kprobe(let probe):
            let count = if case .kprobeMulti(let functions) = resolved { " (\(functions.count) functions)" } else { "" }
            return "\(program) as \(probe)\(count)"
        }
    }

    func fingerprintText(_ resolved: LinkResolution) -> String {
        switch self {
        case .uprobe(let probe): "\(probe)"
        case .kprobe(let probe): "\(probe)"
        }
    }

    func differences(from info: LiveLinkInfo, _ resolved: LinkResolution) -> [FieldDifference] {
        guard case .multiProbe(let live) = info.details else { return [] }
        switch self {
        case .uprobe(let probe):
            let (file, offsets): (String?, [UInt64]?) = if case .uprobeMulti(let file, let offsets) = resolved { (file, offsets) } else { (nil, nil) }
            if let file, live.file != file {
                return [FieldDifference(field: "uprobe.binary", declared: probe.binary, live: live.file)]
            } else if live.flags != probe.flags {
                return [FieldDifference(field: "uprobe.return", declared: "\(probe.isReturn)", live: "\(live.flags & 1 == 1)")]
            } else if live.pid != UInt32(probe.pid ?? 0) {
                return [FieldDifference(field: "uprobe.pid", declared: probe.pid.map(String.init) ?? "every process",
                                        live: live.pid == 0 ? "every process" : "\(live.pid)")]
            } else if let offsets, live.count != offsets.count || (live.digest != 0 && live.digest != offsetsDigest(offsets)) {
                return [FieldDifference(field: "uprobe.symbols", declared: "\(offsets.count) functions at their file offsets now",
                                        live: "\(live.count) functions at other offsets")]
            }
            return []
        case .kprobe(let probe):
            if live.flags != probe.flags {
                return [FieldDifference(field: "kprobe.return", declared: "\(probe.isReturn)", live: "\(live.flags & 1 == 1)")]
            } else if case .kprobeMulti(let functions) = resolved, live.count != functions.count {
                return [FieldDifference(field: "kprobe.functions", declared: "\(functions.count) functions", live: "\(live.count) functions")]
            }
            return []
        }
    }

    func problems(of spec: LinkSpec, image: ProgramImage, at path: TreePath, in tree: DesiredTree) -> [LinkProblem] {
        let loaded = "loaded for \(AttachType(kernelValue: image.expectedAttachType)?.name ?? "attach type \(image.expectedAttachType)")"
        let isKprobe = image.type == ProgramType.kprobe.kernelValue
        switch self {
        case .uprobe:
            return programProblem(spec, isKprobe && image.expectedAttachType == AttachType.traceUprobeMulti.kernelValue ? nil
                : "\(named(image)) \(loaded); a uprobe link with symbols needs a kprobe program loaded for trace_uprobe_multi (program: {type: kprobe, attachType: trace_uprobe_multi}: Debian 12's libbpf 1.1 knows no uprobe.multi sections)")
        case .kprobe:
            return programProblem(spec, isKprobe && image.expectedAttachType == AttachType.traceKprobeMulti.kernelValue ? nil
                : "\(named(image)) \(loaded); a kprobe link with functions needs a kprobe program loaded for trace_kprobe_multi (program: {type: kprobe, attachType: trace_kprobe_multi})")
        }
    }
}

/// `uprobe:` of a link with `symbols`: every function of a binary whose name matches one of the shell
/// patterns, in one uprobe_multi link (`BPF_LINK_TYPE_UPROBE_MULTI`, Linux 6.6).
public struct UprobeMultiTarget: Hashable, Sendable, CustomStringConvertible {
    public var binary: String
    /// Shell patterns (`fnmatch`), e.g. `bt_*`.
    public var symbols: [String]
    public var pid: Int32?
    public var isReturn: Bool

    public init(binary: String, symbols: [String], pid: Int32? = nil, isReturn: Bool = false) {
        (self.binary, self.symbols, self.pid, self.isReturn) = (binary, symbols, pid, isReturn)
    }

    /// `BPF_F_UPROBE_MULTI_RETURN`, or 0.
    public var flags: UInt32 { isReturn ? 1 : 0 }

    public var description: String {
        "\(isReturn ? "uretprobe" : "uprobe") multi \(binary):\(symbols.joined(separator: ","))\(pid.map { " of process \($0)" } ?? "")"
    }
}

/// `kprobe:` of a link with `functions`: every kernel function whose name matches one of the shell
/// patterns, in one kprobe_multi link (`BPF_LINK_TYPE_KPROBE_MULTI`, Linux 5.18, needs `CONFIG_FPROBE`).
public struct KprobeMultiTarget: Hashable, Sendable, CustomStringConvertible {
    public var functions: [String]
    public var isReturn: Bool

    public init(functions: [String], isReturn: Bool = false) {
        (self.functions, self.isReturn) = (functions, isReturn)
    }

    /// `BPF_F_KPROBE_MULTI_RETURN`, or 0.
    public var flags: UInt32 { isReturn ? 1 : 0 }

    public var description: String { "\(isReturn ? "kretprobe" : "kprobe") multi \(functions.joined(separator: ","))" }
}

/// FNV-1a over the little-endian bytes of `offsets`, as the shim digests a uprobe_multi link's.
public func offsetsDigest(_ offsets: [UInt64]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for offset in offsets {
        for byte in 0..<8 {
            hash ^= (offset >> (8 * UInt64(byte))) & 0xff
            hash = hash &* 0x100_0000_01b3
        }
    }
    return hash
}

extension PinSpecDecoder {
    /// The shell patterns of a multi-probe (`symbols`, `functions`), none of `single` beside them.
    func multiProbePatterns(_ node: YAMLNode, _ block: Fields, _ field: String, list: String, single: [String],
                            link: String) -> [String] {
        var patterns: [String] = []
        let items = reader.sequence(node, join(field, list))
        for index in items?.indices ?? 0..<0 {
            guard let item = items?[index] else { continue }
            if let pattern = symbolName(item, "\(join(field, list))[\(index)]") { patterns.append(pattern) }
        }
        if items?.isEmpty == true { reader.error("\(list) needs at least one pattern", at: node, join(field, list)) }
        let kind = list == "symbols" ? "uprobe" : "kprobe"
        for other in single {
            if let misplaced = block[other] {
                reader.error("\(other) is for a single \(kind); \(list) makes a \(link) link of every matching function",
                             at: misplaced, join(field, other))
            }
        }
        return patterns
    }
}
