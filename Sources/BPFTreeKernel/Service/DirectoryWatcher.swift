import Glibc
import Synchronization

/// Tells which directories gained or lost which children (inotify: a cgroup made or removed). A thread
/// blocks in `read`, adds each event's directory and name to what `drain` returns next, and calls
/// `onChange` when the first change since the last `drain` arrives; `watch` sets which directories.
public final class DirectoryWatcher: Sendable {
    /// The children named by events since the last `drain`, by watched directory; `overflowed` when the
    /// kernel dropped events (everything must be looked at again).
    public struct Changes: Sendable {
        public var children: [String: Set<String>] = [:]
        public var overflowed = false
        public var isEmpty: Bool { children.isEmpty && !overflowed }
    }

    private let fd: Int32
    private struct State {
        /// Watched path -> watch descriptor, and back.
        var watches: [String: Int32] = [:]
        var paths: [Int32: String] = [:]
        var pending = Changes()
    }
    private let state = Mutex(State())

    /// Starts the reading thread.
    public init(onChange: @escaping @Sendable () -> Void) throws(KernelError) {
        fd = inotify_init1(Int32(IN_CLOEXEC))
        guard fd >= 0 else { throw KernelError(.call(.inotifyInit), path: "", negativeErrno: -errno) }
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    // Told once per drain: a burst must not flood the caller's queue (and push out what
                    // else waits there, such as a SIGHUP).
                    let first = buffer.withUnsafeBytes { raw in
                        state.withLock { state in
                            let wasEmpty = state.pending.isEmpty
                            Self.record(raw.prefix(count), into: &state)
                            return wasEmpty && !state.pending.isEmpty
                        }
                    }
                    if first { onChange() }
                } else if count < 0 && errno != EINTR {
                    return
                }
            }
        }
        thread.start()
    }

    /// Adds the events in `bytes` (whole `struct inotify_event`s) to the pending changes.
    private static func record(_ bytes: UnsafeRawBufferPointer.SubSequence, into state: inout State) {
        let header = MemoryLayout<inotify_event>.size
        var offset = bytes.startIndex
        while offset + header <= bytes.endIndex {
            let event = bytes.base.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
            let nameStart = offset + header, nameEnd = min(nameStart + Int(event.len), bytes.endIndex)
            offset = nameEnd
            if event.mask & UInt32(IN_Q_OVERFLOW) != 0 {
                state.pending.overflowed = true
                continue
            }
            guard let directory = state.paths[event.wd] else { continue }
            if event.mask & UInt32(IN_IGNORED) != 0 {
                state.paths[event.wd] = nil
                if state.watches[directory] == event.wd { state.watches[directory] = nil }
                continue
            }
            let name = String(decoding: bytes.base[nameStart..<nameEnd].prefix { $0 != 0 }, as: UTF8.self)
            guard !name.isEmpty else { continue }
            state.pending.children[directory, default: []].insert(name)
        }
    }

    /// The changes since the last call.
    public func drain() -> Changes {
        state.withLock { state in
            defer { state.pending = Changes() }
            return state.pending
        }
    }

    /// Watches exactly `paths` (adding new ones, dropping the others). A path that cannot be watched
    /// (gone meanwhile) is skipped: the timer still finds its changes.
    public func watch(_ paths: [String]) {
        state.withLock { state in
            let wanted = Set(paths)
            for (path, descriptor) in state.watches where !wanted.contains(path) {
                inotify_rm_watch(fd, descriptor)
                state.watches[path] = nil
                state.paths[descriptor] = nil
            }
            // Added again every time: the kernel returns the same descriptor for the same directory, and a
            // new one when a directory of that name was made again.
            for path in wanted { add(path, &state) }
        }
    }

    /// Also watches `paths` (new directories between a source and its cgroups).
    public func add(_ paths: [String]) {
        state.withLock { state in
            for path in paths { add(path, &state) }
        }
    }

    private func add(_ path: String, _ state: inout State) {
        let mask = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_ONLYDIR)
        let descriptor = withCgroupPath(path) { inotify_add_watch(fd, $0, mask) }
        if let old = state.watches[path], old != descriptor { state.paths[old] = nil }
        state.watches[path] = descriptor >= 0 ? descriptor : nil
        if descriptor >= 0 { state.paths[descriptor] = path }
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
