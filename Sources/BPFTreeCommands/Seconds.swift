import ArgumentParser

/// A duration given on the command line: `10` or `10s`, `500ms`, `2m`.
struct Seconds: ExpressibleByArgument, CustomStringConvertible {
    var value: Double

    init(_ value: Double) { self.value = value }

    init?(argument: String) {
        let units: [(suffix: String, scale: Double)] = [("ms", 0.001), ("s", 1), ("m", 60)]
        var text = Substring(argument)
        var scale = 1.0
        for unit in units where text.hasSuffix(unit.suffix) {
            text = text.dropLast(unit.suffix.count)
            scale = unit.scale
            break
        }
        guard let number = Double(text), number >= 0, number.isFinite else { return nil }
        value = number * scale
    }

    var description: String { "\(value)s" }
}
