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
    /// Where its fields were written (`object`, `name`, `type`), for errors found when it is loaded.
    public var locations: [String: SourceLocation] = [:]

    public init(object: String, objectPath: String, program: String, type: ProgramType? = nil,
                attachType: AttachType? = nil, maps: [MapBinding] = []) {
        self.object = object
        self.objectPath = objectPath
        self.program = program
        self.type = type
        self.attachType = attachType
        self.maps = maps.sorted { $0.name < $1.name }
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
}
