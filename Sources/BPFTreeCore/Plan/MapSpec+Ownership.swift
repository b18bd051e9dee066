extension MapSpec {
    /// Estimated kernel memory in bytes (documented in README.md, "Policies"): per entry the key and
    /// the value rounded up to 8 bytes (the value once per possible CPU for per-CPU maps) plus 48 bytes of
    /// element overhead for hash-like maps, times `maxEntries`. Arrays store no keys and no overhead;
    /// fd arrays hold one pointer per slot; queue/stack hold values only; ring buffers are their size.
    public func estimatedMemory(possibleCPUs: Int) -> UInt64 {
        let cpus = UInt64(max(1, possibleCPUs))
        let key = round8(keySize), value = round8(valueSize), count = UInt64(maxEntries)
        let overhead: UInt64 = 48
        switch type {
        case .array: return count * value
        case .percpuArray: return count * (value * cpus + 8)
        case .hash, .lruHash, .lpmTrie, .sockhash, .devmapHash, .bloomFilter:
            return count * (key + value + overhead)
        case .percpuHash, .lruPercpuHash: return count * (key + 8 + overhead + value * cpus)
        case .queue, .stack: return count * (value + 8)
        case .ringbuf, .userRingbuf: return count
        case .progArray, .perfEventArray, .cgroupArray, .devmap, .cpumap, .xskmap, .sockmap, .stackTrace:
            return count * max(8, value)
        }
    }

    /// A stable 64-bit digest of the fields the kernel reports (FNV-1a), kept in the ledger.
    public var fingerprint: UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for word in [UInt64(type.kernelValue), UInt64(keySize), UInt64(valueSize), UInt64(maxEntries),
                     UInt64(reportedFlags), mapExtra] {
            for byte in 0..<8 {
                hash ^= (word >> (UInt64(byte) * 8)) & 0xff
                hash = hash &* 0x100_0000_01b3
            }
        }
        return hash == 0 ? 1 : hash
    }

    /// Why the entries of `live` cannot be copied into a map of this shape, or nil when they can.
    public func migrationProblem(from live: LiveMapInfo) -> String? {
        let liveType = MapType(kernelValue: live.type)
        guard liveType == type else {
            return "the map type changes (\(liveType?.rawValue ?? "type \(live.type)") to \(type.rawValue)), so entries cannot be copied"
        }
        guard type.isCopyable else {
            return "entries of \(type.rawValue) maps cannot be read without consuming them, so they cannot be copied"
        }
        if live.keySize != keySize || live.valueSize != valueSize {
            return "key/value sizes change (\(live.keySize)/\(live.valueSize) to \(keySize)/\(valueSize)), so entries cannot be copied"
        }
        if type.isArray && maxEntries < live.maxEntries {
            return "the array shrinks from \(live.maxEntries) to \(maxEntries) entries: indices \(maxEntries)...\(live.maxEntries - 1) would be lost"
        }
        return nil
    }

    private func round8(_ size: UInt32) -> UInt64 { (UInt64(size) + 7) / 8 * 8 }
}

extension MapType {
    /// Whether every entry can be read (and so copied) without changing the map.
    public var isCopyable: Bool {
        switch self {
        case .hash, .array, .percpuHash, .percpuArray, .lruHash, .lruPercpuHash, .lpmTrie: true
        default: false
        }
    }
}
