import BPFTreeCore
import BPFTreeKernel
import Foundation
import Testing

/// bpftree's names of program, attach and link types are the running kernel's enums (read from its BTF
/// with bpftool), lower-cased without their `BPF_` prefixes, at the kernel's values: nothing the kernel
/// has is unknown, and no name is off by one.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment))
struct KernelNamesTests {
    /// The enumerators of `name` in /sys/kernel/btf/vmlinux: value -> name without `prefix`, lower-cased.
    private func kernelEnum(_ name: String, prefix: String) throws -> [Int: String] {
        let result = try run([KernelSupport.bpftool, "btf", "dump", "file", "/sys/kernel/btf/vmlinux"])
        #expect(result.status == 0)
        var values: [Int: String] = [:]
        var inside = false
        for line in result.stdout.split(separator: "\n") {
            if line.hasPrefix("[") {
                inside = line.contains("ENUM '\(name)'")
                continue
            }
            guard inside, let quote = line.firstIndex(of: "'"), let end = line[line.index(after: quote)...].firstIndex(of: "'"),
                  let equals = line.range(of: "val=") else { continue }
            let enumerator = String(line[line.index(after: quote)..<end])
            guard enumerator.hasPrefix(prefix), let value = Int(line[equals.upperBound...]) else { continue }
            values[value] = enumerator.dropFirst(prefix.count).lowercased()
        }
        return values
    }

    @Test func attachTypes() throws {
        let kernel = try kernelEnum("bpf_attach_type", prefix: "BPF_").filter { !$0.value.hasPrefix("__max") }
        #expect(Dictionary(uniqueKeysWithValues: AttachType.names.enumerated().map { ($0.offset, $0.element) }) == kernel)
    }

    @Test func programTypes() throws {
        let kernel = try kernelEnum("bpf_prog_type", prefix: "BPF_PROG_TYPE_").filter { $0.value != "__max_bpf_prog_type" }
        #expect(Dictionary(uniqueKeysWithValues: ProgramType.names.enumerated().map { ($0.offset, $0.element) }) == kernel)
    }

    @Test func linkTypes() throws {
        let kernel = try kernelEnum("bpf_link_type", prefix: "BPF_LINK_TYPE_")
        for (value, name) in kernel { #expect(LiveLinkInfo.typeName(UInt32(value)) == name) }
    }

    /// `KernelFeatures` (the raw string section of the BTF) knows exactly the link and program types
    /// bpftool's dump of the same BTF lists, and nothing it does not.
    @Test func kernelFeaturesAreTheKernelsEnums() throws {
        for (value, name) in try kernelEnum("bpf_link_type", prefix: "BPF_LINK_TYPE_") where value > 0 {
            #expect(KernelFeatures.has("BPF_LINK_TYPE_\(name.uppercased())") == true)
        }
        for (_, name) in try kernelEnum("bpf_prog_type", prefix: "BPF_PROG_TYPE_") {
            #expect(KernelFeatures.has("BPF_PROG_TYPE_\(name.uppercased())") == true)
        }
        #expect(try kernelEnum("bpf_cmd", prefix: "BPF_").values.contains("token_create") == (KernelFeatures.has("BPF_TOKEN_CREATE") == true))
        #expect(KernelFeatures.has("BPF_LINK_TYPE_FROM_THE_FUTURE") == false)
        #expect(KernelFeatures.missing("BPF_LINK_TYPE_TCX", what: "tcx links", since: "Linux 6.6") == nil)
        #expect(KernelFeatures.missing("BPF_LINK_TYPE_FROM_THE_FUTURE", what: "future links", since: "Linux 9.9")
            == "this kernel has no future links (no BPF_LINK_TYPE_FROM_THE_FUTURE in its BTF; from Linux 9.9)")
    }
}
