import BPFTreeCore

/// The text of a fixed-size C char array (a tuple as Swift imports it), up to its first NUL.
func cString<T>(_ array: T) -> String {
    withUnsafeBytes(of: array) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}

/// Calls `body` with the NUL-terminated bytes the kernel knows a tree name by (`TreePath.rawName`): the
/// name itself unless it holds an escaped byte.
func withKernelName<R>(_ name: String, _ body: (UnsafePointer<CChar>) -> R) -> R {
    guard name.utf8.contains(UInt8(ascii: ".")) else { return name.withCString(body) }
    let raw = TreePath.rawName(name).map { CChar(bitPattern: $0) } + [0]
    return raw.withUnsafeBufferPointer { buffer in
        guard let base = buffer.baseAddress else { return "".withCString(body) }
        return body(base)
    }
}

/// Calls `body` with the bytes of a cgroup path whose names come from a scan (`TreePath.name(raw:)`): a
/// name whose escapes stand for bytes that are not UTF-8 goes back to those bytes. A name that is UTF-8
/// either way keeps its dots, which cgroup names may have (`user.slice`).
func withCgroupPath<R>(_ path: String, _ body: (UnsafePointer<CChar>) -> R) -> R {
    guard path.utf8.contains(UInt8(ascii: ".")) else { return path.withCString(body) }
    var bytes: [UInt8] = []
    for (index, name) in path.split(separator: "/", omittingEmptySubsequences: false).enumerated() {
        if index > 0 { bytes.append(UInt8(ascii: "/")) }
        let raw = TreePath.rawName(String(name))
        bytes += String(validating: raw, as: UTF8.self) == nil ? raw : Array(name.utf8)
    }
    let text = bytes.map { CChar(bitPattern: $0) } + [0]
    return text.withUnsafeBufferPointer { buffer in
        guard let base = buffer.baseAddress else { return "".withCString(body) }
        return body(base)
    }
}
