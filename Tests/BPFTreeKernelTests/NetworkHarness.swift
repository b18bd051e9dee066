import Foundation
import Glibc
import Synchronization
import Testing

/// Veth pairs made so far by this process: each gets its own names and subnet.
private let vethsMade = Atomic<Int>(0)

/// A veth pair made for one test: `host` in bpftree's network namespace (10.N.0.1), `peer` in a network
/// namespace of its own (10.N.0.2), both up; removed again on deinit.
final class ScratchVeth {
    let host: String, peer: String, namespace: String
    let hostAddress: String

    init() throws {
        let made = vethsMade.wrappingAdd(1, ordering: .relaxed).newValue
        let tag = "\(getpid() % 100_000)x\(made % 1000)"
        (host, peer, namespace) = ("btv\(tag)a", "btv\(tag)b", "bpftree-test-\(tag)")
        // Another test process's pairs are likely in other subnets; traffic is bound to the device anyway.
        let octet = 10 + (Int(getpid()) * 17 + made) % 240
        hostAddress = "10.\(octet).0.1"
        for command in [["ip", "netns", "add", namespace],
                        ["ip", "link", "add", host, "type", "veth", "peer", "name", peer],
                        ["ip", "link", "set", peer, "netns", namespace],
                        ["ip", "addr", "add", "\(hostAddress)/24", "dev", host],
                        ["ip", "link", "set", host, "up"],
                        ["ip", "-n", namespace, "addr", "add", "10.\(octet).0.2/24", "dev", peer],
                        ["ip", "-n", namespace, "link", "set", peer, "up"]] {
            let result = try run(command)
            guard result.status == 0 else { throw HarnessError(description: "\(command): \(result.output)") }
        }
    }

    deinit {
        _ = try? run(["ip", "link", "del", host])
        _ = try? run(["ip", "netns", "del", namespace])
    }

    /// Sends `count` UDP datagrams from the peer's namespace to the host end, port 9.
    func sendFromPeer(count: Int) throws {
        let script = """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for _ in range(\(count)):
                s.sendto(b"x" * 64, ("\(hostAddress)", 9))
            """
        let result = try run(["ip", "netns", "exec", namespace, "python3", "-c", script])
        guard result.status == 0 else { throw HarnessError(description: "send from \(namespace): \(result.output)") }
    }

    /// Starts sending UDP datagrams to the host end, port 9, from the peer's namespace for `seconds`, as
    /// fast as one process can; returns the running sender.
    func startSendingFromPeer(seconds: Double) throws -> Process {
        let script = """
            import socket, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            end = time.time() + \(seconds)
            while time.time() < end:
                s.sendto(b"x" * 64, ("\(hostAddress)", 9))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", namespace, "python3", "-c", script]
        try process.run()
        return process
    }

    /// The peer end's address (in the namespace).
    var peerAddress: String { String(hostAddress.dropLast()) + "2" }

    /// Sends `count` UDP datagrams from bpftree's namespace to the peer end, port 9, out of the host end.
    func sendToPeer(count: Int) throws {
        let script = """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"\(host)")
            for _ in range(\(count)):
                s.sendto(b"x" * 64, ("\(peerAddress)", 9))
            """
        let result = try run(["python3", "-c", script])
        guard result.status == 0 else { throw HarnessError(description: "send to \(peerAddress): \(result.output)") }
    }

    /// How many of `count` UDP datagrams sent from the peer's namespace a socket on the host end receives
    /// (within half a second of the last), on `port` (0: any free one).
    func udpReceived(count: Int, port: Int = 0) throws -> Int {
        let script = """
            import socket, subprocess, sys
            r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            r.bind(("\(hostAddress)", \(port)))
            r.settimeout(0.5)
            port = r.getsockname()[1]
            send = "import socket\\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\\nfor _ in range(\(count)): s.sendto(b'x' * 64, ('\(hostAddress)', %d))" % port
            subprocess.run(["ip", "netns", "exec", "\(namespace)", "python3", "-c", send], check=True)
            n = 0
            try:
                while True:
                    r.recv(100)
                    n += 1
            except socket.timeout:
                pass
            print(n)
            """
        let result = try run(["python3", "-c", script])
        guard result.status == 0, let received = Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw HarnessError(description: "udp through \(host): \(result.output)")
        }
        return received
    }

    /// The XDP programs `bpftool net -j` lists on the host end: (program id, mode as bpftool names it).
    func attached() throws -> [(id: Int, mode: String)] {
        let listing = try #require(try bpftool(["net", "show", "dev", host]) as? [[String: Any]])
        let xdp = listing.first?["xdp"] as? [[String: Any]] ?? []
        return xdp.compactMap { entry in
            guard let id = entry["id"] as? Int, let mode = entry["mode"] as? String else { return nil }
            return (id, mode)
        }
    }
}
