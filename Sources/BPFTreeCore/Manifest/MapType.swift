/// A BPF map type bpftree can create, with the kernel's number and the shape rules the kernel enforces.
public enum MapType: String, CaseIterable, Sendable, Hashable {
    case hash, array
    case progArray = "prog_array"
    case perfEventArray = "perf_event_array"
    case percpuHash = "percpu_hash"
    case percpuArray = "percpu_array"
    case stackTrace = "stack_trace"
    case cgroupArray = "cgroup_array"
    case lruHash = "lru_hash"
    case lruPercpuHash = "lru_percpu_hash"
    case lpmTrie = "lpm_trie"
    case devmap, sockmap, cpumap, xskmap, sockhash
    case queue, stack
    case devmapHash = "devmap_hash"
    case ringbuf
    case bloomFilter = "bloom_filter"
    case userRingbuf = "user_ringbuf"

    /// `enum bpf_map_type` in linux/bpf.h.
    public var kernelValue: UInt32 {
        switch self {
        case .hash: 1
        case .array: 2
        case .progArray: 3
        case .perfEventArray: 4
        case .percpuHash: 5
        case .percpuArray: 6
        case .stackTrace: 7
        case .cgroupArray: 8
        case .lruHash: 9
        case .lruPercpuHash: 10
        case .lpmTrie: 11
        case .devmap: 14
        case .sockmap: 15
        case .cpumap: 16
        case .xskmap: 17
        case .sockhash: 18
        case .queue: 22
        case .stack: 23
        case .devmapHash: 25
        case .ringbuf: 27
        case .bloomFilter: 30
        case .userRingbuf: 31
        }
    }

    public init?(kernelValue: UInt32) {
        guard let type = MapType.allCases.first(where: { $0.kernelValue == kernelValue }) else { return nil }
        self = type
    }

    /// Types the kernel knows but bpftree cannot create from a manifest, with the reason.
    public static let unsupported: [String: String] = [
        "array_of_maps": "map-in-map types need an inner map fd",
        "hash_of_maps": "map-in-map types need an inner map fd",
        "cgroup_storage": "local storage maps need BTF for key and value",
        "percpu_cgroup_storage": "local storage maps need BTF for key and value",
        "sk_storage": "local storage maps need BTF for key and value",
        "inode_storage": "local storage maps need BTF for key and value",
        "task_storage": "local storage maps need BTF for key and value",
        "cgrp_storage": "local storage maps need BTF for key and value",
        "struct_ops": "struct_ops maps are created by loading their programs",
        "reuseport_sockarray": "not supported yet",
        "arena": "not supported yet",
    ]

    /// The key size the type requires, if fixed.
    public var requiredKeySize: UInt32? {
        switch self {
        case .array, .percpuArray, .progArray, .perfEventArray, .stackTrace, .cgroupArray, .devmap, .devmapHash,
             .sockmap, .cpumap, .xskmap: 4
        case .queue, .stack, .ringbuf, .userRingbuf, .bloomFilter: 0
        default: nil
        }
    }

    /// Value sizes the type accepts, if restricted.
    public var allowedValueSizes: [UInt32]? {
        switch self {
        case .progArray, .perfEventArray, .cgroupArray, .xskmap: [4]
        case .devmap, .devmapHash, .cpumap, .sockmap, .sockhash: [4, 8]
        case .ringbuf, .userRingbuf: [0]
        default: nil
        }
    }

    /// Ring buffers: max_entries is the buffer size in bytes, a power of two multiple of the page size.
    public var isRingBuffer: Bool { self == .ringbuf || self == .userRingbuf }

    /// Values are stored once per possible CPU.
    public var isPerCPU: Bool { [.percpuHash, .percpuArray, .lruPercpuHash].contains(self) }
    /// The hash-table family (one allocator, `kernel/bpf/hashtab.c`).
    public var isHash: Bool { [.hash, .percpuHash, .lruHash, .lruPercpuHash].contains(self) }

    /// Keys are array indices below max_entries.
    public var isArray: Bool { self == .array || self == .percpuArray }

    /// Whether user space can fill it with plain key/value bytes (others hold fds or are not writable).
    public var acceptsContents: Bool {
        switch self {
        case .hash, .array, .percpuHash, .percpuArray, .lruHash, .lruPercpuHash, .lpmTrie, .queue, .stack, .bloomFilter: true
        default: false
        }
    }

    /// Contents are values only (push semantics), no key.
    public var isKeyless: Bool { self == .queue || self == .stack || self == .bloomFilter }
}
