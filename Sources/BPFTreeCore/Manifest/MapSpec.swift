/// The exact shape of a map a manifest declares, its initial contents, and whether to freeze it.
public struct MapSpec: Hashable, Sendable {
    public var type: MapType
    public var keySize: UInt32
    public var valueSize: UInt32
    public var maxEntries: UInt32
    public var flags: UInt32
    /// Kernel object name, `[A-Za-z0-9_.]{0,15}`.
    public var name: String
    public var numaNode: UInt32?
    public var mapExtra: UInt64
    /// Initial contents, written once when the map is created. Keys are empty for keyless types.
    public var contents: [MapEntry]
    public var freeze: Bool

    public init(type: MapType, keySize: UInt32, valueSize: UInt32, maxEntries: UInt32, flags: UInt32 = 0,
                name: String = "", numaNode: UInt32? = nil, mapExtra: UInt64 = 0, contents: [MapEntry] = [],
                freeze: Bool = false) {
        self.type = type
        self.keySize = keySize
        self.valueSize = valueSize
        self.maxEntries = maxEntries
        self.flags = flags
        self.name = name
        self.numaNode = numaNode
        self.mapExtra = mapExtra
        self.contents = contents
        self.freeze = freeze
    }

    /// Flags as the kernel reports them back in `bpf_map_info`: `BPF_F_RDONLY`/`BPF_F_WRONLY` are not
    /// retained, and DEVMAP/DEVMAP_HASH always report `BPF_F_RDONLY_PROG` (ARCHITECTURE.md, kernel facts).
    public var reportedFlags: UInt32 {
        var flags = self.flags & ~(MapFlag.rdonly.bit | MapFlag.wronly.bit)
        if type == .devmap || type == .devmapHash { flags |= MapFlag.rdonlyProg.bit }
        return flags
    }

    /// The fields that differ from a live map, by libbpf's reuse rule (`map_is_reuse_compat`): type, key
    /// size, value size, max entries, flags and map_extra. Name and BTF do not count.
    public func differences(from live: LiveMapInfo) -> [FieldDifference] {
        if type.kernelValue == live.type && keySize == live.keySize && valueSize == live.valueSize
            && maxEntries == live.maxEntries && reportedFlags == live.flags && mapExtra == live.mapExtra {
            return []
        }
        var result: [FieldDifference] = []
        func compare(_ field: String, _ want: String, _ have: String) {
            if want != have { result.append(FieldDifference(field: field, declared: want, live: have)) }
        }
        compare("type", type.rawValue, MapType(kernelValue: live.type)?.rawValue ?? "type \(live.type)")
        compare("keySize", String(keySize), String(live.keySize))
        compare("valueSize", String(valueSize), String(live.valueSize))
        compare("maxEntries", String(maxEntries), String(live.maxEntries))
        let flagsText = { (f: UInt32) in f == 0 ? "none" : MapFlag.names(f).joined(separator: ",") }
        compare("flags", flagsText(reportedFlags), flagsText(live.flags))
        compare("mapExtra", String(mapExtra), String(live.mapExtra))
        return result
    }

    /// One line describing the shape, e.g. `array key 4 value 8 max 16`.
    public var summary: String {
        var text = "\(type.rawValue) key \(keySize) value \(valueSize) max \(maxEntries)"
        if flags != 0 { text += " flags \(MapFlag.names(flags).joined(separator: ","))" }
        if mapExtra != 0 { text += " extra \(mapExtra)" }
        if !contents.isEmpty { text += ", \(contents.count) \(contents.count == 1 ? "entry" : "entries")" }
        if freeze { text += ", frozen" }
        return text
    }
}

/// One initial key/value pair, as the bytes the kernel receives.
public struct MapEntry: Hashable, Sendable {
    public var key: [UInt8]
    public var value: [UInt8]
    public init(key: [UInt8], value: [UInt8]) {
        self.key = key
        self.value = value
    }
}

/// A field whose declared and live values differ.
public struct FieldDifference: Hashable, Sendable, CustomStringConvertible {
    public var field: String
    public var declared: String
    public var live: String
    public var description: String { "\(field): declared \(declared), live \(live)" }
}
