import FoundationEssentials
import Glibc

/// Where a run's output goes: text as it happens (errors on stderr), one JSON document at the end, or
/// (for the reconcile service) a log.
struct Console: Sendable {
    var format: OutputFormat
    var text: TextRenderer
    /// What a line is: output, or on stderr a warning or an error.
    enum Severity: Sendable {
        case output, warning, error
    }

    /// When set, text lines go here instead of stdout and stderr, without the `warning:`/`error:` prefix
    /// a terminal shows.
    var sink: (@Sendable (_ lines: [String], _ severity: Severity) -> Void)?
    /// Whether per-action progress lines are wanted (a service logging above debug drops them unrendered).
    var showsProgress = true

    init(format: OutputFormat, sink: (@Sendable ([String], Severity) -> Void)? = nil) {
        self.format = format
        self.sink = sink
        self.text = TextRenderer(color: sink == nil && isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil)
    }

    var isText: Bool { format == .text }

    func out(_ lines: [String]) {
        guard isText, !lines.isEmpty else { return }
        if let sink { return sink(lines, .output) }
        // Buffered by stdio: line by line on a terminal, in blocks into a pipe or file.
        print(lines.joined(separator: "\n"))
    }

    func out(_ line: String) { out([line]) }

    func err(_ lines: [String]) { write(lines, .error) }

    /// `error: message`, then `more` lines.
    func fail(_ message: String, _ more: [String] = []) { write([message] + more, .error, prefix: "error: ") }

    /// `warning: message`.
    func warn(_ message: String) { write([message], .warning, prefix: "warning: ") }

    private func write(_ lines: [String], _ severity: Severity, prefix: String = "") {
        guard isText, !lines.isEmpty else { return }
        if let sink { return sink(lines, severity) }
        fflush(nil)
        let first = prefix + lines[0]
        let bytes = Array(([first] + lines.dropFirst()).joined(separator: "\n").utf8) + [UInt8(ascii: "\n")]
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(STDERR_FILENO, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }

    /// Prints the JSON document (JSON mode only).
    func finish(_ report: RunReport) {
        guard format == .json else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        if let data = try? encoder.encode(report) {
            print(String(decoding: data, as: UTF8.self))
        }
    }
}
