import BPFTreeYAML

/// A `program:` entry: one program of a BPF ELF object, loaded with libbpf and pinned.
public struct ProgramSpec: Hashable, Sendable {
    /// The object file: as written, and the path it is read from (relative to the manifest's directory).
    public var object: String
    public var objectPath: String
    /// The program's function name in the object.
    public var program: String
    /// Declared where libbpf cannot infer it from the section name; where it can, it must agree.
    public var type: ProgramType?
    public var attachType: AttachType?
    /// Maps of the object that use a declared map instead of their own, sorted by name.
    public var maps: [MapBinding]
    /// Variables of the object's `.rodata`, `.data` and `.bss` set before it is loaded, sorted by name.
    public var globals: [GlobalAssignment] = []
    /// Where the program was declared (its manifest, and a template instance's root): programs of one
    /// object are loaded together only within one declaration scope (`loadKey`).
    public var scope: String = ""
    /// What loading it gives, filled by the kernel layer before planning (`ProgramImage`).
    public var image: ProgramImage?
    /// Where its fields were written (`object`, `name`, `type`), for errors found when it is loaded.
    public var locations: [String: SourceLocation] = [:]

    public init(object: String, objectPath: String, program: String, type: ProgramType? = nil,
                attachType: AttachType? = nil, maps: [MapBinding] = [], image: ProgramImage? = nil) {
        self.object = object
        self.objectPath = objectPath
        self.program = program
        self.type = type
        self.attachType = attachType
        self.maps = maps.sorted { $0.name < $1.name }
        self.image = image
    }

    /// E.g. `count_egress from job_stats.bpf.o (cgroup_skb, tag 0a1b...)`.
    public var summary: String {
        var text = "\(program) from \(object)"
        if let image {
            text += " (\(ProgramType(kernelValue: image.type)?.name ?? "type \(image.type)"), tag \(image.tagHex))"
        } else if let type {
            text += " (\(type.name))"
        }
        return text
    }
}

/// One map of an object bound to a declared map pin: `maps: {counters: jobs/A/counters}`.
public struct MapBinding: Hashable, Sendable {
    /// The map's name in the object.
    public var name: String
    /// The declared map (anchor-relative).
    public var path: TreePath
    public var location: SourceLocation

    public init(name: String, path: TreePath, location: SourceLocation) {
        self.name = name
        self.path = path
        self.location = location
    }
}

/// What the kernel makes of a declared program, learnt by loading it once before planning: the kernel's
/// program tag (a digest of its instructions, map references left out), its type and name.
public struct ProgramImage: Hashable, Sendable {
    public var tag: UInt64
    public var type: UInt32
    public var expectedAttachType: UInt32
    /// The name the kernel keeps (at most 15 bytes).
    public var name: String
    /// The object's own maps and data sections by name: what a binding must match, and which of them
    /// the program uses.
    public var objectMaps: [String: ObjectMap]
    /// The program's ELF section name, e.g. `iter/task`.
    public var section: String

    public init(tag: UInt64, type: UInt32, expectedAttachType: UInt32, name: String, objectMaps: [String: ObjectMap] = [:],
                section: String = "") {
        self.section = section
        self.tag = tag
        self.type = type
        self.expectedAttachType = expectedAttachType
        self.name = name
        self.objectMaps = objectMaps
    }

    /// The iterator target an `iter/TARGET` or `iter.s/TARGET` program is for, nil for other programs.
    public var iteratorTarget: String? {
        for prefix in ["iter/", "iter.s/"] where section.hasPrefix(prefix) { return String(section.dropFirst(prefix.count)) }
        return nil
    }

    /// The tag as bpftool prints it (16 hex digits).
    public var tagHex: String { formatTag(tag) }
}

/// A map as an object defines it.
public struct ObjectMap: Hashable, Sendable {
    public var type: UInt32
    public var keySize: UInt32
    public var valueSize: UInt32
    /// The program refers to it (its instructions do): only then is it among the program's map ids.
    public var used: Bool
    /// One of the object's global data sections (`.rodata`, `.data`, `.bss`): never bound.
    public var `internal`: Bool

    public init(type: UInt32, keySize: UInt32, valueSize: UInt32, used: Bool = true, internal: Bool = false) {
        self.type = type
        self.keySize = keySize
        self.valueSize = valueSize
        self.used = used
        self.internal = `internal`
    }
}

/// A program tag (8 bytes, first byte most significant) as 16 hex digits.
public func formatTag(_ tag: UInt64) -> String {
    let hex = String(tag, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

extension ProgramSpec {
    /// What programs loaded together (sharing the object's own maps) have in common: the object, the
    /// globals, the bindings and the declaration scope.
    public struct LoadKey: Hashable, Sendable {
        public var objectPath: String
        public var globals: [String]
        public var maps: [String]
        public var scope: String
    }

    public var loadKey: LoadKey {
        LoadKey(objectPath: objectPath, globals: globals.map(\.description),
                maps: maps.map { "\($0.name)=\($0.path)" }, scope: scope)
    }

    /// What the ledger keeps for a program bpftree made: the kernel's tag, mixed with the globals it was
    /// loaded with (the tag leaves data out). Without globals, the tag itself.
    public func fingerprint(tag: UInt64) -> UInt64 {
        guard !globals.isEmpty else { return tag }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ tag
        for byte in globals.map(\.description).joined(separator: "\u{0}").utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        // Never the tag of a program without globals, nor 0 (records made before fingerprints).
        return hash == tag || hash == 0 ? hash &+ 1 : hash
    }

    /// How a live program differs from what loading this one gives (type, name, tag).
    public func differences(from live: LiveProgramInfo) -> [FieldDifference] {
        guard let image else { return [] }
        var differences: [FieldDifference] = []
        if image.type != live.type {
            differences.append(FieldDifference(field: "type", declared: ProgramType(kernelValue: image.type)?.name ?? "\(image.type)",
                                               live: ProgramType(kernelValue: live.type)?.name ?? "\(live.type)"))
        }
        if image.name != live.name {
            differences.append(FieldDifference(field: "name", declared: image.name, live: live.name))
        }
        if image.tag != live.tag {
            differences.append(FieldDifference(field: "tag", declared: formatTag(image.tag), live: formatTag(live.tag)))
        }
        return differences
    }
}
