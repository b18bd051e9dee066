/// What one run of the batch syscall program does for maps: its ops in order, and the maps they make.
public struct MapBatch: Sendable {
    public enum Op: Equatable, Sendable {
        case create(MapSpec)
        /// `value` as the kernel takes it (one slot per possible CPU for a per-CPU map).
        case update(create: Int, key: [UInt8], value: [UInt8])
        case freeze(create: Int)
    }

    /// One map of the run.
    public struct Map: Equatable, Sendable {
        /// Position of its action in the plan.
        public var action: Int
        public var createOp: Int
        /// Its last op: `createOp + 1 ... lastOp` fill and freeze it.
        public var lastOp: Int
        /// Whether its contents are written after the run (more than one run holds).
        public var writesContentsAfter: Bool
        /// Whether it is frozen after the run: after the contents, or after a migration copied its entries.
        public var freezesAfter: Bool
    }

    public var ops: [Op] = []
    public var maps: [Map] = []
    /// Bytes of keys and values the ops take in the program's data area.
    public var dataBytes = 0

    public init() {}
}

/// How much one run of the batch program holds.
public struct BatchLimits: Sendable {
    public var maxOps: Int
    public var dataSize: Int
    /// Maps per run: each holds an fd until it is pinned.
    public var maxMaps: Int

    public init(maxOps: Int, dataSize: Int, maxMaps: Int) {
        (self.maxOps, self.dataSize, self.maxMaps) = (maxOps, dataSize, max(1, maxMaps))
    }
}

/// Packs maps into batch runs in plan order, each run within the program's limits: a map's create, its
/// contents and its freeze share a run, unless they are more than a whole run holds; then only the create
/// is in the run and the rest is written after it.
public struct MapBatchPacker {
    public let limits: BatchLimits
    public let possibleCPUs: Int
    private var current = MapBatch()

    public init(limits: BatchLimits, possibleCPUs: Int) {
        (self.limits, self.possibleCPUs) = (limits, max(1, possibleCPUs))
    }

    /// Adds the map `action` makes (`migrates`: its entries are copied in after the run, so it is frozen
    /// only then). Returns the run it closed when it did not fit there.
    public mutating func add(_ spec: MapSpec, action: Int, migrates: Bool) -> MapBatch? {
        let length = Self.valueLength(spec, possibleCPUs: possibleCPUs)
        let freezeInBatch = spec.freeze && !migrates
        let opsNeeded = 1 + spec.contents.count + (freezeInBatch ? 1 : 0)
        let dataNeeded = spec.contents.count * (Int(spec.keySize) + length)
        let inBatch = opsNeeded <= limits.maxOps && dataNeeded <= limits.dataSize
        let (opsTaken, dataTaken) = inBatch ? (opsNeeded, dataNeeded) : (1, 0)
        var closed: MapBatch?
        if current.ops.count + opsTaken > limits.maxOps || current.dataBytes + dataTaken > limits.dataSize
            || current.maps.count >= limits.maxMaps {
            closed = finish()
        }
        let createOp = current.ops.count
        current.ops.append(.create(spec))
        if inBatch {
            for entry in spec.contents {
                current.ops.append(.update(create: createOp, key: entry.key,
                                           value: Self.kernelValue(entry.value, spec: spec, possibleCPUs: possibleCPUs)))
            }
            if freezeInBatch { current.ops.append(.freeze(create: createOp)) }
            current.dataBytes += dataTaken
        }
        current.maps.append(MapBatch.Map(action: action, createOp: createOp, lastOp: current.ops.count - 1,
                                         writesContentsAfter: !inBatch, freezesAfter: spec.freeze && !(inBatch && freezeInBatch)))
        return closed
    }

    /// The run being filled, if it has anything; the packer starts a new one.
    public mutating func finish() -> MapBatch? {
        guard !current.maps.isEmpty else { return nil }
        defer { current = MapBatch() }
        return current
    }

    /// The bytes a value takes in the map: per-CPU maps take one 8-byte-aligned slot per possible CPU.
    public static func valueLength(_ spec: MapSpec, possibleCPUs: Int) -> Int {
        spec.type.isPerCPU ? (Int(spec.valueSize) + 7) / 8 * 8 * possibleCPUs : Int(spec.valueSize)
    }

    /// A declared value as the kernel takes it: for a per-CPU map, the value in every CPU's slot.
    public static func kernelValue(_ value: [UInt8], spec: MapSpec, possibleCPUs: Int) -> [UInt8] {
        guard spec.type.isPerCPU else { return value }
        let slot = valueLength(spec, possibleCPUs: possibleCPUs) / possibleCPUs
        let padded = value + [UInt8](repeating: 0, count: slot - value.count)
        return [UInt8]((0..<possibleCPUs).map { _ in padded }.joined())
    }
}
