/// `uprobe:` of a link: a function of a user-space binary (by ELF symbol, or by file offset), entered or
/// (`return: true`) returned from, in every process or one.
public struct UprobeTarget: Hashable, Sendable, CustomStringConvertible {
    /// The binary or library: an absolute path.
    public var binary: String
    /// The function's ELF symbol; nil: `offset` is a file offset.
    public var symbol: String?
    /// Bytes past the symbol, or the file offset when there is no symbol.
    public var offset: UInt64
    /// Only this process (nil: every process that maps the binary).
    public var pid: Int32?
    /// A uretprobe: runs when the function returns.
    public var isReturn: Bool

    public init(binary: String, symbol: String?, offset: UInt64 = 0, pid: Int32? = nil, isReturn: Bool = false) {
        (self.binary, self.symbol, self.offset, self.pid, self.isReturn) = (binary, symbol, offset, pid, isReturn)
    }

    /// As libbpf's section names write it: `/bin/app:add+0x4`.
    public var location: String {
        let at = symbol.map { offset == 0 ? $0 : "\($0)+0x\(String(offset, radix: 16))" } ?? "0x\(String(offset, radix: 16))"
        return "\(binary):\(at)"
    }

    public var description: String {
        "\(isReturn ? "uretprobe" : "uprobe") \(location)\(pid.map { " of process \($0)" } ?? "")"
    }
}

/// `uprobe:` of a link with `symbols`: every function of a binary whose name matches one of the shell
/// patterns, in one uprobe_multi link (`BPF_LINK_TYPE_UPROBE_MULTI`, Linux 6.6).
public struct UprobeMultiTarget: Hashable, Sendable, CustomStringConvertible {
    public var binary: String
    /// Shell patterns (`fnmatch`), e.g. `bt_*`.
    public var symbols: [String]
    public var pid: Int32?
    public var isReturn: Bool

    public init(binary: String, symbols: [String], pid: Int32? = nil, isReturn: Bool = false) {
        (self.binary, self.symbols, self.pid, self.isReturn) = (binary, symbols, pid, isReturn)
    }

    /// `BPF_F_UPROBE_MULTI_RETURN`, or 0.
    public var flags: UInt32 { isReturn ? 1 : 0 }

    public var description: String {
        "\(isReturn ? "uretprobe" : "uprobe") multi \(binary):\(symbols.joined(separator: ","))\(pid.map { " of process \($0)" } ?? "")"
    }
}

/// FNV-1a over the little-endian bytes of `offsets`, as the shim digests a uprobe_multi link's.
public func offsetsDigest(_ offsets: [UInt64]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for offset in offsets {
        for byte in 0..<8 {
            hash ^= (offset >> (8 * UInt64(byte))) & 0xff
            hash = hash &* 0x100_0000_01b3
        }
    }
    return hash
}

/// `kprobe:` of a link: a kernel function (plus an offset), entered or (`return: true`) returned from.
public struct KprobeTarget: Hashable, Sendable, CustomStringConvertible {
    public var function: String
    public var offset: UInt64
    public var isReturn: Bool

    public init(function: String, offset: UInt64 = 0, isReturn: Bool = false) {
        (self.function, self.offset, self.isReturn) = (function, offset, isReturn)
    }

    public var description: String {
        "\(isReturn ? "kretprobe" : "kprobe") \(function)\(offset == 0 ? "" : "+0x\(String(offset, radix: 16))")"
    }
}

/// `kprobe:` of a link with `functions`: every kernel function whose name matches one of the shell
/// patterns, in one kprobe_multi link (`BPF_LINK_TYPE_KPROBE_MULTI`, Linux 5.18, needs `CONFIG_FPROBE`).
public struct KprobeMultiTarget: Hashable, Sendable, CustomStringConvertible {
    public var functions: [String]
    public var isReturn: Bool

    public init(functions: [String], isReturn: Bool = false) {
        (self.functions, self.isReturn) = (functions, isReturn)
    }

    /// `BPF_F_KPROBE_MULTI_RETURN`, or 0.
    public var flags: UInt32 { isReturn ? 1 : 0 }

    public var description: String { "\(isReturn ? "kretprobe" : "kprobe") multi \(functions.joined(separator: ","))" }
}

/// `enum bpf_perf_event_type`: what a perf event link's event is.
public enum PerfEventKind: UInt32, Sendable {
    case uprobe = 1, uretprobe, kprobe, kretprobe, tracepoint

    public var name: String {
        switch self {
        case .uprobe: "uprobe"
        case .uretprobe: "uretprobe"
        case .kprobe: "kprobe"
        case .kretprobe: "kretprobe"
        case .tracepoint: "tracepoint"
        }
    }
}

/// `netfilter:` of a link: a netfilter hook of bpftree's network namespace (`BPF_LINK_TYPE_NETFILTER`,
/// Linux 6.4), as nftables names it.
public struct NetfilterHook: Hashable, Sendable, CustomStringConvertible {
    public enum Family: String, Sendable, CaseIterable {
        case ipv4, ipv6

        /// `NFPROTO_*`.
        public var kernelValue: UInt32 { self == .ipv4 ? 2 : 10 }
    }

    public enum Hook: String, Sendable, CaseIterable {
        case prerouting, input, forward, output, postrouting

        /// `NF_INET_*`.
        public var kernelValue: UInt32 { UInt32(Self.allCases.firstIndex(of: self) ?? 0) }
    }

    public var family: Family
    public var hook: Hook
    /// Lower runs first; the kernel refuses the reserved ends (`NF_IP_PRI_FIRST`, `NF_IP_PRI_LAST`).
    public var priority: Int32
    /// `BPF_F_NETFILTER_IP_DEFRAG` (6.6): packets reach the program defragmented.
    public var defrag: Bool

    public init(family: Family, hook: Hook, priority: Int32, defrag: Bool = false) {
        (self.family, self.hook, self.priority, self.defrag) = (family, hook, priority, defrag)
    }

    public var flags: UInt32 { defrag ? 1 : 0 }

    public var description: String {
        "netfilter \(family.rawValue) \(hook.rawValue) priority \(priority)\(defrag ? ", defragmented" : "")"
    }
}
