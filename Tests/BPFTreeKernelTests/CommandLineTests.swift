import BPFTreeCommands
import BPFTreeTestSupport
import Foundation
import Glibc
import Testing

/// Hostile command lines: special files as inputs, absurd durations, signals at start-up, many files.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct CommandLineTests {
    static let text = manifest("    stats: {map: {type: array, valueSize: 8, maxEntries: 4}}")

    @Test func specialFilesAreRefusedWithoutBlockingOrReadingForever() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["m.yaml": Self.text])
        let fifo = files.path + "/fifo.yaml"
        try #require(mkfifo(fifo, 0o600) == 0)
        for (flag, path, expected) in [("-f", fifo, "a FIFO, not a regular file"), ("-f", "/dev/zero", "a character device, not a regular file"),
                                       ("--policy", "/dev/zero", "a character device, not a regular file")] {
            var arguments = ["diff", "--anchor", fs.path, flag, path]
            if flag == "--policy" { arguments += ["-f", files.path + "/m.yaml"] }
            let result = try bpftree(arguments)
            #expect(result.status == 1, "\(path): \(result.output)")
            #expect(result.stderr.contains("\(path):1:1: cannot read: \(expected)"), "\(result.output)")
        }
        #expect(try fs.shape().isEmpty)
    }

    @Test func durationsTakeHoursAndRefuseWhatIsOutOfRange() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["m.yaml": Self.text])
        for (option, value) in [("--interval", "1e300s"), ("--max-backoff", "1e300s"), ("--lock-timeout", "800h"), ("--interval", "inf")] {
            let result = try bpftree(["reconcile", "--once", "-f", files.path, "--anchor", fs.path, option, value])
            #expect(result.status == 64, "\(option) \(value): \(result.output)")
            #expect(result.stderr.contains(option), "\(result.output)")
        }
        let hours = try bpftree(["reconcile", "--once", "-f", files.path, "--anchor", fs.path, "--interval", "1h", "--lock-timeout", "1h"])
        #expect(hours.status == 0, "\(hours.output)")
    }

    /// Starts the service and sends `signal` after `delay` microseconds (from the spawn).
    func signalAtStart(_ signal: Int32, after delay: UInt32, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bpftreeExecutable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        usleep(delay)
        kill(process.processIdentifier, signal)
        return process
    }

    @Test func signalsAtStartUpNeitherKillTheServiceNorAreLost() throws {
        let fs = try ScratchBPFFS()
        let files = try ManifestDirectory(["m.yaml": Self.text])
        let arguments = ["reconcile", "-f", files.path, "--anchor", fs.path, "--interval", "1h"]
        var generator = SystemRandomNumberGenerator()
        for trial in 0..<8 {
            // From 10 ms: before that the dynamic loader may not have run the executable's own code, where
            // signals are first held (no process can act on a signal before that).
            let delay = UInt32.random(in: 10_000...40_000, using: &generator)
            let hung = try signalAtStart(SIGHUP, after: delay, arguments)
            usleep(300_000)
            #expect(hung.isRunning, "trial \(trial): SIGHUP after \(delay) µs killed the service")
            kill(hung.processIdentifier, SIGTERM)
            hung.waitUntilExit()
            #expect(hung.terminationReason == .exit && hung.terminationStatus == 0, "trial \(trial): \(hung.terminationStatus)")

            let stopped = try signalAtStart(SIGTERM, after: delay, arguments)
            stopped.waitUntilExit()
            #expect(stopped.terminationReason == .exit && stopped.terminationStatus == 0,
                    "trial \(trial): SIGTERM after \(delay) µs: \(stopped.terminationReason == .exit ? "exit" : "signal") \(stopped.terminationStatus)")
        }
    }

    @Test func fiveThousandManifestFilesAreAllRead() throws {
        let fs = try ScratchBPFFS()
        var texts: [String: String] = [:]
        for index in 0..<5_000 { texts["m\(index).yaml"] = manifest("    s: {directory: {}}", name: "m\(index)", root: "jobs/m\(index)") }
        let files = try ManifestDirectory(texts)
        let arguments = (0..<5_000).flatMap { ["-f", "\(files.path)/m\($0).yaml"] }
        let result = try bpftree(["apply", "--anchor", fs.path] + arguments)
        #expect(result.status == 0, "\(result.output.prefix(500))")
        #expect(try listing(fs.at("jobs"), format: "%P").count == 10_000)
    }

    @Test(arguments: [
        (["diff", "-f", "a.yaml", "-f", "b.yaml", "--anchor", "x"], ["diff", "--anchor", "x"], ["a.yaml", "b.yaml"]),
        (["apply", "--file=a.yaml", "--file", "b", "--", "-f", "c"], ["apply", "--", "-f", "c"], ["a.yaml", "b"]),
        (["diff", "-f", "--anchor"], ["diff", "-f", "--anchor"], []),
    ])
    func fileArgumentsAreTakenOutInOrder(_ given: [String], _ rest: [String], _ files: [String]) {
        let split = FileArguments.split(given)
        #expect(split.arguments == rest && split.files == files)
    }
}
