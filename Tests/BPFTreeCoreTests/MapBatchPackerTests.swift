import BPFTreeCore
import Testing

/// Packing maps into batch-program runs: every map once, in plan order, each run within its limits, and a
/// map's fill and freeze in its create's run unless they cannot fit one.
@Suite struct MapBatchPackerTests {
    static func pack(_ specs: [(MapSpec, Bool)], _ limits: BatchLimits, cpus: Int = 2) -> [MapBatch] {
        var packer = MapBatchPacker(limits: limits, possibleCPUs: cpus)
        var batches: [MapBatch] = []
        for (index, (spec, migrates)) in specs.enumerated() {
            if let closed = packer.add(spec, action: index, migrates: migrates) { batches.append(closed) }
        }
        if let last = packer.finish() { batches.append(last) }
        return batches
    }

    @Test(arguments: 0..<200) func everyRunIsWithinItsLimitsAndEveryMapIsPackedOnceInOrder(_ seed: Int) {
        var random = SplitMix(seed: UInt64(seed))
        let limits = BatchLimits(maxOps: 1 + random.int(12), dataSize: 8 + random.int(200), maxMaps: 1 + random.int(5))
        let types: [MapType] = [.hash, .array, .percpuHash]
        let specs = (0..<random.int(30)).map { n in
            let type = types[random.int(types.count)]
            let valueSize = 1 + random.int(12)
            let spec = MapSpec(type: type, keySize: 4, valueSize: UInt32(valueSize), maxEntries: 64, name: "m\(n)",
                               contents: (0..<random.int(6)).map {
                                   MapEntry(key: [UInt8($0), 0, 0, 0], value: [UInt8](repeating: 7, count: valueSize))
                               },
                               freeze: random.int(2) == 0)
            return (spec, random.int(4) == 0)
        }
        let batches = Self.pack(specs, limits)
        #expect(batches.flatMap { $0.maps.map(\.action) } == Array(specs.indices))
        for batch in batches {
            #expect(!batch.maps.isEmpty)
            #expect(batch.maps.count <= limits.maxMaps)
            #expect(batch.ops.count <= limits.maxOps || batch.maps.count == 1 && batch.ops.count == 1)
            let data = batch.ops.reduce(0) { sum, op in if case .update(_, let key, let value) = op { sum + key.count + value.count } else { sum } }
            #expect(data == batch.dataBytes && data <= limits.dataSize)
            for map in batch.maps {
                let (spec, migrates) = specs[map.action]
                guard case .create(let created) = batch.ops[map.createOp] else { Issue.record("not a create"); continue }
                #expect(created == spec)
                let own = batch.ops[map.createOp...map.lastOp].dropFirst()
                if map.writesContentsAfter {
                    #expect(own.isEmpty)
                } else {
                    #expect(own.filter { if case .update = $0 { true } else { false } }.count == spec.contents.count)
                }
                let frozenInRun = own.contains { $0 == .freeze(create: map.createOp) }
                // Frozen exactly once: in the run, or after it (after the contents, or a migration's copy).
                #expect(frozenInRun != map.freezesAfter || !spec.freeze)
                #expect(spec.freeze == (frozenInRun || map.freezesAfter))
                if migrates { #expect(!frozenInRun) }
            }
        }
    }

    @Test func aPerCPUValueIsRepeatedInAnAlignedSlotPerCPU() {
        let spec = MapSpec(type: .percpuArray, keySize: 4, valueSize: 3, maxEntries: 1)
        #expect(MapBatchPacker.valueLength(spec, possibleCPUs: 3) == 24)
        #expect(MapBatchPacker.kernelValue([1, 2, 3], spec: spec, possibleCPUs: 3)
                == [1, 2, 3, 0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 0])
        let plain = MapSpec(type: .hash, keySize: 4, valueSize: 3, maxEntries: 1)
        #expect(MapBatchPacker.kernelValue([1, 2, 3], spec: plain, possibleCPUs: 3) == [1, 2, 3])
    }

    @Test func contentsLargerThanARunGoAfterItWithTheFreeze() {
        let big = MapSpec(type: .hash, keySize: 4, valueSize: 4, maxEntries: 64,
                          contents: (0..<10).map { MapEntry(key: [UInt8($0), 0, 0, 0], value: [0, 0, 0, 0]) }, freeze: true)
        let batches = Self.pack([(big, false), (big, false)], BatchLimits(maxOps: 4, dataSize: 4096, maxMaps: 8))
        #expect(batches.count == 1)
        #expect(batches[0].ops.count == 2)
        #expect(batches[0].maps.allSatisfy { $0.writesContentsAfter && $0.freezesAfter })
    }
}
