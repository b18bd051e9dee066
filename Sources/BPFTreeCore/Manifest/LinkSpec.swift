import BPFTreeYAML

/// A `link:` entry: a declared program attached through a BPF link, and the link pinned.
public struct LinkSpec: Hashable, Sendable {
    public enum Target: Hashable, Sendable {
        /// The program attached to a cgroup (`BPF_LINK_TYPE_CGROUP`), e.g. `cgroup_inet_egress`.
        case cgroup(AttachType)
        /// A cgroup iterator (`BPF_LINK_TYPE_ITER`, target `cgroup`) anchored at the cgroup: reading the
        /// pin runs the program.
        case cgroupIterator(CgroupIteratorOrder)
    }

    /// The declared program (anchor-relative).
    public var program: TreePath
    /// The cgroup v2 directory: absolute, or relative to the cgroup v2 mount.
    public var cgroup: String
    public var target: Target
    /// The cgroup's id, filled by the kernel layer before planning.
    public var cgroupID: UInt64?
    /// Where its fields were written (`cgroup`, `program`).
    public var locations: [String: SourceLocation] = [:]

    public init(program: TreePath, cgroup: String, target: Target, cgroupID: UInt64? = nil) {
        self.program = program
        self.cgroup = cgroup
        self.target = target
        self.cgroupID = cgroupID
    }

    /// `BPF_LINK_TYPE_*`.
    public var kernelType: UInt32 {
        switch target {
        case .cgroup: 3
        case .cgroupIterator: 4
        }
    }

    public var summary: String {
        let id = cgroupID.map { " (id \($0))" } ?? ""
        switch target {
        case .cgroup(let attach): return "\(program) on cgroup \(cgroup)\(id) at \(attach.name)"
        case .cgroupIterator(let order): return "iterator \(program) on cgroup \(cgroup)\(id), \(order.rawValue)"
        }
    }

    /// A stable digest of what the link is (FNV-1a), kept in the ledger.
    public var fingerprint: UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) {
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
        }
        mix(program.text.utf8)
        mix([0])
        switch target {
        case .cgroup(let attach): mix("cgroup \(attach.kernelValue)".utf8)
        case .cgroupIterator(let order): mix("iter \(order.kernelValue)".utf8)
        }
        mix(withUnsafeBytes(of: (cgroupID ?? 0).littleEndian, Array.init))
        return hash == 0 ? 1 : hash
    }

    /// How a live link differs from this one; `programID`: the id of the program pinned at `program`, when
    /// it is the one the link should hold.
    public func differences(from live: LiveLinkInfo, programID: UInt32?) -> [FieldDifference] {
        var differences: [FieldDifference] = []
        if live.type != kernelType {
            differences.append(FieldDifference(field: "type", declared: LiveLinkInfo.typeName(kernelType),
                                               live: LiveLinkInfo.typeName(live.type)))
            return differences
        }
        switch target {
        case .cgroup(let attach):
            if live.attachType != attach.kernelValue {
                differences.append(FieldDifference(field: "attachType", declared: attach.name,
                                                   live: AttachType(kernelValue: live.attachType)?.name ?? "\(live.attachType)"))
            }
        case .cgroupIterator(let order):
            if live.iteratorTarget != "cgroup" {
                differences.append(FieldDifference(field: "iter", declared: "cgroup", live: live.iteratorTarget))
            }
            if live.iteratorOrder != order.kernelValue {
                differences.append(FieldDifference(field: "order", declared: order.rawValue,
                                                   live: CgroupIteratorOrder(kernelValue: live.iteratorOrder)?.rawValue ?? "\(live.iteratorOrder)"))
            }
        }
        if let cgroupID, live.cgroupID != cgroupID {
            differences.append(FieldDifference(field: "cgroup", declared: "\(cgroup) (id \(cgroupID))",
                                               live: live.cgroupID == 0 ? "a removed cgroup" : "cgroup id \(live.cgroupID)"))
        }
        if let programID, live.programID != programID {
            differences.append(FieldDifference(field: "program", declared: "\(program) (id \(programID))",
                                               live: "program id \(live.programID)"))
        }
        return differences
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
