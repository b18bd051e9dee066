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
    /// The object's own maps by name: what a binding must match.
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

    public init(type: UInt32, keySize: UInt32, valueSize: UInt32, used: Bool = true) {
        self.type = type
        self.keySize = keySize
        self.valueSize = valueSize
        self.used = used
    }
}

/// A program tag (8 bytes, first byte most significant) as 16 hex digits.
public func formatTag(_ tag: UInt64) -> String {
    let hex = String(tag, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

extension ProgramSpec {
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
