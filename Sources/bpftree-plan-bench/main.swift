// S5 of bench/run: the planner alone, in process, on desired and live trees of N entries (default
// 100,000): directories of 20 maps each, as in S1. Prints one line per case: "<label> <seconds>", the
// median of five runs.
import BPFTreeCore
import BPFTreeYAML
import Glibc

let requested = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 100_000
let mapsPerDirectory = 20
let directories = max(1, requested / (mapsPerDirectory + 1))

var desired: [DesiredEntry] = []
var converged = LiveTree()
var inspected = LiveTree()
var records: [LedgerRecord] = []
let anchorEntry = LiveEntry(kind: .directory, mode: 0o755, inode: 1)
converged.entries[.anchor] = anchorEntry
inspected.entries[.anchor] = anchorEntry
var inode: UInt64 = 100
for d in 0..<directories {
    let directory = TreePath([padded(d, width: 5, prefix: "d")])
    let origin = Origin(manifest: "bench", location: SourceLocation(file: "bench.yaml", line: d + 1, column: 5), field: "spec.entries")
    desired.append(DesiredEntry(path: directory, kind: .directory, mode: 0o755, origin: origin))
    inode += 1
    let live = LiveEntry(kind: .directory, mode: 0o755, inode: inode)
    converged.entries[directory] = live
    inspected.entries[directory] = live
    records.append(LedgerRecord(path: directory, kind: .directory, inode: inode, manifest: "bench"))
    for m in 0..<mapsPerDirectory {
        let path = directory.appending(padded(m, width: 2, prefix: "m"))
        var spec = MapSpec(type: m % 2 == 0 ? .array : .hash, keySize: 4, valueSize: 8, maxEntries: 1, name: path.name)
        spec.contents = [MapEntry(key: [0, 0, 0, 0], value: [UInt8(m), 0, 0, 0, 0, 0, 0, 0])]
        desired.append(DesiredEntry(path: path, kind: .map(spec), mode: 0o600, origin: origin))
        inode += 1
        let info = LiveMapInfo(id: UInt32(inode), type: spec.type.kernelValue, keySize: 4, valueSize: 8, maxEntries: 1,
                               flags: spec.reportedFlags, name: path.name)
        converged.entries[path] = LiveEntry(kind: .recordedMap(fingerprint: spec.fingerprint), mode: 0o600, inode: inode)
        inspected.entries[path] = LiveEntry(kind: .map(info), mode: 0o600, inode: inode)
        records.append(LedgerRecord(path: path, kind: .map, inode: inode, fingerprint: spec.fingerprint, manifest: "bench"))
    }
}
let tree = DesiredTree(entries: desired, roots: [.anchor])
let ledger = Ledger(records: records)
var empty = LiveTree()
empty.entries[.anchor] = anchorEntry

/// The median of `repetitions` runs (this machine is a VM whose timings vary from run to run).
@MainActor func measure(_ label: String, expectActions: Bool, _ live: LiveTree, _ ledger: Ledger, repetitions: Int = 5) {
    let clock = ContinuousClock()
    var times: [Double] = []
    for _ in 0..<repetitions {
        var plan = Plan()
        let elapsed = clock.measure { plan = Planner.plan(desired: tree, live: live, ledger: ledger) }
        guard plan.problems.isEmpty, plan.hasChanges == expectActions else {
            print("unexpected plan for \(label): \(plan.actions.count) actions, \(plan.problems.count) problems")
            exit(2)
        }
        times.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
    print("planner \(label), \(desired.count) entries \(times.sorted()[repetitions / 2])")
}

measure("from empty", expectActions: true, empty, Ledger())
measure("no-op, pins vouched by the ledger", expectActions: false, converged, ledger)
measure("no-op, pins inspected", expectActions: false, inspected, ledger)

/// `prefix` and `number` zero-padded to `width` digits, e.g. d00042.
func padded(_ number: Int, width: Int, prefix: String) -> String {
    let digits = String(number)
    return prefix + String(repeating: "0", count: max(0, width - digits.count)) + digits
}
