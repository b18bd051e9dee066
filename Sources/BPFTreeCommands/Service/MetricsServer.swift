import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// Serves the Prometheus text exposition of `registry` at `GET /metrics` (HTTP/1.1, SwiftNIO) until a
/// graceful shutdown.
struct MetricsServer: Service {
    var host: String
    var port: Int
    var registry: PrometheusCollectorRegistry
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
        let registry = self.registry
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(MetricsHandler(registry: registry))
                }
            }
            .bind(host: host, port: port)
            .get()
        logger.info("serving metrics", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "\(host):\(port)")"])
        try? await gracefulShutdown()
        try await channel.close()
    }
}

/// Answers `GET /metrics` with the registry's exposition, anything else with 404.
private final class MetricsHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let registry: PrometheusCollectorRegistry
    private var head: HTTPRequestHead?

    init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request): head = request
        case .body: break
        case .end:
            guard let request = head else { return }
            head = nil
            let found = request.method == .GET && (request.uri == "/metrics" || request.uri.hasPrefix("/metrics?"))
            let body = found ? registry.emitToBuffer() : Array("not found: metrics are at /metrics\n".utf8)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain")
            headers.add(name: "Content-Length", value: String(body.count))
            if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
            let status: HTTPResponseStatus = found ? .ok : .notFound
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            let keepAlive = request.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }
}
