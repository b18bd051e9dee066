/// A declared link with what the kernel layer found its target to be before planning
/// (`ResolvedTargets.links`): what the planner compares with a pinned link, what the ledger's fingerprint
/// is made of, and what a link action creates.
public struct ResolvedLink: Hashable, Sendable {
    /// The declaration, exactly as decoded.
    public var spec: LinkSpec
    public var resolution: LinkResolution

    public init(_ spec: LinkSpec, _ resolution: LinkResolution = .none) {
        (self.spec, self.resolution) = (spec, resolution)
    }

    public var summary: String { spec.target.family.summary(spec.program, resolution) }

    /// The declared field the kernel does not report back (`bpf_link_info` has no XDP mode and no tcx
    /// position): a change of it is found through `fingerprint`.
    public var unobserved: (field: String, value: String)? { spec.target.family.unobserved(resolution) }

    /// A stable digest of what the link is (FNV-1a), kept in the ledger: the same bytes for the same link
    /// in every version, or every recorded link would look changed.
    public var fingerprint: UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) {
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
        }
        mix(spec.program.text.utf8)
        mix([0])
        mix(spec.target.family.fingerprintText(resolution).utf8)
        mix(withUnsafeBytes(of: (resolution.cgroupID ?? 0).littleEndian, Array.init))
        return hash == 0 ? 1 : hash
    }

    /// How a live link differs from this one; `programID`: the id of the program pinned at `program`, when
    /// it is the one the link should hold.
    public func differences(from live: LiveLinkInfo, programID: UInt32?) -> [FieldDifference] {
        if live.type != spec.kernelType {
            return [FieldDifference(field: "type", declared: LiveLinkInfo.typeName(spec.kernelType), live: LiveLinkInfo.typeName(live.type))]
        }
        var differences = spec.target.family.differences(from: live, resolution)
        if let programID, live.programID != programID {
            differences.append(FieldDifference(field: "program", declared: "\(spec.program) (id \(programID))",
                                               live: "program id \(live.programID)"))
        }
        return differences
    }
}

/// What the kernel layer found a link's target to be before planning, by family.
public enum LinkResolution: Hashable, Sendable {
    case none
    /// A cgroup link's or cgroup iterator's cgroup id.
    case cgroup(id: UInt64)
    /// An XDP, tcx or netkit link's interface index.
    case interface(index: UInt32)
    /// A netns link's namespace inode (its id).
    case namespace(inode: UInt64)
    /// A tracepoint link's perf event id (tracefs `events/CATEGORY/NAME/id`).
    case tracepoint(id: UInt64)
    /// A uprobe's binary as the kernel reports it (symbolic links resolved), its file offset (the
    /// symbol's, plus `offset`) and the file's identity now (`DEVICE:INODE`): a binary replaced by another
    /// file leaves the link on the old one, which `bpf_link_info` of a perf event does not show.
    indirect case uprobe(file: String, offset: UInt64, identity: String)
    /// A uprobe_multi link's file and offsets (sorted).
    indirect case uprobeMulti(file: String, offsets: [UInt64])
    /// A kprobe_multi link's functions (sorted).
    indirect case kprobeMulti(functions: [String])

    public var cgroupID: UInt64? { if case .cgroup(let id) = self { id } else { nil } }
    public var interfaceIndex: UInt32? { if case .interface(let index) = self { index } else { nil } }
    public var namespaceInode: UInt64? { if case .namespace(let inode) = self { inode } else { nil } }
    public var tracepointID: UInt64? { if case .tracepoint(let id) = self { id } else { nil } }
}
