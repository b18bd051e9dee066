import Foundation
import Glibc

/// Where a run's output goes: text as it happens (errors on stderr), or one JSON document at the end.
struct Console {
    var format: OutputFormat
    var text: TextRenderer

    init(format: OutputFormat) {
        self.format = format
        self.text = TextRenderer(color: isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil)
    }

    var isText: Bool { format == .text }

    func out(_ lines: [String]) {
        guard isText, !lines.isEmpty else { return }
        // Buffered by stdio: line by line on a terminal, in blocks into a pipe or file.
        print(lines.joined(separator: "\n"))
    }

    func out(_ line: String) { out([line]) }

    func err(_ lines: [String]) {
        guard isText, !lines.isEmpty else { return }
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
