import Synchronization

/// `-f PATH` arguments taken out of the command line before swift-argument-parser sees it: its removal of
/// parsed arguments costs time linear in the arguments left, so 20,000 `-f` took 40 s; taken out first,
/// they cost one pass. `CommonOptions` puts them back in order.
public enum FileArguments {
    private static let taken = Mutex<[String]>([])

    /// `arguments` without the `-f PATH`, `--file PATH` and `--file=PATH` before a `--`, and those paths
    /// in order.
    public static func split(_ arguments: [String]) -> (arguments: [String], files: [String]) {
        var kept: [String] = [], files: [String] = []
        kept.reserveCapacity(arguments.count)
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                kept += arguments[index...]
                break
            }
            if (argument == "-f" || argument == "--file"), index + 1 < arguments.count, !arguments[index + 1].hasPrefix("-") {
                files.append(arguments[index + 1])
                index += 2
                continue
            }
            if argument.hasPrefix("--file=") {
                files.append(String(argument.dropFirst("--file=".count)))
            } else {
                kept.append(argument)
            }
            index += 1
        }
        return (kept, files)
    }

    /// Takes the `-f` paths out of `arguments` for `CommonOptions`; returns the rest.
    public static func take(from arguments: [String]) -> [String] {
        let (rest, files) = split(arguments)
        taken.withLock { $0 = files }
        return rest
    }

    /// The paths taken out, in order (once).
    static func claim() -> [String] { taken.withLock { files in defer { files = [] }; return files } }
}
