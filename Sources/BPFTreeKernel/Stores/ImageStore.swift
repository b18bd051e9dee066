import BPFTreeCore
import CBPFTreeShim
import Glibc

/// What loading each declared program gave (`ProgramImage`), kept between runs in a hash map pinned at the
/// anchor under `Reserved.imagesName`, so that a CLI pass knows an unchanged program's tag without a
/// verifier run. Key: `ProgramImage.cacheKey`, which covers the object's bytes and the running kernel;
/// the map vanishes with the mount, as the kernel's own state does. Only a cache: any trouble with it
/// means loading the program, never a failed run.
public final class ImageStore {
    private let anchor: Anchor
    /// The map, opened at the first lookup (a pass without programs never opens it).
    private lazy var descriptor: Descriptor? = try? ReservedMap.open(anchor, .images, shape: Self.shape, create: false)
    /// Images learnt this run, kept by `save`.
    private var learnt: [(key: [UInt8], image: ProgramImage)] = []

    static let keySize = 32
    static let valueSize = 4096
    /// Images kept at most; when full, the map is emptied and fills again with what is in use.
    static let capacity: UInt32 = 1024

    private static let shape = ReservedMap.Shape(type: .hash, keySize: UInt32(keySize), valueSize: UInt32(valueSize),
                                                 maxEntries: capacity, flags: MapFlag.noPrealloc.bit)

    /// The store beneath `anchor` as it is: nothing is created until `save`. A map pinned under its name
    /// that is not one reads as an empty store.
    public init(_ anchor: Anchor) { self.anchor = anchor }

    /// The image cached under `key`, if any.
    public func image(for key: [UInt8]) -> ProgramImage? {
        guard let descriptor else { return nil }
        var value = [UInt8](repeating: 0, count: Self.valueSize)
        let result = key.withUnsafeBytes { k in
            value.withUnsafeMutableBytes { bt_map_lookup(descriptor.rawValue, k.baseAddress, $0.baseAddress) }
        }
        return result == 0 ? ProgramImage(decoding: value) : nil
    }

    /// Notes an image loading gave, for `save`.
    public func learn(_ image: ProgramImage, for key: [UInt8]) {
        learnt.append((key, image))
    }

    /// Caches what this run learnt, creating the map when there is none (a run that changes the tree calls
    /// this once it went through; a reader never does). An image too large for a value is not kept.
    public func save() {
        guard !learnt.isEmpty else { return }
        if descriptor == nil {
            descriptor = try? ReservedMap.open(anchor, .images, shape: Self.shape, create: true)
        }
        guard let descriptor else { return }
        for (key, image) in learnt {
            var value = image.encoded
            guard value.count <= Self.valueSize else { continue }
            value += [UInt8](repeating: 0, count: Self.valueSize - value.count)
            func update() -> Int32 {
                key.withUnsafeBytes { k in value.withUnsafeBytes { bt_map_update(descriptor.rawValue, k.baseAddress, $0.baseAddress, 0) } }
            }
            if update() == -E2BIG {
                clear(descriptor)
                _ = update()
            }
        }
        learnt.removeAll()
    }

    /// Deletes every image (objects rebuilt again and again must not keep the cache full of stale ones).
    private func clear(_ descriptor: Descriptor) {
        var key = [UInt8](repeating: 0, count: Self.keySize)
        while key.withUnsafeMutableBytes({ bt_map_get_next_key(descriptor.rawValue, nil, $0.baseAddress) }) == 0 {
            guard key.withUnsafeBytes({ bt_map_delete(descriptor.rawValue, $0.baseAddress) }) == 0 else { return }
        }
    }

    /// What changes a load besides the object and the declaration: libbpf (relocations), the kernel (its
    /// BTF and verifier), this build of bpftree.
    public static let environment: [String] = {
        var names = utsname()
        uname(&names)
        func text<T>(_ field: T) -> String {
            withUnsafeBytes(of: field) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return ["libbpf \(String(cString: bt_libbpf_version()))", "kernel \(text(names.release)) \(text(names.version))",
                "build \(Machine.executableIdentity)"]
    }()
}
