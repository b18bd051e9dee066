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
