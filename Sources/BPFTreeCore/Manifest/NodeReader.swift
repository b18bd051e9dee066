import BPFTreeYAML

/// Typed access to YAML nodes that records every problem instead of stopping at the first.
final class NodeReader {
    private(set) var diagnostics: [Diagnostic] = []

    func error(_ message: String, at node: YAMLNode, _ field: String) {
        diagnostics.append(Diagnostic(message, at: node.location, field: field))
    }

    func error(_ message: String, at location: SourceLocation, _ field: String) {
        diagnostics.append(Diagnostic(message, at: location, field: field))
    }

    /// The pairs of a mapping with scalar keys, or nil (reported) when the node is not a mapping.
    func mapping(_ node: YAMLNode, _ field: @autoclosure () -> String) -> [(key: String, keyNode: YAMLNode, value: YAMLNode)]? {
        guard case .mapping(let pairs) = node.value else {
            error("expected a mapping, found \(node.shapeName)", at: node, field())
            return nil
        }
        var result: [(key: String, keyNode: YAMLNode, value: YAMLNode)] = []
        for pair in pairs {
            guard case .scalar(let key) = pair.key.value else {
                error("mapping keys must be scalars", at: pair.key, field())
                continue
            }
            result.append((key.text, pair.key, pair.value))
        }
        return result
    }

    /// The fields of an object node; reports unknown fields (with the closest known name) and missing
    /// required ones.
    func object(_ node: YAMLNode, _ field: @autoclosure () -> String, known: [String], required: [String] = []) -> Fields? {
        guard case .mapping(let pairs) = node.value else {
            error("expected a mapping, found \(node.shapeName)", at: node, field())
            return nil
        }
        var fields = Fields()
        fields.pairs.reserveCapacity(pairs.count)
        for pair in pairs {
            guard case .scalar(let key) = pair.key.value else {
                error("mapping keys must be scalars", at: pair.key, field())
                continue
            }
            if known.contains(key.text) {
                fields.pairs.append((key.text, pair.value))
            } else {
                var message = "unknown field '\(key.text)'"
                if let suggestion = closest(to: key.text, in: known) { message += "; did you mean '\(suggestion)'?" }
                error(message, at: pair.key, join(field(), key.text))
            }
        }
        for name in required where fields[name] == nil {
            error("missing required field '\(name)'", at: node, join(field(), name))
        }
        return fields
    }

    func string(_ node: YAMLNode, _ field: @autoclosure () -> String) -> String? {
        guard case .scalar(let scalar) = node.value, !node.isNull else {
            error("expected a string, found \(node.shapeName)", at: node, field())
            return nil
        }
        return scalar.text
    }

    func bool(_ node: YAMLNode, _ field: @autoclosure () -> String) -> Bool? {
        if case .scalar(let s) = node.value, s.isPlain {
            switch s.text {
            case "true", "True", "TRUE": return true
            case "false", "False", "FALSE": return false
            default: break
            }
        }
        error("expected true or false, found \(describe(node))", at: node, field())
        return nil
    }

    /// A plain integer scalar: decimal, `0x`, `0o` or `0b`, optional sign, `_` separators.
    func integer(_ node: YAMLNode, _ field: @autoclosure () -> String) -> IntegerLiteral? {
        if case .scalar(let s) = node.value, s.isPlain, let value = IntegerLiteral(s.text) { return value }
        error("expected an integer, found \(describe(node))", at: node, field())
        return nil
    }

    func unsigned(_ node: YAMLNode, _ field: @autoclosure () -> String, max: UInt64) -> UInt64? {
        guard let value = integer(node, field()) else { return nil }
        guard !value.isNegative, value.magnitude <= max else {
            error("\(value) is out of range 0...\(max)", at: node, field())
            return nil
        }
        return value.magnitude
    }

    func uint32(_ node: YAMLNode, _ field: @autoclosure () -> String) -> UInt32? {
        unsigned(node, field(), max: UInt64(UInt32.max)).map { UInt32($0) }
    }

    /// Permission bits, always read as octal (like chmod): `"0750"`, `0750` or `750`.
    func mode(_ node: YAMLNode, _ field: @autoclosure () -> String) -> UInt32? {
        guard case .scalar(let s) = node.value, !node.isNull else {
            error("expected an octal mode such as \"0755\", found \(node.shapeName)", at: node, field())
            return nil
        }
        var text = s.text
        if text.hasPrefix("0o") { text.removeFirst(2) }
        guard !text.isEmpty, text.allSatisfy({ ("0"..."7").contains($0) }), let value = UInt32(text, radix: 8) else {
            error("'\(s.text)' is not an octal mode such as \"0755\"", at: node, field())
            return nil
        }
        guard value <= 0o7777 else {
            error("mode \(s.text) is above 07777", at: node, field())
            return nil
        }
        return value
    }

    func describe(_ node: YAMLNode) -> String {
        if case .scalar(let s) = node.value, !node.isNull { return s.isPlain ? "'\(s.text)'" : "string \"\(s.text)\"" }
        return node.shapeName
    }
}

/// The fields of an object, in document order (the parser refuses duplicate keys). Objects have a
/// handful of fields, so a scan is cheaper than hashing.
struct Fields {
    var pairs: [(name: String, node: YAMLNode)] = []

    subscript(name: String) -> YAMLNode? {
        for pair in pairs where pair.name == name { return pair.node }
        return nil
    }
}

/// Joins dotted field paths.
func join(_ field: String, _ name: String) -> String { field.isEmpty ? name : "\(field).\(name)" }

/// The candidate closest to `word` by edit distance, if close enough to be a likely typo.
func closest(to word: String, in candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    return best.1 <= max(2, word.count / 3) ? best.0 : nil
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...max(b.count, 1) where j <= b.count {
            current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}

/// An integer as written in YAML, kept as sign and magnitude so 64-bit values round-trip.
struct IntegerLiteral: CustomStringConvertible {
    var isNegative: Bool
    var magnitude: UInt64

    init(isNegative: Bool, magnitude: UInt64) {
        (self.isNegative, self.magnitude) = (isNegative && magnitude != 0, magnitude)
    }

    init?(_ text: String) {
        // Fast path: plain decimal digits, the common case.
        if let first = text.utf8.first, first != UInt8(ascii: "0") || text.utf8.count == 1,
           text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let value = UInt64(text) {
            (isNegative, magnitude) = (false, value)
            return
        }
        var body = Substring(text.filter { $0 != "_" })
        isNegative = body.hasPrefix("-")
        if body.hasPrefix("-") || body.hasPrefix("+") { body = body.dropFirst() }
        var radix = 10
        for (prefix, base) in [("0x", 16), ("0X", 16), ("0o", 8), ("0b", 2)] where body.hasPrefix(prefix) {
            radix = base
            body = body.dropFirst(2)
        }
        guard !body.isEmpty, let magnitude = UInt64(body, radix: radix) else { return nil }
        self.magnitude = magnitude
        if isNegative && magnitude == 0 { isNegative = false }
    }

    var description: String { (isNegative ? "-" : "") + String(magnitude) }

    /// Little-endian two's-complement bytes of `size`, or nil when the value does not fit.
    func littleEndian(size: Int) -> [UInt8]? {
        let bits = size * 8
        if isNegative {
            guard size > 0, bits >= 64 || magnitude <= (UInt64(1) << (bits - 1)) else { return nil }
        } else if bits < 64 && magnitude >> bits != 0 {
            return nil
        }
        let pattern = isNegative ? (~magnitude &+ 1) : magnitude
        return (0..<size).map { index in
            if index >= 8 { return isNegative ? 0xff : 0 }
            return UInt8(truncatingIfNeeded: pattern >> (UInt64(index) * 8))
        }
    }
}

extension NodeReader {
    /// The items of a sequence, or nil (reported) when the node is not one.
    func sequence(_ node: YAMLNode, _ field: @autoclosure () -> String) -> YAMLNode.Items? {
        guard case .sequence(let items) = node.value else {
            error("expected a list, found \(describe(node))", at: node, field())
            return nil
        }
        return items
    }

    /// One of an enum's raw values, with the closest one suggested.
    func choice<Choice: RawRepresentable & CaseIterable>(_ node: YAMLNode, _ field: @autoclosure () -> String, _ type: Choice.Type) -> Choice?
    where Choice.RawValue == String {
        guard let text = string(node, field()) else { return nil }
        if let value = Choice(rawValue: text) { return value }
        let names = Choice.allCases.map(\.rawValue)
        error("'\(text)' is not one of \(names.joined(separator: ", "))", at: node, field())
        return nil
    }
}
