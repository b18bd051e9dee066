/// A `BPF_F_*` map creation flag, by the name manifests use.
public enum MapFlag: String, CaseIterable, Sendable {
    case noPrealloc = "no_prealloc"
    case noCommonLRU = "no_common_lru"
    case numaNode = "numa_node"
    case rdonly
    case wronly
    case stackBuildID = "stack_build_id"
    case zeroSeed = "zero_seed"
    case rdonlyProg = "rdonly_prog"
    case wronlyProg = "wronly_prog"
    case mmapable
    case preserveElems = "preserve_elems"
    case innerMap = "inner_map"

    /// The bit in linux/bpf.h.
    public var bit: UInt32 {
        switch self {
        case .noPrealloc: 1 << 0
        case .noCommonLRU: 1 << 1
        case .numaNode: 1 << 2
        case .rdonly: 1 << 3
        case .wronly: 1 << 4
        case .stackBuildID: 1 << 5
        case .zeroSeed: 1 << 6
        case .rdonlyProg: 1 << 7
        case .wronlyProg: 1 << 8
        case .mmapable: 1 << 10
        case .preserveElems: 1 << 11
        case .innerMap: 1 << 12
        }
    }

    /// Names of the bits set in `flags`, with any unnamed bits in hex.
    public static func names(_ flags: UInt32) -> [String] {
        var rest = flags
        var names: [String] = []
        for flag in allCases where flags & flag.bit != 0 {
            names.append(flag.rawValue)
            rest &= ~flag.bit
        }
        if rest != 0 { names.append("0x" + String(rest, radix: 16)) }
        return names
    }
}
