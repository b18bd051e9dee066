import Glibc
import SystemPackage

/// An owned `FileDescriptor`, closed when the last reference goes away (swift-system's is not owned:
/// objects made by a batch run are shared by their pins' actions until the run ends).
public final class Descriptor: Sendable {
    public let fd: FileDescriptor
    /// For the C calls that take it.
    public var rawValue: Int32 { fd.rawValue }
    public init(owning rawValue: Int32) { fd = FileDescriptor(rawValue: rawValue) }
    deinit { try? fd.close() }
}

/// Calls a Glibc function that returns -1 and sets errno, retrying EINTR; returns the result or -errno.
/// For the `*at` calls and `openat2`, which swift-system does not offer (its own calls retry by
/// themselves).
@inline(__always)
func retryingEINTR(_ call: () -> Int32) -> Int32 {
    while true {
        let result = call()
        if result >= 0 { return result }
        if errno != EINTR { return -errno }
    }
}

/// `RESOLVE_*` flags (linux/openat2.h): stay beneath the starting directory, never follow a symlink,
/// never cross a mount.
enum Resolve {
    static let noXDev: UInt64 = 0x01
    static let noMagicLinks: UInt64 = 0x02
    static let noSymlinks: UInt64 = 0x04
    static let beneath: UInt64 = 0x08
    static let inRoot: UInt64 = 0x10
    static let strict = beneath | noSymlinks | noMagicLinks | noXDev
}
