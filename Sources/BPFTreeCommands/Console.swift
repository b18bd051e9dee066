import Foundation
import Glibc

/// Where a run's output goes: text as it happens (errors on stderr), one JSON document at the end, or
/// (for the reconcile service) a log.
struct Console {
    var format: OutputFormat
    var text: TextRenderer
    /// When set, text lines go here instead of stdout and stderr (`isError`: a stderr line).
    var sink: (@Sendable (_ lines: [String], _ isError: Bool) -> Void)?

    init(format: OutputFormat, sink: (@Sendable ([String], Bool) -> Void)? = nil) {
        self.format = format
        self.sink = sink
        self.text = TextRenderer(color: sink == nil && isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil)
    }

    var isText: Bool { format == .text }

    func out(_ lines: [String]) {
        guard isText, !lines.isEmpty else { return }
        if let sink { return sink(lines, false) }
        // Buffered by stdio: line by line on a terminal, in blocks into a pipe or file.
        print(lines.joined(separator: "\n"))
    }

    func out(_ line: String) { out([line]) }

    func err(_ lines: [String]) {
        guard isText, !lines.isEmpty else { return }
        if let sink { return sink(lines, true) }
        fflush(nil)
        FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
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
