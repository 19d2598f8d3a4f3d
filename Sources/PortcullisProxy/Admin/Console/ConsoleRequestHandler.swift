import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import PortcullisAuth

/// The admin console's routes under `/ui`, ahead of ``AdminRequestHandler`` in each admin
/// connection's pipeline; every other request passes through untouched.
///
/// - `GET /ui/`, `/ui/app.js`, `/ui/app.css`: the pages (``ConsoleAssets``), no session needed.
/// - `POST /ui/session` `{"token"}`: sign in with an admin token; sets the session cookie and
///   answers the CSRF token. `GET /ui/session`: who is signed in (and the CSRF token again, for
///   a reloaded page). `DELETE /ui/session`: sign out.
/// - `/ui/api/v1/...`: the admin API, with the session instead of the admin token.
/// - `GET /ui/live/summary`, `/ui/live/clients/{id}/minutes`: counts from ``RecentRequests``;
///   `GET /ui/live/clients/{id}/log`: the client's access-log lines as Server-Sent Events.
///
/// Every request but the pages' must come from the console's own origin (``ConsoleRequestGuard``),
/// and a change must carry the session's CSRF token.
final class ConsoleRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let console: Console?
    private var request: HTTPRequestHead?
    private var body: ByteBuffer?
    private var bodyTooLarge = false
    private var tls = false
    /// A live view in progress: its session, and the last line sent.
    private var live: (sessionID: String, client: String, lastSequence: UInt64, ticks: Int, head: HTTPRequestHead)?

    static let liveInterval = TimeAmount.milliseconds(500)
    /// A comment line keeps a quiet live view's connection open through proxies.
    static let keepAliveTicks = 30

    init(console: Console?) {
        self.console = console
    }

    static func isConsolePath(_ path: Substring) -> Bool { path == "/ui" || path.hasPrefix("/ui/") }

    func handlerAdded(context: ChannelHandlerContext) {
        self.tls = (try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)) != nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        if case .head(let head) = part {
            guard Self.isConsolePath(head.uri.prefix { $0 != "?" }) else {
                self.request = nil
                return context.fireChannelRead(data)
            }
            self.request = head
            self.body = nil
            self.bodyTooLarge = false
            return
        }
        guard let head = self.request else { return context.fireChannelRead(data) }
        switch part {
        case .head:
            break
        case .body(var chunk):
            if (self.body?.readableBytes ?? 0) + chunk.readableBytes > AdminRequestHandler.maxBody {
                self.bodyTooLarge = true
                self.body = nil
            } else if !self.bodyTooLarge {
                if self.body == nil { self.body = chunk } else { self.body!.writeBuffer(&chunk) }
            }
        case .end:
            self.request = nil
            let body = self.body.map { Array($0.readableBytesView) } ?? []
            self.body = nil
            if self.bodyTooLarge {
                return self.write(.payloadTooLarge, json: ["error": "request_body_too_large"], to: head, context: context)
            }
            self.serve(head, body: body, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A live view reads nothing from the browser for minutes: not idle.
        if self.live != nil && event is IdleStateHandler.IdleStateEvent { return }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.stopLive()
        context.fireChannelInactive()
    }

    // MARK: - Routes

    private func serve(_ head: HTTPRequestHead, body: [UInt8], context: ChannelHandlerContext) {
        let path = String(head.uri.prefix { $0 != "?" })
        if let asset = ConsoleAssets.asset(path: path) {
            guard head.method == .GET || head.method == .HEAD else {
                return self.write(.methodNotAllowed, json: ["error": "method_not_allowed"], extra: [("Allow", "GET, HEAD")], to: head, context: context)
            }
            return self.write(.ok, contentType: asset.contentType, body: asset.body, to: head, context: context)
        }
        if path == "/ui" {
            return self.write(.permanentRedirect, contentType: "text/plain", body: "", extra: [("Location", "/ui/")], to: head, context: context)
        }
        guard let console = self.console else {
            return self.error(.notFound, "not_found", "the console needs the admin API: set admin.token_file", head, context)
        }
        // Cookie or not, nothing but a page may be asked for from another site.
        if case .crossSite(let why) = ConsoleRequestGuard.checkOrigin(method: head.method, headers: head.headers, tls: self.tls) {
            return self.error(.forbidden, "cross_site_request", why, head, context)
        }
        if path == "/ui/session" {
            return self.session(head, body: body, console: console, context: context)
        }
        guard let sessionID = ConsoleRequestGuard.sessionID(head.headers), let session = console.session(sessionID) else {
            return self.error(.unauthorized, "not_signed_in", "sign in to the console first", head, context)
        }
        if case .badCSRF = ConsoleRequestGuard.check(method: head.method, headers: head.headers, tls: self.tls, csrfToken: session.csrfToken) {
            return self.error(.forbidden, "csrf_token_invalid", "a change needs this session's X-CSRF-Token", head, context)
        }
        if path.hasPrefix("/ui/api/") {
            let target = String(head.uri.dropFirst("/ui".count))
            let source = context.channel.remoteAddress?.ipAddress ?? "-"
            context.eventLoop.makeFutureWithTask {
                await console.callAPI(method: head.method, target: target, body: body, session: session, source: source)
            }.assumeIsolated().whenSuccess { response in
                self.write(response.status, contentType: "application/json", body: response.body.isEmpty ? "" : response.body + "\n", to: head, context: context)
            }
            return
        }
        let segments = path.split(separator: "/").map { $0.removingPercentEncoding ?? String($0) }
        guard head.method == .GET || head.method == .HEAD else {
            return self.error(.methodNotAllowed, "method_not_allowed", "use GET", head, context)
        }
        switch (segments.count, segments.dropFirst().first, segments.last) {
        case (3, "live"?, "summary"?):
            self.write(.ok, json: console.summaryJSON(), to: head, context: context)
        case (5, "live"?, "minutes"?) where segments[2] == "clients":
            self.write(.ok, json: console.minutesJSON(client: segments[3]), to: head, context: context)
        case (5, "live"?, "log"?) where segments[2] == "clients":
            self.startLive(client: segments[3], sessionID: sessionID, head: head, console: console, context: context)
        default:
            self.error(.notFound, "not_found", "no such console resource", head, context)
        }
    }

    /// Sign-in, who is signed in, sign-out.
    private func session(_ head: HTTPRequestHead, body: [UInt8], console: Console, context: ChannelHandlerContext) {
        let cookie = ConsoleRequestGuard.sessionID(head.headers)
        switch head.method {
        case .POST:
            let address = context.channel.remoteAddress?.ipAddress ?? "-"
            if let retryAfter = console.signInRetryAfter(address: address) {
                return self.write(
                    .tooManyRequests,
                    json: ["error": "too_many_attempts", "error_description": "too many wrong tokens from this address: wait \(retryAfter) s"],
                    extra: [("Retry-After", String(retryAfter))],
                    to: head,
                    context: context
                )
            }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
                let token = object["token"] as? String,
                let admin = console.adminName(forToken: token)
            else {
                console.signInFailed(address: address)
                return self.error(.unauthorized, "invalid_token", "that is not an admin token of this gateway", head, context)
            }
            if let cookie { console.sessions.end(cookie) }
            let (id, session) = console.sessions.create(admin: admin, tokenSHA256: ClientSecret.sha256Hex(token))
            let setCookie = ConsoleRequestGuard.setCookie(id: id, maxAgeSeconds: console.sessions.absoluteTimeoutMillis / 1000, tls: self.tls)
            self.write(.ok, json: Self.sessionObject(session), extra: [("Set-Cookie", setCookie)], to: head, context: context)
        case .GET, .HEAD:
            guard let cookie, let session = console.session(cookie) else {
                return self.error(.unauthorized, "not_signed_in", "sign in to the console first", head, context)
            }
            self.write(.ok, json: Self.sessionObject(session), to: head, context: context)
        case .DELETE:
            guard let cookie, let session = console.sessions.peek(cookie) else {
                return self.error(.unauthorized, "not_signed_in", "not signed in", head, context)
            }
            guard ConsoleRequestGuard.check(method: head.method, headers: head.headers, tls: self.tls, csrfToken: session.csrfToken) == .allowed else {
                return self.error(.forbidden, "csrf_token_invalid", "sign-out needs this session's X-CSRF-Token", head, context)
            }
            console.sessions.end(cookie)
            let clear = ConsoleRequestGuard.setCookie(id: nil, maxAgeSeconds: 0, tls: self.tls)
            self.write(.noContent, contentType: "application/json", body: "", extra: [("Set-Cookie", clear)], to: head, context: context)
        default:
            self.error(.methodNotAllowed, "method_not_allowed", "use POST, GET or DELETE", head, context)
        }
    }

    private static func sessionObject(_ session: ConsoleSessions.Session) -> [String: Any] {
        ["admin": session.admin, "csrf_token": session.csrfToken, "expires_ms": session.expiresMillis]
    }

    // MARK: - Live view (Server-Sent Events)

    private func startLive(client: String, sessionID: String, head: HTTPRequestHead, console: Console, context: ChannelHandlerContext) {
        guard let recent = console.recent else {
            return self.error(.notFound, "not_available", "this gateway keeps no recent lines", head, context)
        }
        guard console.liveViews.wrappingIncrementThenLoad(ordering: .relaxed) <= console.maxLiveViews else {
            console.liveViews.wrappingDecrement(ordering: .relaxed)
            return self.error(.serviceUnavailable, "too_many_live_views", "close another live view first", head, context)
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/event-stream; charset=utf-8")
        for (name, value) in ConsoleRequestGuard.securityHeaders { headers.add(name: name, value: value) }
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
        let lastEventID = head.headers.first(name: "last-event-id").flatMap { UInt64($0) } ?? 0
        // A new view starts with the last 50 lines; a reconnection resumes after the last it saw.
        let lines = recent.lines(client: client, after: lastEventID, limit: 50)
        self.live = (sessionID, client, lines.last?.sequence ?? lastEventID, 0, head)
        self.sendLines(lines, context: context)
        context.flush()
        self.scheduleLiveTick(console: console, recent: recent, context: context)
    }

    private func scheduleLiveTick(console: Console, recent: RecentRequests, context: ChannelHandlerContext) {
        context.eventLoop.assumeIsolated().scheduleTask(in: Self.liveInterval) {
            guard var live = self.live, context.channel.isActive else { return self.stopLive() }
            guard console.session(live.sessionID, touch: false) != nil else {
                // Signed out or expired: the view ends, and the browser does not reconnect.
                let buffer = context.channel.allocator.buffer(string: "event: signed-out\ndata: {}\n\n")
                context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
                self.stopLive()
                context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
                return
            }
            let lines = recent.lines(client: live.client, after: live.lastSequence, limit: 200)
            live.ticks += 1
            if let last = lines.last { live.lastSequence = last.sequence }
            self.live = live
            self.sendLines(lines, context: context)
            if lines.isEmpty && live.ticks % Self.keepAliveTicks == 0 {
                context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: ": keep-alive\n\n")))), promise: nil)
            }
            context.flush()
            self.scheduleLiveTick(console: console, recent: recent, context: context)
        }
    }

    private func sendLines(_ lines: [RecentRequests.Line], context: ChannelHandlerContext) {
        guard !lines.isEmpty else { return }
        var text = ""
        for line in lines {
            // An access-log line is one line of JSON: no newline inside.
            text += "id: \(line.sequence)\ndata: \(line.text)\n\n"
        }
        context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
    }

    private func stopLive() {
        guard self.live != nil else { return }
        self.live = nil
        self.console?.liveViews.wrappingDecrement(ordering: .relaxed)
    }

    // MARK: - Writing

    private func error(_ status: HTTPResponseStatus, _ code: String, _ description: String, _ head: HTTPRequestHead, _ context: ChannelHandlerContext) {
        self.write(status, json: ["error": code, "error_description": description], to: head, context: context)
    }

    private func write(
        _ status: HTTPResponseStatus,
        json: [String: Any],
        extra: [(String, String)] = [],
        to head: HTTPRequestHead,
        context: ChannelHandlerContext
    ) {
        self.write(status, contentType: "application/json", body: Console.json(json) + "\n", extra: extra, to: head, context: context)
    }

    private func write(
        _ status: HTTPResponseStatus,
        contentType: String,
        body: String,
        extra: [(String, String)] = [],
        to head: HTTPRequestHead,
        context: ChannelHandlerContext
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        for (name, value) in ConsoleRequestGuard.securityHeaders + extra { headers.add(name: name, value: value) }
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD && !body.isEmpty {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        if !head.isKeepAlive {
            written.whenComplete { _ in context.close(promise: nil) }
        }
    }
}

@available(*, unavailable)
extension ConsoleRequestHandler: Sendable {}
