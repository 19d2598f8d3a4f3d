#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOHTTP1

/// Answers one connection's requests for ``DemoBackend``. It sits behind NIO's pipelining
/// handler, so it sees the next request only after it has written the `.end` of the current one.
final class DemoBackendHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private struct Request {
        var head: HTTPRequestHead
        var target: DemoRequestTarget
        var route: DemoRoute
        var bodyBytes: Int64 = 0
        var checksum = FNV1a64()
        var collected: [UInt8] = []
        var collectedTooMuch = false

        var isHEAD: Bool { self.head.method == .HEAD }
    }

    private struct Stream {
        var remaining: Int64
        var offset: Int64 = 0
        var closeAtEnd: Bool
    }

    private enum State {
        case idle
        case receiving(Request)
        /// A `/demo/slow` or `/demo/slowbody` timer is pending.
        case waiting(Scheduled<Void>)
        case streaming(Stream)
        /// `/demo/hang`: nothing more happens on this connection until the peer goes away.
        case hanging
        case closed
    }

    /// Chunks written in one event-loop turn before yielding to other connections.
    private static let chunksPerTurn = 16

    private let tracker: DemoConnectionTracker
    private var state = State.idle
    private var isPumping = false

    init(tracker: DemoConnectionTracker) {
        self.tracker = tracker
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.tracker.requestReceived()
            switch self.state {
            case .idle:
                let target = DemoRequestTarget(uri: head.uri)
                let request = Request(head: head, target: target, route: DemoRoute(target: target))
                if case .reset = request.route {
                    self.resetConnection(context: context)
                    return
                }
                self.state = .receiving(request)
                // curl waits a second for this before sending a large body.
                if head.version == .http1_1,
                    head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" })
                {
                    let interim = HTTPResponseHead(version: .http1_1, status: .continue)
                    context.writeAndFlush(Self.wrapOutboundOut(.head(interim)), promise: nil)
                }
            case .closed:
                ()
            case .receiving, .waiting, .streaming, .hanging:
                preconditionFailure("request head arrived in state \(self.state); the pipelining handler should hold it")
            }
        case .body(let buffer):
            guard case .receiving(var request) = self.state else { return }
            self.state = .idle  // drop the enum's reference so `collected` grows in place
            request.bodyBytes += Int64(buffer.readableBytes)
            switch request.route {
            case .upload:
                request.checksum.update(buffer)
            case .api where !request.collectedTooMuch:
                if request.collected.count + buffer.readableBytes > DemoCIPPAPI.maximumBodyBytes {
                    request.collectedTooMuch = true
                    request.collected = []
                } else {
                    request.collected.append(contentsOf: buffer.readableBytesView)
                }
            default:
                ()
            }
            self.state = .receiving(request)
        case .end:
            guard case .receiving(let request) = self.state else { return }
            self.dispatch(context: context, request)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .streaming = self.state, context.channel.isWritable {
            self.pump(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    /// A `/demo/slow` request counted in the stats' in-flight figure.
    private var countedSlow = false

    private func endSlow() {
        if self.countedSlow {
            self.countedSlow = false
            self.tracker.slowEnded()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.endSlow()
        if case .waiting(let timer) = self.state {
            timer.cancel()
        }
        self.state = .closed
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.state = .closed
        context.close(promise: nil)
    }

    // MARK: - Routes

    private func dispatch(context: ChannelHandlerContext, _ request: Request) {
        switch request.route {
        case .api(let endpoint):
            let answer =
                request.collectedTooMuch
                ? .error(413, "Request bodies above \(DemoCIPPAPI.maximumBodyBytes) bytes are not accepted")
                : DemoCIPPAPI.answer(
                    endpoint: endpoint,
                    method: request.head.method.rawValue,
                    target: request.target,
                    body: request.collected
                )
            self.respond(context: context, request, answer)
        case .index:
            self.respond(context: context, request, DemoJSONResponse(Self.index))
        case .echo:
            let headers = request.head.headers.map { [$0.name, $0.value] }
            let version = "\(request.head.version.major).\(request.head.version.minor)"
            let echo: [String: Any] = [
                "method": request.head.method.rawValue, "uri": request.head.uri, "version": version,
                "headers": headers, "body_bytes": request.bodyBytes,
            ]
            self.respond(context: context, request, DemoJSONResponse(echo))
        case .slow(let milliseconds):
            self.tracker.slowStarted()
            self.countedSlow = true
            self.state = .waiting(
                context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(milliseconds)) {
                    self.endSlow()
                    guard case .waiting = self.state else { return }
                    self.respond(context: context, request, DemoJSONResponse(["slept_ms": milliseconds]))
                }
            )
        case .slowBody(let milliseconds):
            self.sendSlowBody(context: context, request, milliseconds: milliseconds)
        case .stream(let bytes, let framing):
            self.startStream(context: context, request, bytes: bytes, framing: framing)
        case .upload:
            let answer: [String: Any] = ["bytes": request.bodyBytes, "fnv1a": request.checksum.hex]
            self.respond(context: context, request, DemoJSONResponse(answer))
        case .close:
            self.respond(context: context, request, DemoJSONResponse(["closing": true]), close: true)
        case .reset:
            self.resetConnection(context: context)
        case .hang:
            self.state = .hanging
        case .stats:
            self.respond(context: context, request, DemoJSONResponse(Self.statsJSON(self.tracker.stats)))
        case .statsReset:
            self.tracker.reset()
            self.respond(context: context, request, DemoJSONResponse(Self.statsJSON(self.tracker.stats)))
        case .notFound:
            self.respond(context: context, request, .error(404, "Not found: \(request.target.path)"))
        }
    }

    private func respond(
        context: ChannelHandlerContext,
        _ request: Request,
        _ answer: DemoJSONResponse,
        close: Bool = false
    ) {
        let body = answer.bytes
        let close = close || !request.head.isKeepAlive
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.count))
        self.writeHead(context: context, request, status: answer.status, headers: headers, close: close)
        if !request.isHEAD {
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        }
        self.finish(context: context, close: close)
    }

    private func sendSlowBody(context: ChannelHandlerContext, _ request: Request, milliseconds: Int64) {
        let first = ByteBuffer(string: "{\"slow_body\":true,")
        let rest = ByteBuffer(string: "\"delayed_ms\":\(milliseconds)}")
        let close = !request.head.isKeepAlive
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(first.readableBytes + rest.readableBytes))
        self.writeHead(context: context, request, status: 200, headers: headers, close: close)
        if !request.isHEAD {
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(first))), promise: nil)
        }
        context.flush()
        self.state = .waiting(
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(milliseconds)) {
                guard case .waiting = self.state else { return }
                if !request.isHEAD {
                    context.write(Self.wrapOutboundOut(.body(.byteBuffer(rest))), promise: nil)
                }
                self.finish(context: context, close: close)
            }
        )
    }

    private func startStream(
        context: ChannelHandlerContext,
        _ request: Request,
        bytes: Int64,
        framing: DemoStreamFraming
    ) {
        var framing = framing
        if framing == .chunked && request.head.version == .http1_0 {
            framing = .endOfFile
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/octet-stream")
        switch framing {
        case .contentLength:
            headers.add(name: "Content-Length", value: String(bytes))
        case .chunked:
            headers.add(name: "Transfer-Encoding", value: "chunked")
        case .endOfFile:
            ()
        }
        let close = framing == .endOfFile || !request.head.isKeepAlive
        self.writeHead(context: context, request, status: 200, headers: headers, close: close)
        self.state = .streaming(Stream(remaining: request.isHEAD ? 0 : bytes, closeAtEnd: close))
        self.pump(context: context)
    }

    /// Writes pattern chunks while the channel is writable; `channelWritabilityChanged` resumes it.
    private func pump(context: ChannelHandlerContext) {
        guard !self.isPumping else { return }
        self.isPumping = true
        defer { self.isPumping = false }

        var chunksThisTurn = 0
        while case .streaming(var stream) = self.state {
            if stream.remaining == 0 {
                self.finish(context: context, close: stream.closeAtEnd)
                return
            }
            guard context.channel.isActive else {
                self.state = .closed
                return
            }
            if chunksThisTurn == Self.chunksPerTurn {
                context.flush()
                context.eventLoop.assumeIsolated().execute {
                    self.pump(context: context)
                }
                return
            }
            let length = Int(min(Int64(DemoBodyPattern.chunkSize), stream.remaining))
            // A fresh buffer per chunk, as a real backend's would be, so memory stays flat only
            // because of backpressure (and the self-test can see it).
            var chunk = context.channel.allocator.buffer(capacity: length)
            chunk.writeImmutableBuffer(DemoBodyPattern.slice(offset: stream.offset, length: length))
            stream.offset += Int64(length)
            stream.remaining -= Int64(length)
            self.state = .streaming(stream)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
            chunksThisTurn += 1
            if !context.channel.isWritable {
                context.flush()
                if !context.channel.isWritable {
                    return
                }
            }
        }
    }

    private func resetConnection(context: ChannelHandlerContext) {
        self.state = .closed
        // SO_LINGER 0 makes close() send RST instead of FIN.
        guard let options = context.channel as? any SocketOptionProvider else {
            context.close(promise: nil)
            return
        }
        options.setSoLinger(linger(l_onoff: 1, l_linger: 0)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    // MARK: - Writing

    private func writeHead(
        context: ChannelHandlerContext,
        _ request: Request,
        status: Int,
        headers: HTTPHeaders,
        close: Bool
    ) {
        var headers = headers
        if close {
            headers.add(name: "Connection", value: "close")
        } else if request.head.version == .http1_0 {
            headers.add(name: "Connection", value: "keep-alive")
        }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
        context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
    }

    /// Ends the response. The state changes first: writing `.end` may deliver the next pipelined request.
    private func finish(context: ChannelHandlerContext, close: Bool) {
        self.state = close ? .closed : .idle
        let written = context.writeAndFlush(Self.wrapOutboundOut(.end(nil)))
        if close {
            written.assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    private static func statsJSON(_ stats: DemoBackendStats) -> [String: Any] {
        [
            "connections_accepted": stats.connectionsAccepted,
            "connections_open": stats.connectionsOpen,
            "requests": stats.requests,
            "slow_in_flight": stats.slowInFlight,
            "slow_in_flight_max": stats.slowInFlightMax,
        ]
    }

    private static let index: [String: Any] = [
        "name": "Portcullis demo backend",
        "endpoints": [
            "GET /api/ListLogs", "GET /api/ListTenants", "GET /api/ListUsers?tenantFilter=T",
            "GET /api/ListMailboxes?tenantFilter=T", "POST /api/ExecResetPass", "POST /api/ExecResetMFA",
            "POST /api/$batch", "ANY /demo/echo", "GET /demo/slow?ms=N", "GET /demo/slowbody?ms=N",
            "GET /demo/stream?bytes=N[&chunked=1|&eof=1]", "POST /demo/upload", "GET /demo/close",
            "GET /demo/reset", "GET /demo/hang", "GET /demo/stats", "GET /demo/stats/reset",
        ],
    ]
}

@available(*, unavailable)
extension DemoBackendHandler: Sendable {}
