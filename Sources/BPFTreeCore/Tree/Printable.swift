/// `text` with control characters written `\n`, `\t`, `\r`, `\x1b` (C1 controls `\u{85}`), and with
/// `backslashes`, `\\` too: messages and paths quote names from the tree and the cgroup file system,
/// which must neither forge output lines nor drive a terminal.
public func escapingControlCharacters(_ text: String, backslashes: Bool = false) -> String {
    let needsWork = text.unicodeScalars.contains { scalar in
        scalar.value < 0x20 || (0x7f..<0xa0).contains(scalar.value) || (backslashes && scalar == "\\")
    }
    guard needsWork else { return text }
    var out = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        case "\\" where backslashes: out += "\\\\"
        case _ where scalar.value < 0x20 || scalar.value == 0x7f:
            let digits = String(scalar.value, radix: 16)
            out += "\\x" + (digits.count < 2 ? "0" + digits : digits)
        case _ where (0x80..<0xa0).contains(scalar.value): out += "\\u{" + String(scalar.value, radix: 16) + "}"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}
