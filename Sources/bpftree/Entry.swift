import ArgumentParser
import BPFTreeCommands

/// The `bpftree` executable: runs the root command (async, for `reconcile`).
@main
struct Entry: AsyncMainProtocol {
    typealias Command = BPFTreeCommand
}
