import BPFTreeYAML

/// Decodes and validates one `map:` block against the kernel's rules for its type.
struct MapSpecDecoder {
    var pageSize: Int
    var reader: NodeReader

    static let fields = ["type", "keySize", "valueSize", "maxEntries", "flags", "name", "numaNode", "mapExtra",
                         "contents", "freeze"]

    func decode(_ block: Fields, node: YAMLNode, entryName: String, _ field: String) -> MapSpec? {
        let before = reader.diagnostics.count
        var type: MapType?
        if let typeNode = block["type"], let text = reader.string(typeNode, join(field, "type")) {
            if let known = MapType(rawValue: text) {
                type = known
            } else if let reason = MapType.unsupported[text] {
                reader.error("map type '\(text)' is not supported: \(reason)", at: typeNode, join(field, "type"))
            } else {
                var message = "unknown map type '\(text)'"
                if let suggestion = closest(to: text, in: MapType.allCases.map(\.rawValue)) {
                    message += "; did you mean '\(suggestion)'?"
                }
                reader.error(message, at: typeNode, join(field, "type"))
            }
        }
        let keySize = size("keySize", block, field, fixed: type?.requiredKeySize, node: node)
        let fixedValue = type?.allowedValueSizes.flatMap { $0.count == 1 ? $0[0] : nil }
        let valueSize = size("valueSize", block, field, fixed: fixedValue, node: node)
        let maxEntries = size("maxEntries", block, field, fixed: nil, node: node)
        let flags = decodeFlags(block["flags"], join(field, "flags"))
        let numaNode = block["numaNode"].flatMap { reader.uint32($0, join(field, "numaNode")) }
        let mapExtra = block["mapExtra"].flatMap { reader.unsigned($0, join(field, "mapExtra"), max: UInt64.max) } ?? 0
        let freeze = block["freeze"].flatMap { reader.bool($0, join(field, "freeze")) } ?? false
        let name = decodeName(block["name"], entryName: entryName, join(field, "name"))

        guard let type, let keySize, let valueSize, let maxEntries, let flags, let name else { return nil }
        var spec = MapSpec(type: type, keySize: keySize, valueSize: valueSize, maxEntries: maxEntries, flags: flags,
                           name: name, numaNode: numaNode, mapExtra: mapExtra, freeze: freeze)
        if numaNode != nil { spec.flags |= MapFlag.numaNode.bit }
        checkShape(spec, block, node, field)
        // Contents are decoded only for a shape the kernel accepts: their values take valueSize bytes each.
        if let contentsNode = block["contents"], reader.diagnostics.count == before {
            spec.contents = decodeContents(contentsNode, spec, join(field, "contents"))
        }
        return reader.diagnostics.count == before ? spec : nil
    }

    /// A size field: required unless the type fixes it; when fixed, a given value must match.
    private func size(_ name: String, _ block: Fields, _ field: String, fixed: UInt32?, node: YAMLNode) -> UInt32? {
        guard let sizeNode = block[name] else {
            if let fixed { return fixed }
            reader.error("missing required field '\(name)'", at: node, join(field, name))
            return nil
        }
        guard let value = reader.uint32(sizeNode, join(field, name)) else { return nil }
        if let fixed, value != fixed {
            reader.error("this map type needs \(name) \(fixed), not \(value)", at: sizeNode, join(field, name))
            return nil
        }
        return value
    }

    private func decodeFlags(_ node: YAMLNode?, _ field: @autoclosure () -> String) -> UInt32? {
        guard let node else { return 0 }
        switch node.value {
        case .scalar:
            return reader.uint32(node, field())
        case .sequence(let items):
            var flags: UInt32 = 0
            var ok = true
            for (index, item) in items.enumerated() {
                guard let text = reader.string(item, "\(field())[\(index)]") else { ok = false; continue }
                guard let flag = MapFlag(rawValue: text) else {
                    var message = "unknown map flag '\(text)'"
                    if let suggestion = closest(to: text, in: MapFlag.allCases.map(\.rawValue)) {
                        message += "; did you mean '\(suggestion)'?"
                    }
                    reader.error(message, at: item, "\(field())[\(index)]")
                    ok = false
                    continue
                }
                flags |= flag.bit
            }
            return ok ? flags : nil
        case .mapping:
            reader.error("expected a list of flag names or an integer, found mapping", at: node, field())
            return nil
        }
    }

    /// The kernel object name; by default the entry name, with characters the kernel refuses replaced.
    private func decodeName(_ node: YAMLNode?, entryName: String, _ field: @autoclosure () -> String) -> String? {
        guard let node else {
            // The entry's name with anything the kernel refuses as '_', cut to 15 characters.
            let bytes = entryName.utf8
            if bytes.allSatisfy({ $0 < 0x80 }) {
                let kept = bytes.prefix(15).map { byte -> UInt8 in
                    switch byte {
                    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                         UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"): byte
                    default: UInt8(ascii: "_")
                    }
                }
                return String(decoding: kept, as: UTF8.self)
            }
            return String(entryName.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") ? $0 : "_" }.prefix(15))
        }
        guard let name = reader.string(node, field()) else { return nil }
        guard name.utf8.count <= 15, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ".") }) else {
            reader.error("invalid kernel object name '\(name)': at most 15 characters of [A-Za-z0-9_.]", at: node, field())
            return nil
        }
        return name
    }

    /// Rules the kernel enforces at MAP_CREATE, checked up front so that nothing is half-made.
    private func checkShape(_ spec: MapSpec, _ block: Fields, _ node: YAMLNode, _ field: String) {
        func fail(_ name: String, _ message: String) {
            reader.error(message, at: block[name] ?? node, join(field, name))
        }
        let type = spec.type
        if type.requiredKeySize == nil && spec.keySize == 0 { fail("keySize", "\(type.rawValue) maps need keySize above 0") }
        if let allowed = type.allowedValueSizes, !allowed.contains(spec.valueSize) {
            fail("valueSize", "\(type.rawValue) maps need valueSize \(allowed.map(String.init).joined(separator: " or "))")
        } else if type.allowedValueSizes == nil && spec.valueSize == 0 {
            fail("valueSize", "\(type.rawValue) maps need valueSize above 0")
        }
        if spec.maxEntries == 0 {
            fail("maxEntries", "maxEntries must be above 0")
        } else if type.isRingBuffer {
            let size = UInt64(spec.maxEntries)
            if size & (size - 1) != 0 || size % UInt64(pageSize) != 0 {
                fail("maxEntries", "\(type.rawValue) size \(spec.maxEntries) must be a power of two and a multiple of the page size (\(pageSize))")
            }
        }
        // Limits of the kernel's map allocators (Linux 6.18, checked on these machines).
        if type.isPerCPU && spec.valueSize > Self.perCPUValueLimit {
            fail("valueSize", "\(type.rawValue) valueSize \(spec.valueSize) is above the kernel's per-CPU limit of \(Self.perCPUValueLimit) bytes")
        }
        if type.isHash && spec.valueSize >= Self.hashValueLimit {
            fail("valueSize", "\(type.rawValue) valueSize \(spec.valueSize) is not below the kernel's limit of 4 MiB")
        }
        if type.isHash && spec.maxEntries > Self.hashEntriesLimit {
            fail("maxEntries", "\(type.rawValue) maxEntries \(spec.maxEntries) is above the kernel's limit of \(Self.hashEntriesLimit) (2^27 buckets)")
        }
        if [.queue, .stack, .bloomFilter].contains(type) && spec.valueSize > Self.hashValueLimit {
            fail("valueSize", "\(type.rawValue) valueSize \(spec.valueSize) is above the kernel's limit of 4 MiB")
        }
        switch type {
        case .lpmTrie:
            if spec.flags & MapFlag.noPrealloc.bit == 0 { fail("flags", "lpm_trie maps need the no_prealloc flag") }
            if spec.keySize < 5 || spec.keySize > 260 { fail("keySize", "lpm_trie keySize must be 5...260 (4-byte prefix length + data)") }
        case .array, .percpuArray:
            if spec.flags & MapFlag.noPrealloc.bit != 0 { fail("flags", "array maps are always preallocated; remove no_prealloc") }
        case .bloomFilter:
            if spec.mapExtra > 15 { fail("mapExtra", "bloom_filter mapExtra is the number of hash functions, 0...15") }
        case .stackTrace:
            if spec.valueSize % 8 != 0 { fail("valueSize", "stack_trace valueSize must be a multiple of 8") }
        default:
            break
        }
        if spec.mapExtra != 0 && type != .bloomFilter { fail("mapExtra", "mapExtra is only used by bloom_filter maps") }
        if spec.flags & MapFlag.rdonly.bit != 0 && block["contents"] != nil {
            fail("flags", "the rdonly flag makes the map unwritable from user space, so contents cannot be written; use freeze: true")
        }
    }

    /// Per-CPU values: `PCPU_MIN_UNIT_SIZE`.
    static let perCPUValueLimit: UInt32 = 32_768
    /// Hash values: below `KMALLOC_MAX_SIZE` (4 MiB with 4 KiB pages).
    static let hashValueLimit: UInt32 = 4 << 20
    /// Hash maps: the bucket array holds at most 2^27 buckets (a power of two at least maxEntries).
    static let hashEntriesLimit: UInt32 = 1 << 27
    /// The most bytes all contents of one map may take, as written: bpftree holds them in memory.
    static let contentsLimit = 64 << 20
    static let entryFields = ["key", "value"]
    static let keylessEntryFields = ["value"]

    private func decodeContents(_ node: YAMLNode, _ spec: MapSpec, _ field: @autoclosure () -> String) -> [MapEntry] {
        guard case .sequence(let items) = node.value else {
            reader.error("expected a list of {key, value} entries, found \(node.shapeName)", at: node, field())
            return []
        }
        let size = items.count * (Int(spec.keySize) + Int(spec.valueSize))
        guard size <= Self.contentsLimit else {
            reader.error("\(items.count) entries of \(Int(spec.keySize) + Int(spec.valueSize)) bytes take \(formatBytes(UInt64(size))); contents may take at most \(formatBytes(UInt64(Self.contentsLimit)))", at: node, field())
            return []
        }
        guard spec.type.acceptsContents else {
            reader.error("\(spec.type.rawValue) maps cannot be given contents", at: node, field())
            return []
        }
        if items.count > Int(spec.maxEntries) {
            reader.error("\(items.count) entries do not fit in maxEntries \(spec.maxEntries)", at: node, field())
        }
        var entries: [MapEntry] = []
        entries.reserveCapacity(items.count)
        // Duplicate keys can only come with a second entry.
        var seen: [[UInt8]: Int] = [:]
        let known = spec.type.isKeyless ? Self.keylessEntryFields : Self.entryFields
        for (index, item) in items.enumerated() {
            // Field paths are only made for a problem.
            func itemField() -> String { "\(field())[\(index)]" }
            guard let pair = reader.object(item, itemField(), known: known, required: known) else { continue }
            var key: [UInt8] = []
            if !spec.type.isKeyless {
                guard let keyNode = pair["key"], let bytes = self.bytes(keyNode, size: spec.keySize, join(itemField(), "key"))
                else { continue }
                key = bytes
                if spec.type.isArray {
                    let k = bytes.prefix(4).enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
                    if k >= spec.maxEntries {
                        reader.error("array index \(k) is not below maxEntries \(spec.maxEntries)", at: keyNode, join(itemField(), "key"))
                    }
                }
                if items.count > 1 {
                    if let first = seen[bytes] {
                        reader.error("duplicate key (also contents[\(first)])", at: keyNode, join(itemField(), "key"))
                    }
                    seen[bytes] = index
                }
            }
            guard let valueNode = pair["value"], let value = bytes(valueNode, size: spec.valueSize, join(itemField(), "value"))
            else { continue }
            entries.append(MapEntry(key: key, value: value))
        }
        return entries
    }

    /// A key or value: a plain integer (little-endian, must fit) or a quoted hex string (`"0a 0b"`,
    /// `"0x0a0b"`), zero-padded at the end to `size` bytes.
    private func bytes(_ node: YAMLNode, size: UInt32, _ field: @autoclosure () -> String) -> [UInt8]? {
        guard case .scalar(let scalar) = node.value, !node.isNull else {
            reader.error("expected an integer or a quoted hex string, found \(node.shapeName)", at: node, field())
            return nil
        }
        if scalar.isPlain {
            guard let literal = IntegerLiteral(scalar.text) else {
                reader.error("expected an integer or a quoted hex string, found '\(scalar.text)'", at: node, field())
                return nil
            }
            guard let bytes = literal.littleEndian(size: Int(size)) else {
                reader.error("\(literal) does not fit in \(size) bytes", at: node, field())
                return nil
            }
            return bytes
        }
        var hex = scalar.text.filter { !$0.isWhitespace }
        if hex.hasPrefix("0x") || hex.hasPrefix("0X") { hex.removeFirst(2) }
        guard hex.count % 2 == 0, hex.allSatisfy(\.isHexDigit) else {
            reader.error("\"\(scalar.text)\" is not hex bytes such as \"01 02 0a ff\"", at: node, field())
            return nil
        }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        guard bytes.count <= Int(size) else {
            reader.error("\(bytes.count) bytes do not fit in \(size) bytes", at: node, field())
            return nil
        }
        return bytes + Array(repeating: 0, count: Int(size) - bytes.count)
    }
}
