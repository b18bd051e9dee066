import BPFTreeCore
import Glibc
import SystemPackage

/// The writers' lock on an anchor: `flock(LOCK_EX)` on the anchor directory, held while a writer
/// (`apply`) observes, plans and executes, so that two writers never interleave. Readers (`diff`) take
/// none. Released when the value goes away (or the process ends).
public final class WriterLock: Sendable {
    private let descriptor: Descriptor

    private init(descriptor: Descriptor) { self.descriptor = descriptor }

    /// Takes the lock, waiting up to `timeout` seconds (0: try once).
    public static func acquire(_ anchor: Anchor, timeout: Double) throws(KernelError) -> WriterLock {
        // flock needs a real open file: the anchor itself may be an O_PATH descriptor.
        let directory = anchor.fd.rawValue
        let fd = openat(directory, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw KernelError(.step(.openAnchorForLocking), path: anchor.displayName, negativeErrno: -errno) }
        let lock = WriterLock(descriptor: Descriptor(owning: fd))
        var clock = timespec()
        clock_gettime(CLOCK_MONOTONIC, &clock)
        let deadline = Double(clock.tv_sec) + Double(clock.tv_nsec) / 1e9 + max(0, timeout)
        while true {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return lock }
            let error = errno
            guard error == EWOULDBLOCK || error == EINTR else {
                throw KernelError(.call(.flock), path: anchor.displayName, negativeErrno: -error)
            }
            clock_gettime(CLOCK_MONOTONIC, &clock)
            if Double(clock.tv_sec) + Double(clock.tv_nsec) / 1e9 >= deadline {
                let holder = holderPID(of: lock.descriptor.fd).map { "pid \($0)" } ?? "a process this namespace cannot see"
                throw KernelError(.step(.lockAnchor), path: anchor.displayName,
                                  detail: "another writer holds it (\(holder)); waited \(formatSeconds(timeout)) (--lock-timeout)")
            }
            usleep(20_000)
        }
    }

    /// The pid `/proc/locks` names for the FLOCK on the same inode, when there is one.
    private static func holderPID(of fd: FileDescriptor) -> Int32? {
        var st = stat()
        guard fstat(fd.rawValue, &st) == 0, let file = fopen("/proc/locks", "r") else { return nil }
        defer { fclose(file) }
        // glibc's encoding of dev_t, as in gnu_dev_major/gnu_dev_minor.
        let device = UInt64(st.st_dev)
        let major = UInt32(truncatingIfNeeded: ((device >> 8) & 0xfff) | ((device >> 32) & ~UInt64(0xfff)))
        let minor = UInt32(truncatingIfNeeded: (device & 0xff) | ((device >> 12) & ~UInt64(0xff)))
        let wanted = "\(hex2(major)):\(hex2(minor)):\(st.st_ino)"
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            // "1: FLOCK  ADVISORY  WRITE 4242 00:2f:1234 0 EOF"
            guard fields.count >= 6, fields[1] == "FLOCK", fields[5] == wanted, let pid = Int32(fields[4]) else { continue }
            return pid
        }
        return nil
    }

    private static func hex2(_ value: UInt32) -> String {
        let text = String(value, radix: 16)
        return text.count < 2 ? "0" + text : text
    }
}

private func formatSeconds(_ seconds: Double) -> String {
    seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(seconds)s"
}
