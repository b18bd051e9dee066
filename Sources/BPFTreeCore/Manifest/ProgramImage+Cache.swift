import Crypto

extension ProgramImage {
    /// The key a loaded image is cached under between runs: SHA-256 of the object's bytes, the program's
    /// name, type and attach type, and `environment` (what else changes a load: libbpf's version, the
    /// running kernel, bpftree's build, the token's delegation).
    public static func cacheKey(object: [UInt8], program: String, type: ProgramType?, attachType: AttachType?,
                                environment: [String]) -> [UInt8] {
        var hash = SHA256()
        func add(_ bytes: some Collection<UInt8>) {
            withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { hash.update(bufferPointer: $0) }
            hash.update(data: Array(bytes))
        }
        add(Array("bpftree program image 4".utf8))
        for line in environment { add(line.utf8) }
        add(object)
        add(program.utf8)
        add((type.map { "\($0.kernelValue)" } ?? "-").utf8)
        add((attachType.map { "\($0.kernelValue)" } ?? "-").utf8)
        return Array(hash.finalize())
    }

    /// The image as bytes: a length, then tag, type, attach type, name, section and the object's maps by
    /// name.
    public var encoded: [UInt8] {
        var out = ByteWriter()
        out.u32(0)  // the payload's length, set below
        out.u64(tag)
        out.u32(Int(type))
        out.u32(Int(expectedAttachType))
        out.text(name)
        out.text(section)
        out.u32(objectMaps.count)
        for (mapName, map) in objectMaps.sorted(by: { Array($0.key.utf8).lexicographicallyPrecedes($1.key.utf8) }) {
            out.text(mapName)
            out.u32(Int(map.type))
            out.u32(Int(map.keySize))
            out.u32(Int(map.valueSize))
            out.u32((map.used ? 1 : 0) | (map.internal ? 2 : 0))
        }
        let length = UInt32(out.data.count - 4).littleEndian
        withUnsafeBytes(of: length) { out.data.replaceSubrange(0..<4, with: $0) }
        return out.data
    }

    /// Reads what `encoded` wrote, from the start of `bytes` (trailing bytes are ignored); nil when it
    /// is not a whole image.
    public init?(decoding bytes: [UInt8]) {
        let decoded: ProgramImage? = bytes.withUnsafeBytes { raw in
            var reader = ByteReader(raw, at: 0)
            guard let length = reader.u32(), length <= raw.count - 4,
                  let tag = reader.u64(), let type = reader.u32(), let attach = reader.u32(), let name = reader.text(),
                  let section = reader.text(), let count = reader.u32(), count <= length else { return nil }
            var maps: [String: ObjectMap] = [:]
            for _ in 0..<count {
                guard let mapName = reader.text(), let mapType = reader.u32(), let key = reader.u32(),
                      let value = reader.u32(), let flags = reader.u32(), flags <= 3 else { return nil }
                maps[mapName] = ObjectMap(type: UInt32(mapType), keySize: UInt32(key), valueSize: UInt32(value), used: flags & 1 != 0,
                                          internal: flags & 2 != 0)
            }
            guard reader.offset == length + 4 else { return nil }
            return ProgramImage(tag: tag, type: UInt32(type), expectedAttachType: UInt32(attach), name: name,
                                objectMaps: maps, section: section)
        }
        guard let decoded else { return nil }
        self = decoded
    }
}
