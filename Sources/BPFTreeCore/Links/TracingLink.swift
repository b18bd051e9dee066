import BPFTreeYAML

/// A tracing or LSM program at the BTF target its section named when it was loaded (fentry, fexit,
/// fmod_ret, lsm: `BPF_LINK_TYPE_TRACING`; tp_btf: a raw tracepoint link), or a `raw_tracepoint` program
/// on a kernel tracepoint by name (`BPF_LINK_TYPE_RAW_TRACEPOINT`).
public enum TracingLink: Hashable, Sendable, LinkFamily {
    /// One of `AttachType.tracing`.
    case attach(AttachType)
    case rawTracepoint(String)

    /// What `bpf_link_info` reports of a tracing link (its attach type) or a raw tracepoint link (its
    /// tracepoint's name).
    public struct Live: Hashable, Sendable {
        public var attach: UInt32
        public var name: String

        public init(attach: UInt32 = 0, name: String = "") {
            (self.attach, self.name) = (attach, name)
        }
    }

    var kernelType: UInt32 {
        switch self {
        // A tp_btf program's link is a raw tracepoint link too (the kernel names its tracepoint).
        case .attach(let attach): attach == .traceRawTP ? 1 : 2
        case .rawTracepoint: 1
        }
    }

    var attachType: AttachType {
        switch self {
        case .attach(let attach): attach
        case .rawTracepoint: .traceRawTP
        }
    }

    func summary(_ program: TreePath, _ resolved: LinkResolution) -> String {
        switch self {
        case .attach(let attach): "\(program) at its \(attach.name) target"
        case .rawTracepoint(let name): "\(program) on raw tracepoint \(name)"
        }
    }

    func fingerprintText(_ resolved: LinkResolution) -> String {
        switch self {
        case .attach(let attach): "tracing \(attach.kernelValue)"
        case .rawTracepoint(let name): "raw_tp \(name)"
        }
    }

    func differences(from info: LiveLinkInfo, _ resolved: LinkResolution) -> [FieldDifference] {
        guard case .tracing(let live) = info.details else { return [] }
        switch self {
        case .attach(let attach):
            guard attach != .traceRawTP else { return [] }
            return attachDifference(attach, live.attach).map { [$0] } ?? []
        case .rawTracepoint(let name):
            return live.name == name ? [] : [FieldDifference(field: "rawTracepoint", declared: name, live: live.name)]
        }
    }

    func problems(of spec: LinkSpec, image: ProgramImage, at path: TreePath, in tree: DesiredTree) -> [LinkProblem] {
        let type = ProgramType(kernelValue: image.type)
        switch self {
        case .rawTracepoint:
            return programProblem(spec, type == .rawTracepoint || type == .rawTracepointWritable ? nil
                : "\(named(image)); a rawTracepoint link needs a raw_tracepoint program (section raw_tp/NAME); a tp_btf program takes attachType: trace_raw_tp")
        case .attach(let attach):
            guard type == .tracing || type == .lsm else {
                return programProblem(spec, "\(named(image)); a \(attach.name) link needs a tracing or LSM program (section fentry/, fexit/, fmod_ret/, tp_btf/ or lsm/)")
            }
            guard image.expectedAttachType == attach.kernelValue else {
                return programProblem(spec, "\(named(image)) loaded for \(AttachType(kernelValue: image.expectedAttachType)?.name ?? "attach type \(image.expectedAttachType)"); this link is \(attach.name)")
            }
            return []
        }
    }
}

extension PinSpecDecoder {
    /// A `rawTracepoint:` link.
    func rawTracepointLink(_ node: YAMLNode, _ field: String) -> LinkTarget? {
        guard let text = reader.string(node, field) else { return nil }
        guard Self.isEventName(text) else {
            reader.error("'\(text)' is not a raw tracepoint: write its name alone, e.g. sched_process_exec", at: node, field)
            return nil
        }
        return .tracing(.rawTracepoint(text))
    }
}
