/// Little-endian fields, as the stamp and the program image cache store them.
struct ByteWriter {
    var data: [UInt8] = []
    mutating func u8(_ value: UInt8) { data.append(value) }
    mutating func u32(_ value: Int) { withUnsafeBytes(of: UInt32(truncatingIfNeeded: value).littleEndian) { data += $0 } }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { data += $0 } }
    mutating func bytes(_ value: [UInt8]) { data += value }
    mutating func text(_ value: String) {
        u32(value.utf8.count)
        data += value.utf8
    }
    mutating func optional(_ value: UInt32?) {
        u8(value == nil ? 0 : 1)
        u32(Int(value ?? 0))
    }
    mutating func blob(_ value: [UInt8]) {
        u32(value.count)
        data += value
    }
}

/// Reads what `ByteWriter` wrote; every read fails (nil) past the end.
struct ByteReader {
    let data: UnsafeRawBufferPointer
    var offset: Int

    init(_ data: UnsafeRawBufferPointer, at offset: Int) {
        self.data = data
        self.offset = offset
    }

    private mutating func load<T: FixedWidthInteger>(_: T.Type) -> T? {
        guard offset + MemoryLayout<T>.size <= data.count else { return nil }
        defer { offset += MemoryLayout<T>.size }
        return T(littleEndian: data.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    mutating func u8() -> UInt8? { load(UInt8.self) }
    mutating func u32() -> Int? { load(UInt32.self).map(Int.init) }
    mutating func u64() -> UInt64? { load(UInt64.self) }
    mutating func bytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, offset + count <= data.count else { return nil }
        defer { offset += count }
        return Array(data[offset..<(offset + count)])
    }
    mutating func text() -> String? {
        guard let count = u32(), offset + count <= data.count else { return nil }
        defer { offset += count }
        return String(decoding: UnsafeRawBufferPointer(rebasing: data[offset..<(offset + count)]), as: UTF8.self)
    }

    mutating func optional() -> UInt32?? {
        guard let present = u8(), let value = u32() else { return nil }
        return .some(present == 1 ? UInt32(value) : nil)
    }

    mutating func blob() -> [UInt8]? {
        guard let count = u32() else { return nil }
        return bytes(count)
    }
}
