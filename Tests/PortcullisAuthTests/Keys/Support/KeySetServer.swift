import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 server on 127.0.0.1 for key set tests: each path answers what the test last
/// set, and every request is counted. Each answer closes its connection, so ``stop()`` leaves
/// nothing a client could reuse.
final class KeySetServer: Sendable {
    enum Answer: Sendable {
        case body(status: HTTPResponseStatus, bytes: [UInt8])
        /// Reads the request and never answers.
        case hang
    }

    private struct State {
        var answers: [String: Answer] = [:]
        var counts: [String: Int] = [:]
    }

    private let state = NIOLockedValueBox(State())
    private let channel: NIOLockedValueBox<Channel?> = NIOLockedValueBox(nil)
    let port: Int

    private init(port: Int) {
        self.port = port
    }

    /// Starts on a free port; bound to `port` when given (to come back after ``stop()``).
    static func start(port: Int = 0) async throws -> KeySetServer {
        let placeholder = NIOLockedValueBox<KeySetServer?>(nil)
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(server: placeholder.withLockedValue { $0! }))
                }
            }
        let channel = try await bootstrap.bind(host: "127.0.0.1", port: port).get()
        let server = KeySetServer(port: channel.localAddress!.port!)
        placeholder.withLockedValue { $0 = server }
        server.channel.withLockedValue { $0 = channel }
        return server
    }

    var baseURL: String { "http://127.0.0.1:\(self.port)" }

    func url(_ path: String) -> String { self.baseURL + path }

    func answer(_ path: String, _ answer: Answer) {
        self.state.withLockedValue { $0.answers[path] = answer }
    }

    func answer(_ path: String, json: String, status: HTTPResponseStatus = .ok) {
        self.answer(path, .body(status: status, bytes: Array(json.utf8)))
    }

    func requests(_ path: String) -> Int {
        self.state.withLockedValue { $0.counts[path, default: 0] }
    }

    /// Closes the listening socket: later connections are refused.
    func stop() async throws {
        let channel = self.channel.withLockedValue { channel in
            defer { channel = nil }
            return channel
        }
        try await channel?.close()
    }

    fileprivate func received(_ path: String) -> Answer {
        self.state.withLockedValue { state in
            state.counts[path, default: 0] += 1
            return state.answers[path] ?? .body(status: .notFound, bytes: Array("not found".utf8))
        }
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private let server: KeySetServer
        private var path = ""

        init(server: KeySetServer) {
            self.server = server
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head):
                self.path = String(head.uri.prefix { $0 != "?" })
            case .body:
                break
            case .end:
                switch self.server.received(self.path) {
                case .hang:
                    break
                case .body(let status, let bytes):
                    var headers = HTTPHeaders()
                    headers.add(name: "content-type", value: "application/json")
                    headers.add(name: "content-length", value: "\(bytes.count)")
                    headers.add(name: "connection", value: "close")
                    context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                    context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
                    let context = NIOLoopBound(context, eventLoop: context.eventLoop)
                    context.value.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in
                        context.value.close(promise: nil)
                    }
                }
            }
        }
    }
}
