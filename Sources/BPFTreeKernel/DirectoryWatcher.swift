import Glibc
import Synchronization

/// Tells when directories gain or lose a subdirectory (inotify: a cgroup made or removed). A thread
/// blocks in `read` and calls `onChange` once per batch of events; `watch` sets which directories.
public final class DirectoryWatcher: Sendable {
    private let fd: Int32
    /// Watched path -> watch descriptor.
    private let watches = Mutex<[String: Int32]>([:])

    /// Starts the reading thread.
    public init(onChange: @escaping @Sendable () -> Void) throws(KernelError) {
        fd = inotify_init1(Int32(IN_CLOEXEC))
        guard fd >= 0 else { throw KernelError("inotify_init1", path: "", negativeErrno: -errno) }
        let descriptor = fd
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    onChange()
                } else if count < 0 && errno != EINTR {
                    return
                }
            }
        }
        thread.start()
    }

    /// Watches exactly `paths` (adding new ones, dropping the others). A path that cannot be watched
    /// (gone meanwhile) is skipped: the timer still finds its changes.
    public func watch(_ paths: [String]) {
        let mask = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_ONLYDIR)
        watches.withLock { watches in
            let wanted = Set(paths)
            for (path, descriptor) in watches where !wanted.contains(path) {
                inotify_rm_watch(fd, descriptor)
                watches[path] = nil
            }
            // Added again every time: the kernel returns the same descriptor for the same directory, and a
            // new one when a directory of that name was made again.
            for path in wanted {
                let descriptor = inotify_add_watch(fd, path, mask)
                watches[path] = descriptor >= 0 ? descriptor : nil
            }
        }
    }
}

/// A detached pthread running one closure (Foundation's Thread is not in the kernel layer's imports).
private final class Thread: Sendable {
    private let body: @Sendable () -> Void

    init(_ body: @escaping @Sendable () -> Void) { self.body = body }

    func start() {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let result = pthread_create(&thread, nil, { context in
            guard let context else { return nil }
            let box = Unmanaged<Thread>.fromOpaque(context).takeRetainedValue()
            box.body()
            return nil
        }, context)
        if result == 0 { pthread_detach(thread) } else { Unmanaged<Thread>.fromOpaque(context).release() }
    }
}
