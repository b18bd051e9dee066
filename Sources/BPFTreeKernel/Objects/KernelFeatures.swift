import CBPFTreeShim
import Glibc

/// What this kernel has, probed once per process from its own BTF, never from its version number: the
/// uapi constants it was built with (`BPF_LINK_TYPE_TCX`, `BPF_PROG_TYPE_NETFILTER`, `BPF_TOKEN_CREATE`)
/// are names in the string section of /sys/kernel/btf/vmlinux.
public enum KernelFeatures {
    /// The `BPF_*` names of the kernel's BTF; nil when it has none (built without `CONFIG_DEBUG_INFO_BTF`).
    private static let constants: Set<String>? = {
        var strings: UnsafeMutablePointer<CChar>?
        var length = 0
        guard bt_vmlinux_btf_strings(&strings, &length) == 0, let strings else { return nil }
        defer { free(strings) }
        var names = Set<String>()
        let bytes = UnsafeRawBufferPointer(start: strings, count: length)
        var start = 0
        for index in 0..<length where bytes[index] == 0 {
            if index - start > 4, bytes[start] == 0x42, bytes[start + 1] == 0x50, bytes[start + 2] == 0x46, bytes[start + 3] == 0x5F {
                names.insert(String(decoding: bytes[start..<index], as: UTF8.self))  // "BPF_..."
            }
            start = index + 1
        }
        return names
    }()

    /// Whether the kernel knows the uapi constant `name`; nil when it cannot tell (no BTF).
    public static func has(_ name: String) -> Bool? {
        constants.map { $0.contains(name) }
    }

    /// Why this kernel cannot do `what`, when its BTF lacks `constant`: "this kernel has no WHAT
    /// (CONSTANT, from SINCE)"; nil when it has it or cannot tell.
    public static func missing(_ constant: String, what: String, since: String) -> String? {
        has(constant) == false ? "this kernel has no \(what) (no \(constant) in its BTF; from \(since))" : nil
    }
}
