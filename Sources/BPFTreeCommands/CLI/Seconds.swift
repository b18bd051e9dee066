import ArgumentParser

/// A duration given on the command line: `10` or `10s`, `500ms`, `2m`, `1h`.
struct Seconds: ExpressibleByArgument, CustomStringConvertible {
    var value: Double

    /// The longest duration accepted: 30 days.
    static let maximum = 30.0 * 86_400

    init(_ value: Double) { self.value = value }

    init?(argument: String) {
        let units: [(suffix: String, scale: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var text = Substring(argument)
        var scale = 1.0
        for unit in units where text.hasSuffix(unit.suffix) {
            text = text.dropLast(unit.suffix.count)
            scale = unit.scale
            break
        }
        guard let number = Double(text), number >= 0, number.isFinite, (number * scale).isFinite else { return nil }
        value = number * scale
    }

    /// Refuses a duration above `maximum` (a `Duration` of 1e300 seconds traps).
    func check(_ option: String) throws {
        if value > Self.maximum { throw ValidationError("\(option) \(self) is above the limit of 30 days (720h)") }
    }

    var description: String { "\(value)s" }

    static var defaultCompletionKind: CompletionKind { .default }
}
