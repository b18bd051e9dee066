/// One line of /proc/self/mountinfo: which mount, where, of what file system, with which options.
public struct MountInfo: Equatable, Sendable {
    public var mountID: UInt64
    public var mountPoint: String
    public var fileSystemType: String
    /// The file system's own options (the last field), e.g. `rw,uid=0,delegate_cmds=any`.
    public var superOptions: String

    /// Parses `36 25 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw`; nil for a malformed line.
    public init?(line: some StringProtocol) {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 7, let id = UInt64(fields[0]), let separator = fields.firstIndex(of: "-"),
              separator >= 6, separator + 2 < fields.count else { return nil }
        mountID = id
        mountPoint = Self.unescape(String(fields[4]))
        fileSystemType = String(fields[separator + 1])
        superOptions = separator + 3 < fields.count ? String(fields[separator + 3]) : ""
    }

    /// Every well-formed line of a mountinfo file's text.
    public static func parse(_ text: String) -> [MountInfo] {
        text.split(separator: "\n").compactMap { MountInfo(line: $0) }
    }

    /// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
    static func unescape(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.first {
            if byte == UInt8(ascii: "\\"), utf8.count >= 4,
               let value = UInt8(String(decoding: utf8.dropFirst().prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(4)
            } else {
                bytes.append(byte)
                utf8 = utf8.dropFirst()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
