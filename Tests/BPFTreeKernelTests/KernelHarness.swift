import Foundation
import Glibc
import Testing

/// Whether this machine can run kernel tests; under CI=true they always run (and fail if they cannot).
enum KernelSupport {
    static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

    static let unavailableReason: String? = {
        if geteuid() != 0 { return "kernel tests need root (CAP_BPF, CAP_SYS_ADMIN) to mount a private bpffs" }
        if !FileManager.default.isExecutableFile(atPath: bpftool) { return "kernel tests need bpftool at \(bpftool)" }
        do {
            _ = try ScratchBPFFS()
        } catch {
            return "cannot mount a bpffs: \(error)"
        }
        return nil
    }()

    static var runnable: Bool { unavailableReason == nil || isCI }
    static var skipComment: Comment { Comment(rawValue: "skipped: \(unavailableReason ?? "")") }

    static let bpftool = "/usr/sbin/bpftool"
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
}

/// A private bpffs mounted on a new temporary directory, unmounted when released.
final class ScratchBPFFS {
    let path: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "bpftree-test-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw HarnessError(description: "mkdtemp: errno \(errno)") }
        path = String(cString: made)
        guard mount("bpf", path, "bpf", 0, nil) == 0 else {
            let error = errno
            rmdir(path)
            throw HarnessError(description: "mount -t bpf: \(String(cString: strerror(error)))")
        }
    }

    deinit {
        umount2(path, Int32(MNT_DETACH))
        rmdir(path)
    }

    func at(_ relative: String) -> String { relative.isEmpty ? path : path + "/" + relative }

    /// Every entry as `path type mode uid gid inode ctime`, from find(1) (stat only, never opens a pin).
    func snapshot() throws -> [String] {
        try listing(path, format: "%P %y %m %U %G %i %C@", hiding: ["bpftree_ledger", "bpftree_stamp", "bpftree_images"])
    }

    /// `path type mode` of every entry, for comparing shapes.
    func shape() throws -> [String] {
        try snapshot().map { $0.split(separator: " ").prefix(3).joined(separator: " ") }
    }
}

/// `find BASE -mindepth 1 -printf FORMAT` (stat only, never opens a pin), one line per entry, sorted:
/// without the kernel's preloaded iterators (maps.debug, progs.debug) and the lines starting with any of
/// `hiding` (by default bpftree's own files).
func listing(_ base: String, format: String, hiding: [String] = ["bpftree_"]) throws -> [String] {
    try run(["find", base, "-mindepth", "1", "-printf", format + "\n"]).stdout.split(separator: "\n").map(String.init)
        .filter { line in !(["maps.debug", "progs.debug"] + hiding).contains { line.hasPrefix($0) } }.sorted()
}

/// A temporary directory holding manifest files.
final class ManifestDirectory {
    let path: String

    init(_ files: [String: String]) throws {
        path = NSTemporaryDirectory() + "bpftree-manifests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, text) in files {
            try text.write(toFile: path + "/" + name, atomically: true, encoding: .utf8)
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

struct RunResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var output: String { stdout + stderr }
}

@discardableResult
func run(_ arguments: [String], environment: [String: String] = [:]) throws -> RunResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.merge(environment) { $1 }
    process.environment = env
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Both pipes at once: a child that fills one while the other is read would wait forever.
    nonisolated(unsafe) var stderr = Data()
    let done = DispatchSemaphore(value: 0)
    Thread {
        stderr = err.fileHandleForReading.readDataToEndOfFile()
        done.signal()
    }.start()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    done.wait()
    process.waitUntilExit()
    return RunResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                     stderr: String(decoding: stderr, as: UTF8.self))
}

/// The `bpftree` executable built next to this test bundle.
let bpftreeExecutable: String = {
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("bpftree").path
    if FileManager.default.isExecutableFile(atPath: beside) { return beside }
    let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return package.appendingPathComponent(".build/debug/bpftree").path
}()

@discardableResult
func bpftree(_ arguments: [String]) throws -> RunResult {
    try run([bpftreeExecutable] + arguments, environment: ["NO_COLOR": "1"])
}

/// `bpftool -j ARGS`, decoded.
func bpftool(_ arguments: [String]) throws -> Any {
    let result = try run([KernelSupport.bpftool, "-j"] + arguments)
    guard result.status == 0 else { throw HarnessError(description: "bpftool \(arguments): \(result.output)") }
    return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
}

func mapInfo(_ path: String) throws -> [String: Any] {
    guard let info = try bpftool(["map", "show", "pinned", path]) as? [String: Any] else {
        throw HarnessError(description: "no map info for \(path)")
    }
    return info
}

/// Bytes of a bpftool hex array such as ["0x64","0x00"].
func bytes(_ value: Any?) -> [UInt8] {
    (value as? [String] ?? []).compactMap { UInt8($0.dropFirst(2), radix: 16) }
}

func json(_ text: String) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        throw HarnessError(description: "not a JSON object: \(text)")
    }
    return object
}

/// Pins a new map at `path` with bpftool, as a user would by hand (the tree's pre-existing content).
func pinMapWithBpftool(_ path: String, type: String, key: Int, value: Int, entries: Int, name: String) throws {
    let made = try run([KernelSupport.bpftool, "map", "create", path, "type", type, "key", String(key), "value", String(value),
                        "entries", String(entries), "name", name])
    guard made.status == 0 else { throw HarnessError(description: "bpftool map create \(path): \(made.output)") }
}

/// A process (python3) that holds flock(LOCK_EX) on `directory` for `seconds`; returns it and its pid
/// once the lock is held.
func holdLock(on directory: String, seconds: Double) throws -> (Process, Int32) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", """
        import fcntl, os, sys, time
        fd = os.open(sys.argv[1], os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
        """, directory, String(seconds)]
    try startAndAwaitLine(process, what: "the lock holder")
    return (process, process.processIdentifier)
}

/// Starts `process` and returns once it has printed its first line (it is ready).
func startAndAwaitLine(_ process: Process, what: String) throws {
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    var line = Data()
    while !line.contains(UInt8(ascii: "\n")) {
        let chunk = out.fileHandleForReading.availableData
        if chunk.isEmpty { throw HarnessError(description: "\(what) exited early") }
        line += chunk
    }
}
