import BPFTreeCore
import CBPFTreeShim
import Glibc
import Synchronization

/// Where tracepoint, raw tracepoint and probe links attach, checked before planning (the tracepoint, the
/// binary and its symbol, the kernel function must exist), and the perf events they attach through.
public enum ProbeTargets {
    /// The perf event id of tracepoint `category`/`name`, from tracefs.
    public static func tracepointID(_ category: String, _ name: String) -> Result<UInt64, KernelError> {
        var buffer = [CChar](repeating: 0, count: 256)
        guard bt_tracefs_path(&buffer, buffer.count) == 0 else {
            return .failure(KernelError(.step(.findTracefs), path: "/sys/kernel/tracing", negativeErrno: -ENOENT,
                                        detail: "tracefs is not mounted (tracepoint links need it to find the tracepoint): mount -t tracefs tracefs /sys/kernel/tracing"))
        }
        let tracefs = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var id: UInt64 = 0
        let found = bt_tracepoint_id(tracefs, category, name, &id)
        guard found == 0 else {
            return .failure(KernelError(.step(.findTracepoint), path: "\(tracefs)/events/\(category)/\(name)", negativeErrno: found,
                                        detail: found == -ENOENT ? "this kernel has no tracepoint \(category)/\(name) (see \(tracefs)/available_events)" : nil))
        }
        return .success(id)
    }

    /// Whether the kernel has raw tracepoint `name` (its BTF names every tracepoint of the kernel proper).
    public static func rawTracepoint(_ name: String) -> Result<Void, KernelError> {
        // The kernel's BTF does not change while it runs, and reading it takes milliseconds.
        if knownRawTracepoints.withLock({ $0.contains(name) }) { return .success(()) }
        let found = bt_raw_tracepoint_exists(name)
        if found == 1 {
            knownRawTracepoints.withLock { _ = $0.insert(name) }
            return .success(())
        }
        return .failure(KernelError(.step(.findRawTracepoint), path: name, negativeErrno: found < 0 ? found : -ENOENT,
                                    detail: found < 0 ? "the kernel's BTF (/sys/kernel/btf/vmlinux) could not be read"
                                                      : "this kernel has no tracepoint \(name) (no btf_trace_\(name) in /sys/kernel/btf/vmlinux)"))
    }

    /// A uprobe's file as the kernel reports it (symbolic links resolved), its file offset and the file's
    /// identity (`DEVICE:INODE`).
    public static func uprobe(_ probe: UprobeTarget) -> Result<(file: String, offset: UInt64, identity: String), KernelError> {
        Result { () throws(KernelError) in
            var type: UInt32 = 0, bit: UInt32 = 0
            guard bt_pmu_type("uprobe", &type, &bit) == 0 else {
                throw KernelError(.step(.findPMU("uprobe")), path: "/sys/bus/event_source/devices/uprobe", negativeErrno: -ENOENT,
                                  detail: "this kernel has no uprobe PMU (built without CONFIG_UPROBE_EVENTS): uprobes cannot be attached")
            }
            let file = try resolvedFile(probe.binary)
            var found: UInt64 = 0, device: UInt64 = 0, inode: UInt64 = 0
            let result = bt_elf_symbol_offset(file, probe.symbol, &found, &device, &inode)
            guard result == 0 else {
                let detail: String? = switch result {
                case -ENOEXEC: "not an ELF executable or library"
                case -EINVAL: "not a regular file"
                case -ESRCH: "no function '\(probe.symbol ?? "")' among its symbols (.symtab, .dynsym)"
                default: nil
                }
                throw KernelError(.step(.findSymbol), path: probe.binary, negativeErrno: result, detail: detail)
            }
            let offset = probe.offset + found
            try checkProcess(probe.pid)
            // The identity of the very file the offset was read from: the link is made only while the path
            // still names it (`openPerfEvent`).
            return (file, offset, "\(device):\(inode)")
        }
    }

    /// A uprobe_multi link's file (symbolic links resolved) and the sorted file offsets of every function
    /// that matches one of its patterns; a pattern that matches none is refused.
    public static func uprobeMulti(_ probe: UprobeMultiTarget) -> Result<(file: String, offsets: [UInt64]), KernelError> {
        Result { () throws(KernelError) in
            let file = try resolvedFile(probe.binary)
            var offsets: Set<UInt64> = []
            var buffer = [UInt64](repeating: 0, count: Int(BT_PROBE_MAX_OFFSETS))
            for pattern in probe.symbols {
                let found = bt_elf_symbol_offsets(file, pattern, &buffer, UInt32(buffer.count))
                guard found > 0 else {
                    let detail: String? = switch found {
                    case 0: "no function matches '\(pattern)' among its symbols (.symtab, .dynsym)"
                    case -ENOEXEC: "not an ELF executable or library"
                    case -EINVAL: "not a regular file"
                    case -E2BIG: "'\(pattern)' matches more than \(BT_PROBE_MAX_OFFSETS) functions"
                    default: nil
                    }
                    throw KernelError(.step(.findSymbols), path: probe.binary, negativeErrno: found == 0 ? -ESRCH : found, detail: detail)
                }
                offsets.formUnion(buffer.prefix(Int(found)))
            }
            try checkProcess(probe.pid)
            return (file, offsets.sorted())
        }
    }

    /// A uprobe's binary with symbolic links resolved, as the kernel names the file it probes.
    private static func resolvedFile(_ binary: String) throws(KernelError) -> String {
        guard let resolved = realpath(binary, nil) else {
            let error = errno
            throw KernelError(.call(.open), path: binary, negativeErrno: -error, detail: error == ENOENT ? "no such file" : nil)
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Refuses a uprobe of a process that does not exist (nil: every process).
    private static func checkProcess(_ pid: Int32?) throws(KernelError) {
        if let pid, kill(pid, 0) != 0, errno == ESRCH {
            throw KernelError(.step(.findTask("process")), path: "\(pid)", negativeErrno: -ESRCH, detail: "no process \(pid)")
        }
    }

    /// Refuses a task iterator's process that does not exist or is a thread of another process, and a
    /// thread that does not exist (the kernel would refuse them with ENOENT or EINVAL during apply).
    public static func task(_ scope: TaskScope) -> Result<Void, KernelError> {
        Result { () throws(KernelError) in
            let id = scope.tid != 0 ? scope.tid : scope.pid
            let noun = scope.tid != 0 ? "thread" : "process"
            // /proc/ID is there for every thread id too, though only process ids are listed.
            guard case .success(let bytes) = FileBytes.read("/proc/\(id)/status") else {
                throw KernelError(.step(.findTask(noun)), path: "/proc/\(id)", negativeErrno: -ESRCH, detail: "no \(noun) \(id)")
            }
            let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("Tgid:") }
            let group = line.map { String($0.dropFirst(5).filter { $0 != "\t" && $0 != " " }) } ?? ""
            if case .process = scope, group != "\(id)" {
                throw KernelError(.step(.findTask("process")), path: "/proc/\(id)", negativeErrno: -EINVAL,
                                  detail: "\(id) is a thread of process \(group), not a process: declare tid: \(id)")
            }
        }
    }

    /// Whether kprobes can be attached, and the kernel has function `probe.function`.
    public static func kprobe(_ probe: KprobeTarget) -> Result<Void, KernelError> {
        var type: UInt32 = 0, bit: UInt32 = 0
        guard bt_pmu_type("kprobe", &type, &bit) == 0 else {
            return .failure(KernelError(.step(.findPMU("kprobe")), path: "/sys/bus/event_source/devices/kprobe", negativeErrno: -ENOENT,
                                        detail: "this kernel has no kprobe PMU (built without CONFIG_KPROBES): kprobes cannot be attached"))
        }
        let found = bt_kernel_function_exists(probe.function)
        guard found != 0 else {
            return .failure(KernelError(.step(.findKernelFunction), path: probe.function, negativeErrno: -ENOENT,
                                        detail: "no function \(probe.function) in /proc/kallsyms"))
        }
        return .success(())
    }

    /// A kprobe_multi link's functions (sorted): every kernel function that matches one of its patterns;
    /// refused where the kernel cannot attach such links (built without `CONFIG_FPROBE`).
    public static func kprobeMulti(_ probe: KprobeMultiTarget) -> Result<[String], KernelError> {
        Result { () throws(KernelError) in
            guard bt_kernel_function_exists("register_fprobe_ips") == 1 else {
                throw KernelError(.step(.findFprobe), path: "/proc/kallsyms", negativeErrno: -EOPNOTSUPP,
                                  detail: "this kernel cannot attach kprobe_multi links (built without CONFIG_FPROBE: no register_fprobe_ips in /proc/kallsyms)")
            }
            var functions: Set<String> = []
            var names = [CChar](repeating: 0, count: 1 << 20)
            for pattern in probe.functions {
                let found = bt_kernel_functions_matching(pattern, &names, names.count, UInt32(BT_PROBE_MAX_OFFSETS))
                guard found > 0 else {
                    throw KernelError(.step(.findKernelFunctions), path: pattern, negativeErrno: found == 0 ? -ESRCH : found,
                                      detail: found == 0 ? "no kernel function matches '\(pattern)' in /proc/kallsyms"
                                          : found == -E2BIG ? "'\(pattern)' matches more than \(BT_PROBE_MAX_OFFSETS) functions" : nil)
                }
                var start = 0
                for _ in 0..<Int(found) {
                    let end = names[start...].firstIndex(of: 0) ?? names.count
                    functions.insert(String(decoding: names[start..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self))
                    start = end + 1
                }
            }
            return functions.sorted()
        }
    }

    /// `perf_event_open` of the event a tracepoint, uprobe or kprobe link attaches through.
    static func openPerfEvent(_ resolved: ResolvedLink, for link: TreePath) throws(KernelError) -> Descriptor {
        func unresolved(_ what: String) -> KernelError {
            KernelError(.step(.createLink), path: link.description, detail: "the \(what) was not resolved")
        }
        let fd: Int32
        var isUprobe = false
        switch resolved.spec.target {
        case .probe(.tracepoint):
            guard let id = resolved.resolution.tracepointID else { throw unresolved("tracepoint") }
            fd = bt_perf_tracepoint_open(id)
        case .probe(.uprobe(let probe)):
            guard case .uprobe(let file, let offset, let planned) = resolved.resolution else { throw unresolved("uprobe") }
            isUprobe = true
            // The kernel opens the file by its path: the offset holds only for the file it was read from, so the
            // path must name that file before and after the event is made (a binary replaced in between, e.g. a
            // new build moved into place, would take the probe in the middle of another instruction).
            try checkIdentity(file, planned, for: link)
            fd = try probeEvent("uprobe", probe.isReturn, file, offset, pid: probe.pid ?? 0)
            if fd >= 0 {
                do throws(KernelError) { try checkIdentity(file, planned, for: link) } catch {
                    close(fd)
                    throw error
                }
            }
        case .probe(.kprobe(let probe)):
            fd = try probeEvent("kprobe", probe.isReturn, probe.function, probe.offset, pid: 0)
        default:
            throw KernelError(.step(.createLink), path: link.description, detail: "not a perf event link")
        }
        guard fd >= 0 else {
            throw KernelError(.call(.perfEventOpen), path: link.description, negativeErrno: fd,
                              detail: fd == -ENOENT || fd == -EINVAL ? "the kernel refused the event of \(resolved.summary)" : nil)
                .adding(KernelError.capabilityHint(fd, needs: isUprobe ? [.sysAdmin] : [.perfmon],
                                                   for: isUprobe ? "a uprobe perf event" : "a perf event"))
        }
        return Descriptor(owning: fd)
    }

    /// Refuses when `file` is no longer the file (`DEVICE:INODE`) a uprobe's offset was read from.
    private static func checkIdentity(_ file: String, _ planned: String, for link: TreePath) throws(KernelError) {
        var status = stat()
        guard stat(file, &status) == 0 else { throw KernelError(.call(.stat), path: file, negativeErrno: -errno) }
        let now = "\(status.st_dev):\(status.st_ino)"
        guard now == planned else {
            throw KernelError(.step(.createLink), path: link.description,
                              detail: "\(file) was replaced since the uprobe's offset was read from it (device:inode \(now), read from \(planned)): the offset may fall inside another instruction; run apply again")
        }
    }

    private static func probeEvent(_ pmu: String, _ isReturn: Bool, _ name: String, _ offset: UInt64, pid: Int32) throws(KernelError) -> Int32 {
        var type: UInt32 = 0, bit: UInt32 = 0
        let found = bt_pmu_type(pmu, &type, &bit)
        guard found == 0 else { throw KernelError(.step(.findPMU(pmu)), path: "/sys/bus/event_source/devices/\(pmu)", negativeErrno: found) }
        return bt_perf_probe_open(type, bit, isReturn ? 1 : 0, name, offset, pid)
    }

    private static let knownRawTracepoints = Mutex<Set<String>>([])
}
