import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

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

    func run() async throws {
        let registry = self.registry, health = self.health
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
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

/// Answers `GET /metrics` with the registry's exposition, `GET /healthz` with the health, anything else with 404.
private final class MetricsHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let registry: PrometheusCollectorRegistry
    let health: PassHealth
    private var head: HTTPRequestHead?

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

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request): head = request
        case .body: break
        case .end:
            guard let request = head else { return }
            head = nil
            let (status, type, body) = answer(request)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: String(body.count))
            if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
            if request.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            }
            let keepAlive = request.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }
}
