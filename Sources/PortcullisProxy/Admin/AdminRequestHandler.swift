import NIOCore
import NIOHTTP1
import PortcullisStore

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
/// `/metrics`, `/healthz`, `/readyz`, and the admin API under `/api/` (``AdminAPI``). Off the
/// request path, so it may wait for a scrape or a file write.
final class AdminRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let endpoints: AdminServer.Endpoints
    private var request: HTTPRequestHead?
    private var body: ByteBuffer?
    /// A request body larger than this (an admin API call is small) is refused with 413.
    static let maxBody = 64 * 1024

    init(endpoints: AdminServer.Endpoints) {
        self.endpoints = endpoints
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.request = head
            self.body = nil
        case .body(var part):
            guard let head = self.request else { return }
            if (self.body?.readableBytes ?? 0) + part.readableBytes > Self.maxBody {
                self.request = nil
                self.body = nil
                var close = head
                close.headers.replaceOrAdd(name: "connection", value: "close")
                return self.writeJSON(
                    .payloadTooLarge,
                    #"{"error":"request_body_too_large","error_description":"admin API bodies are at most 64 KiB"}"#,
                    to: close,
                    context: context
                )
            }
            if self.body == nil { self.body = part } else { self.body!.writeBuffer(&part) }
        case .end:
            guard let head = self.request else { return }
            let body = self.body.map { Array($0.readableBytesView) } ?? []
            self.request = nil
            self.body = nil
            let path = head.uri.prefix { $0 != "?" }
            if AdminAPI.isAPIPath(path) {
                self.callAPI(head, path: head.uri[...], body: body, context: context)
            } else {
                self.respond(to: head, context: context)
            }
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

    private func callAPI(_ head: HTTPRequestHead, path: Substring, body: [UInt8], context: ChannelHandlerContext) {
        guard let api = self.endpoints.api else {
            return self.writeJSON(.notFound, #"{"error":"not_found","error_description":"no admin API here"}"#, to: head, context: context)
        }
        let actor: AuditActor
        switch api.authorize(head.headers) {
        case .allowed(let name):
            actor = AuditActor(name: name, source: context.channel.remoteAddress?.ipAddress ?? "-")
        case .disabled:
            return self.writeJSON(
                .forbidden,
                #"{"error":"admin_api_disabled","error_description":"set admin.tokens (or admin.token_file) to use the admin API"}"#,
                to: head,
                context: context
            )
        case .missing, .wrong:
            return self.writeJSON(
                .unauthorized,
                #"{"error":"invalid_token","error_description":"the admin API needs Authorization: Bearer <admin token>"}"#,
                extraHeaders: [("WWW-Authenticate", "Bearer realm=\"portcullis-admin\"")],
                to: head,
                context: context
            )
        }
        let method = head.method
        let path = String(path)
        context.eventLoop.makeFutureWithTask {
            await api.handle(method: method, path: path[...], body: body, actor: actor)
        }.assumeIsolated().whenSuccess { response in
            self.write(
                response.status,
                contentType: "application/json",
                body: response.body.isEmpty ? "" : response.body + "\n",
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
