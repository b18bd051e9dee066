/// The text of a fixed-size C char array (a tuple as Swift imports it), up to its first NUL.
func cString<T>(_ array: T) -> String {
    withUnsafeBytes(of: array) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}
