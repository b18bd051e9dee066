/// A path relative to the anchor directory. The empty path is the anchor itself.
///
/// Stored as one string, the names joined by `/` (names never contain `/`), so that hashing, comparing and
/// extending a path cost one string operation rather than one per name. Paths are bytes, as bpffs sees
/// them: equality, hashing and order are by UTF-8 bytes, never by Unicode equivalence (NFC `é` and NFD
/// `e\u{301}` are two names). A name the tree holds that is not UTF-8 is kept with each byte that is not
/// part of valid UTF-8 written `.xHH`: bpffs refuses `.` in every name it looks up, so no real name and no
/// declared one holds that sequence (see `name(raw:)`, `rawName(_:)`).
public struct TreePath: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The names joined by `/`; empty for the anchor.
    public let text: String

    public init(_ components: [String] = []) { text = components.joined(separator: "/") }

    private init(text: String) { self.text = text }

    /// A path from its `/`-joined text as bpftree itself stored it (e.g. a ledger key); empty names are
    /// dropped.
    public init(joined text: String) {
        let bytes = text.utf8
        var clean = bytes.first != Self.slash && bytes.last != Self.slash
        var previous: UInt8 = 0
        for byte in bytes where clean {
            clean = !(byte == Self.slash && previous == Self.slash)
            previous = byte
        }
        self.text = clean ? text : text.split(separator: "/").joined(separator: "/")
    }

    public static let anchor = TreePath()

    private static let slash = UInt8(ascii: "/")

    public var components: [String] { text.isEmpty ? [] : text.split(separator: "/").map(String.init) }
    public var isAnchor: Bool { text.isEmpty }
    public var name: String {
        guard let slash = text.utf8.lastIndex(of: Self.slash) else { return text.isEmpty ? "." : text }
        return String(text[text.utf8.index(after: slash)...])
    }
    public var parent: TreePath {
        guard let slash = text.utf8.lastIndex(of: Self.slash) else { return .anchor }
        return TreePath(text: String(text[..<slash]))
    }
    public var depth: Int { text.isEmpty ? 0 : text.utf8.count { $0 == Self.slash } + 1 }
    /// Length of the anchor-relative path in bytes, as the ledger stores it.
    public var byteCount: Int { text.utf8.count }

    public func appending(_ name: String) -> TreePath { TreePath(text: text.isEmpty ? name : text + "/" + name) }

    /// Every proper ancestor, from the anchor down (the anchor itself excluded).
    public var ancestors: [TreePath] {
        text.utf8.indices.filter { text.utf8[$0] == Self.slash }.map { TreePath(text: String(text[..<$0])) }
    }

    /// The first `depth` names of the path.
    public func prefix(_ depth: Int) -> TreePath {
        guard depth > 0 else { return .anchor }
        var seen = 0
        for index in text.utf8.indices where text.utf8[index] == Self.slash {
            seen += 1
            if seen == depth { return TreePath(text: String(text[..<index])) }
        }
        return self
    }

    public func isDescendant(of other: TreePath) -> Bool {
        if other.text.isEmpty { return !text.isEmpty }
        return text.utf8.count > other.text.utf8.count && Self.isPrefix(other.text, of: text)
    }

    /// Whether `text` is `prefix` or continues it with `/`, bytes compared in place (policy patterns check
    /// this for every declared path).
    @inline(__always) static func isPrefix(_ prefix: String, of text: String) -> Bool {
        let whole = text.utf8, start = prefix.utf8
        guard whole.count >= start.count else { return false }
        let fast = whole.withContiguousStorageIfAvailable { x in
            start.withContiguousStorageIfAvailable { y in
                (x.count == y.count || x[y.count] == slash) && sameBytes(UnsafeBufferPointer(rebasing: x[..<y.count]), y)
            }
        }
        if let fast, let result = fast { return result }
        guard whole.starts(with: start) else { return false }
        return whole.count == start.count || whole[whole.index(whole.startIndex, offsetBy: start.count)] == slash
    }

    public static func == (a: TreePath, b: TreePath) -> Bool {
        guard a.text.utf8.count == b.text.utf8.count else { return false }
        let fast = a.text.utf8.withContiguousStorageIfAvailable { x in
            b.text.utf8.withContiguousStorageIfAvailable { y in sameBytes(x, y) }
        }
        if let fast, let result = fast { return result }
        return a.text.utf8.elementsEqual(b.text.utf8)
    }

    /// Byte equality of two buffers of the same length, eight bytes at a time: every table lookup by path
    /// ends in one, and a byte-wise loop was a sixth of the planner's instructions.
    static func sameBytes(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let p = x.baseAddress.map(UnsafeRawPointer.init), let q = y.baseAddress.map(UnsafeRawPointer.init) else {
            return x.count == y.count
        }
        var index = 0
        while index + 8 <= x.count {
            guard p.loadUnaligned(fromByteOffset: index, as: UInt64.self) == q.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            else { return false }
            index += 8
        }
        while index < x.count {
            guard x[index] == y[index] else { return false }
            index += 1
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        if text.utf8.withContiguousStorageIfAvailable({ hasher.combine(bytes: UnsafeRawBufferPointer($0)) }) == nil {
            Array(text.utf8).withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }

    /// The path as text to show: control characters, backslashes and bytes that are not UTF-8 escaped
    /// (`\n`, `\x1b`, `\\`, `\xff`), so that a name can neither forge output lines nor drive a terminal.
    public var description: String { text.isEmpty ? "." : Self.printable(text) }

    /// The paths none of the others lies beneath, sorted, without repeats: in `TreePath` order every
    /// path's descendants follow it directly, so one pass over the sorted paths finds them.
    public static func topmost(_ paths: [TreePath]) -> [TreePath] {
        var result: [TreePath] = []
        for path in paths.sorted() {
            if let last = result.last, path == last || path.isDescendant(of: last) { continue }
            result.append(path)
        }
        return result
    }

    // MARK: Names as bytes

    private static let dot = UInt8(ascii: ".")

    /// `name(raw:)` of bytes in memory, as getdents64 gives them: ASCII, nearly every name, is taken as
    /// it is without the generic validation (a walk decodes every name in the tree).
    public static func name(raw bytes: UnsafeRawBufferPointer) -> String {
        if !bytes.contains(where: { $0 >= 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
        return name(raw: Array(bytes))
    }

    /// The name for the bytes of a directory entry: the same text when they are UTF-8, otherwise each
    /// byte outside valid UTF-8 written `.xHH`.
    public static func name(raw bytes: some Collection<UInt8>) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var result: [UInt8] = []
        var rest = Array(bytes)[...]
        while !rest.isEmpty {
            // The longest valid UTF-8 prefix is kept; the byte that ends it is escaped.
            var valid = rest.startIndex
            var iterator = rest.makeIterator()
            var decoder = UTF8()
            scan: while true {
                switch decoder.decode(&iterator) {
                case .scalarValue(let scalar): valid += UTF8.width(scalar)
                case .emptyInput, .error: break scan
                }
            }
            result += rest[rest.startIndex..<valid]
            if valid < rest.endIndex {
                result += Array(".x".utf8) + hex(rest[valid])
                rest = rest[(valid + 1)...]
            } else {
                rest = rest[rest.endIndex...]
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// The bytes of a name made by `name(raw:)`, as the kernel knows it.
    public static func rawName(_ name: String) -> [UInt8] {
        let bytes = Array(name.utf8)
        guard bytes.contains(dot) else { return bytes }
        var raw: [UInt8] = []
        var index = 0
        while index < bytes.count {
            if bytes[index] == dot, index + 3 < bytes.count, bytes[index + 1] == UInt8(ascii: "x"),
               let high = hexValue(bytes[index + 2]), let low = hexValue(bytes[index + 3]) {
                raw.append(high << 4 | low)
                index += 4
            } else {
                raw.append(bytes[index])
                index += 1
            }
        }
        return raw
    }

    /// `bytes` as printable text: as `description` shows a path.
    public static func escaped(_ bytes: some Collection<UInt8>) -> String { printable(name(raw: bytes)) }

    private static func printable(_ text: String) -> String {
        let out = escapingControlCharacters(text, backslashes: true)
        guard out.utf8.contains(dot) else { return out }
        // An escaped raw byte (`.xHH`) shows as `\xHH`.
        return out.replacing(#/\.x([0-9a-f]{2})/#) { "\\x" + $0.1 }
    }

    private static func hex(_ byte: UInt8) -> [UInt8] {
        let digits = Array("0123456789abcdef".utf8)
        return [digits[Int(byte >> 4)], digits[Int(byte & 15)]]
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    /// Lexicographic by name, so a parent sorts right before its children: the bytes compared with `/`
    /// taken as lower than any byte a name can hold.
    public static func < (a: TreePath, b: TreePath) -> Bool {
        let fast = a.text.utf8.withContiguousStorageIfAvailable { x in
            b.text.utf8.withContiguousStorageIfAvailable { y in precedes(x, y) }
        }
        if let fast, let result = fast { return result }
        return Array(a.text.utf8).withUnsafeBufferPointer { x in
            Array(b.text.utf8).withUnsafeBufferPointer { y in precedes(x, y) }
        }
    }

    private static func precedes(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool {
        let common = min(x.count, y.count)
        var index = 0
        while index < common && x[index] == y[index] { index += 1 }
        if index == common { return x.count < y.count }
        return (x[index] == slash ? 0 : x[index]) < (y[index] == slash ? 0 : y[index])
    }

    /// Why `name` cannot be one bpffs path component, or nil when it can.
    public static func problem(withComponent name: String) -> String? {
        if name.isEmpty { return "empty path segment" }
        if name == ".." { return "'..' is not allowed: paths stay beneath the anchor" }
        if name == "." { return "'.' is not allowed as a path segment" }
        if name.contains("/") { return "'\(name)' contains '/': one name per entry, nest with directory entries" }
        if name.contains(".") { return "'\(name)' contains '.', which bpffs refuses in names" }
        if Reserved.mapNames.contains(name) || name.hasPrefix(Reserved.temporaryPrefix) {
            return "'\(name)' is reserved for bpftree's own use (the ledger '\(Reserved.ledgerName)', the stamp '\(Reserved.stampName)', the program image cache '\(Reserved.imagesName)' and temporary '\(Reserved.temporaryPrefix)*' pins)"
        }
        if name.utf8.count > 255 { return "name is \(name.utf8.count) bytes long; the limit is 255" }
        if name.utf8.contains(0) { return "name contains a NUL byte" }
        return nil
    }

    /// Parses an anchor-relative path such as `jobs/A`; returns the path or the reasons it is invalid.
    public static func parse(relative text: String) -> Result<TreePath, PathError> {
        if text.hasPrefix("/") { return .failure(PathError(message: "absolute path '\(text)': paths are relative to the anchor")) }
        for part in text.split(separator: "/", omittingEmptySubsequences: false) {
            if let problem = problem(withComponent: String(part)) { return .failure(PathError(message: "in '\(text)': \(problem)")) }
        }
        return .success(TreePath(text: text))
    }

    public struct PathError: Error, Sendable { public var message: String }
}
