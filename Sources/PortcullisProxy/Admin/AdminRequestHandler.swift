import NIOCore
import NIOHTTP1

/// What the admin listener answers, decided from the request line alone.
enum AdminRoute: Equatable {
    case metrics
    case healthz
    case readyz
    case methodNotAllowed
    case notFound

    init(method: HTTPMethod, uri: String) {
        let path = uri.prefix { $0 != "?" }
        let route: AdminRoute
        switch path {
        case "/metrics": route = .metrics
        case "/healthz": route = .healthz
        case "/readyz": route = .readyz
        default:
            self = .notFound
            return
        }
        self = method == .GET || method == .HEAD ? route : .methodNotAllowed
    }
}

/// One admin connection, behind NIOHTTP1's server pipeline (which orders pipelined requests):
/// `/metrics`, `/healthz` and `/readyz`. Off the request path, so it may wait for a scrape.
final class AdminRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let endpoints: AdminServer.Endpoints
    private var request: HTTPRequestHead?

    init(endpoints: AdminServer.Endpoints) {
        self.endpoints = endpoints
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.request = head
        case .body:
            break
        case .end:
            guard let head = self.request else { return }
            self.request = nil
            self.respond(to: head, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        switch AdminRoute(method: head.method, uri: head.uri) {
        case .metrics:
            self.endpoints.metricsText(context.eventLoop).hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                switch result {
                case .success(let text):
                    self.write(.ok, contentType: PrometheusTextWriter.contentType, body: text, to: head, context: context)
                case .failure:
                    self.writeJSON(
                        .serviceUnavailable,
                        #"{"error":"unavailable","error_description":"metrics could not be gathered"}"#,
                        to: head,
                        context: context
                    )
                }
            }
        case .healthz:
            self.writeJSON(.ok, #"{"status":"ok"}"#, to: head, context: context)
        case .readyz:
            if self.endpoints.isReady() {
                self.writeJSON(.ok, #"{"status":"ready"}"#, to: head, context: context)
            } else {
                self.writeJSON(.serviceUnavailable, #"{"status":"draining"}"#, to: head, context: context)
            }
        case .methodNotAllowed:
            self.writeJSON(
                .methodNotAllowed,
                #"{"error":"method_not_allowed","error_description":"use GET"}"#,
                extraHeaders: [("Allow", "GET, HEAD")],
                to: head,
                context: context
            )
        case .notFound:
            self.writeJSON(
                .notFound,
                #"{"error":"not_found","error_description":"the admin listener serves /metrics, /healthz and /readyz"}"#,
                to: head,
                context: context
            )
        }
    }

    private func writeJSON(
        _ status: HTTPResponseStatus,
        _ body: String,
        extraHeaders: [(String, String)] = [],
        to request: HTTPRequestHead,
        context: ChannelHandlerContext
    ) {
        self.write(status, contentType: "application/json", body: body + "\n", extraHeaders: extraHeaders, to: request, context: context)
    }

    private func write(
        _ status: HTTPResponseStatus,
        contentType: String,
        body: String,
        extraHeaders: [(String, String)] = [],
        to request: HTTPRequestHead,
        context: ChannelHandlerContext
    ) {
        let keepAlive = request.isKeepAlive
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "Cache-Control", value: "no-store")
        for (name, value) in extraHeaders {
            headers.add(name: name, value: value)
        }
        if !keepAlive {
            headers.add(name: "Connection", value: "close")
        }
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

@available(*, unavailable)
extension AdminRequestHandler: Sendable {}
