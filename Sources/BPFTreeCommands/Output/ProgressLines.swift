import BPFTreeKernel
import Dispatch

/// The executor's per-action lines, rendered and printed in order on a thread of their own, so that a
/// large apply does not wait for its own output (it stamps the tree meanwhile). `finish` returns once
/// every line is out; call it before printing anything else.
final class ProgressLines: @unchecked Sendable {
    private let console: Console
    private let queue = DispatchQueue(label: "bpftree.progress")
    /// Results not handed to the queue yet (touched by the calling thread only).
    private var pending: [ActionResult] = []

    /// Lines go to the queue in groups: one hand-over per line would cost more than the line.
    private static let group = 512
    /// Groups handed over and not printed yet: at most this many, so that a printer behind the executor
    /// holds a few thousand results, not all of a large plan's.
    private let inFlight = DispatchSemaphore(value: 4)

    /// Lines for `console`, or nil when it shows none (JSON output, a service logging above debug).
    init?(showing console: Console) {
        guard console.showsProgress, console.isText else { return nil }
        self.console = console
    }

    func add(_ result: ActionResult) {
        pending.append(result)
        if pending.count >= Self.group { handOver() }
    }

    /// A line after the results added so far.
    func add(line: String) {
        handOver()
        enqueue([line])
    }

    func finish() {
        handOver()
        queue.sync {}
    }

    private func handOver() {
        guard !pending.isEmpty else { return }
        let results = pending, text = console.text
        pending = []
        enqueue(results.map { text.progress($0) })
    }

    /// Hands `lines` (rendered on the queue) to the printer, waiting while four groups are ahead of them.
    private func enqueue(_ lines: @autoclosure @escaping @Sendable () -> [String]) {
        let console = console, inFlight = inFlight
        inFlight.wait()
        queue.async {
            console.out(lines())
            inFlight.signal()
        }
    }
}
