import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization

/// Serves the Prometheus text exposition of `registry` at `GET /metrics` and the service's health at
/// `GET /healthz` (200 or 503, see `PassHealth`) (HTTP/1.1, SwiftNIO) until a graceful shutdown.
struct MetricsServer: Service {
    var host: String
    var port: Int
    var registry: PrometheusCollectorRegistry
    var health: PassHealth
    var logger: Logger

    /// `--metrics-address`: `PORT`, `:PORT` or `HOST:PORT` (`[V6]:PORT`); the host defaults to loopback.
    static func parse(_ address: String) -> (host: String, port: Int)? {
        var host = "127.0.0.1", portText = Substring(address)
        if let colon = address.lastIndex(of: ":") {
            let given = address[..<colon]
            if !given.isEmpty { host = given.hasPrefix("[") && given.hasSuffix("]") ? String(given.dropFirst().dropLast()) : String(given) }
            portText = address[address.index(after: colon)...]
        }
        guard let port = Int(portText), (0...65535).contains(port) else { return nil }
        return (host, port)
    }

    /// Connections served at once: a scraper needs one or two; more are closed as they come, so that idle
    /// or hostile clients can neither hold the descriptors a pass needs nor grow memory without bound.
    static let maxConnections = 16
    /// Requests answered on one connection before it is closed, and how long one may sit idle.
    static let maxRequestsPerConnection = 100
    static let idleTimeout = TimeAmount.seconds(10)

    func run() async throws {
        let registry = self.registry, health = self.health
        let open = ConnectionCount(limit: Self.maxConnections)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // A client that does not read its answers stops being answered (see `MetricsHandler`).
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 64 << 10, high: 256 << 10))
            .childChannelInitializer { channel in
                guard open.take() else { return channel.close() }
                channel.closeFuture.whenComplete { _ in open.give() }
                return channel.pipeline.addHandler(IdleStateHandler(allTimeout: Self.idleTimeout)).flatMap {
                    channel.pipeline.configureHTTPServerPipeline()
                }.flatMap {
                    channel.pipeline.addHandler(MetricsHandler(registry: registry, health: health))
                }
            }
            .bind(host: host, port: port)
            .get()
        logger.info("serving metrics", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "\(host):\(port)")"])
        try? await gracefulShutdown()
        try await channel.close()
    }
}

/// How many connections are open, bounded.
private final class ConnectionCount: Sendable {
    private let count = Mutex(0)
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Counts one more connection; false when there are `limit` already.
    func take() -> Bool {
        count.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func give() { count.withLock { $0 -= 1 } }
}

/// Answers `GET /metrics` with the registry's exposition, `GET /healthz` with the health, anything else with
/// 404. A connection is closed after `maxRequestsPerConnection` answers, when it idles, and when its
/// client lets answers pile up unread (pipelined requests it never reads).
private final class MetricsHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let registry: PrometheusCollectorRegistry
    let health: PassHealth
    private var head: HTTPRequestHead?
    private var answered = 0

    init(registry: PrometheusCollectorRegistry, health: PassHealth) {
        self.registry = registry
        self.health = health
    }

    /// The status, content type and body for `request`.
    private func answer(_ request: HTTPRequestHead) -> (HTTPResponseStatus, String, [UInt8]) {
        let path = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard request.method == .GET || request.method == .HEAD else {
            return (.methodNotAllowed, "text/plain", Array("only GET and HEAD\n".utf8))
        }
        switch path {
        case "/metrics": return (.ok, "text/plain; version=0.0.4; charset=utf-8", registry.emitToBuffer())
        case "/healthz":
            let (healthy, reason) = health.check()
            return (healthy ? .ok : .serviceUnavailable, "text/plain", Array((reason + "\n").utf8))
        default: return (.notFound, "text/plain", Array("not found: metrics are at /metrics, health at /healthz\n".utf8))
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request): head = request
        case .body: break
        case .end:
            guard let request = head else { return }
            head = nil
            guard context.channel.isWritable else {
                // Answers already pile up unread: nothing more is written for this client.
                context.close(promise: nil)
                return
            }
            answered += 1
            let (status, type, body) = answer(request)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: String(body.count))
            let keepAlive = request.isKeepAlive && answered < MetricsServer.maxRequestsPerConnection
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
            if request.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }
}
