/// A declared program with what loading it gave before planning (`ResolvedTargets.images`): what the
/// planner compares with a pinned program, and what a program action loads and checks it got again.
public struct ResolvedProgram: Hashable, Sendable {
    /// The declaration, exactly as decoded.
    public var spec: ProgramSpec
    /// What loading it gave; nil where nothing was loaded (a plan made from plain values).
    public var image: ProgramImage?

    public init(_ spec: ProgramSpec, image: ProgramImage? = nil) {
        (self.spec, self.image) = (spec, image)
    }

    /// The type the kernel gave it, else the declared one.
    public var type: ProgramType? { image.flatMap { ProgramType(kernelValue: $0.type) } ?? spec.type }

    /// E.g. `count_egress from job_stats.bpf.o (cgroup_skb, tag 0a1b...)`.
    public var summary: String {
        var text = "\(spec.program) from \(spec.object)"
        if let image {
            text += " (\(ProgramType(kernelValue: image.type)?.name ?? "type \(image.type)"), tag \(image.tagHex))"
        } else if let type = spec.type {
            text += " (\(type.name))"
        }
        return text
    }

    /// How a live program differs from what loading this one gave (type, name, tag).
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
