import NIOCore
import NIOHTTP1
import Testing

@testable import PortcullisProxy

/// The connection state machine alone: events in, actions out. No channel, no loop, no sleep:
/// time is a value the test moves.
@Suite struct ConnectionStateMachineTests {
    typealias Action = ConnectionStateMachine.Action

    static let config = ConnectionStateMachine.Config(
        clientHeaderTimeout: .seconds(30),
        idleTimeout: .seconds(60),
        exchangeTimeout: .seconds(600),
        clientBodyTimeout: .seconds(20),
        bodyCheckInterval: .seconds(5),
        sendTimeout: .seconds(30),
        backendQueueTimeout: .seconds(10),
        maxInspectBody: 1024,
        compression: nil
    )

    /// A machine and what it has done: each event's actions, as short lines (timer arming and
    /// flushes left out), and the log lines of the exchanges that ended.
    struct Connection {
        var machine = ConnectionStateMachine(config: config, parser: RequestParser(maxHeadBytes: 8192), peerText: "192.0.2.7")
        var ids = RequestIDGenerator(seed: 7)
        var logPool = ExchangeLogPool()
        let fieldsPool = RequestFieldsPool()
        var now = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
        var logs: [ExchangeRecord] = []
        /// Bytes written to the client.
        var written = 0
        /// The heads the request path was asked about, in order.
        var heads: [String] = []

        init() {
            var actions: [Action] = []
            self.machine.accepted(now: self.now, into: &actions)
        }

        /// Runs `event` and returns its actions as lines; an `endExchange` takes the log line,
        /// a `parse` parses (as the handler does).
        mutating func on(_ event: (inout ConnectionStateMachine, inout [Action], NIODeadline) -> Void) -> [String] {
            var actions: [Action] = []
            event(&self.machine, &actions, self.now)
            var lines: [String] = []
            for action in actions {
                if case .endExchange = action, let log = self.machine.takeLog() { self.logs.append(log.record) }
                if case .write(let bytes) = action { self.written += bytes.readableBytes }
                if case .writeAndClose(let bytes) = action { self.written += bytes.readableBytes }
                if case .parse = action {
                    lines += self.parse()
                    continue
                }
                if let line = Self.line(action) { lines.append(line) }
            }
            return lines
        }

        /// Bytes from the client, parsed; every head is forwarded (`.forward`), a `POST` to
        /// `/inspect` after reading its body.
        mutating func read(_ text: String) -> [String] {
            var lines = self.on { _ = $0.bytesRead(ByteBuffer(string: text), now: $2, into: &$1) }
            lines += self.parse()
            lines += self.on { $0.readComplete(now: $2, into: &$1) }
            return lines
        }

        mutating func parse() -> [String] {
            guard self.machine.startParsing(config: config) else { return [] }
            var lines: [String] = []
            while true {
                var parsed = ConnectionStateMachine.Parsed.none
                var (ids, logPool) = (self.ids, self.logPool)
                let fields = self.fieldsPool
                lines += self.on { machine, actions, now in parsed = machine.nextParsed(ids: &ids, logs: &logPool, fields: fields, now: now, into: &actions) }
                (self.ids, self.logPool) = (ids, logPool)
                guard case .head(let head) = parsed else { break }
                self.heads.append("\(head.method.rawValue) \(head.uri)")
                let verdict = ConnectionStateMachine.HeadVerdict.forward(
                    .init(upstreamHead: ByteBuffer(string: "\(head.method.rawValue) \(head.uri)"), expectContinue: false, upgrade: false)
                )
                lines += self.on { $0.headDecided(verdict, now: $2, into: &$1) }
            }
            lines += self.on { $0.finishParsing(now: $2, into: &$1) }
            return lines
        }

        mutating func attach(reused: Bool, isWritable: Bool = true) -> [String] {
            self.on { $0.upstreamAttached(reused: reused, isWritable: isWritable, now: $2, into: &$1) }
        }

        /// The upstream's whole response: head, body, end (after a read-complete).
        mutating func respond(_ status: Int = 200, body: String = "ok") -> [String] {
            self.machine.responseHead(Self.head(status, length: body.utf8.count))
            var lines = self.on { machine, actions, _ in machine.responseBody(ByteBuffer(string: body), into: &actions) }
            lines += self.on { $0.responseEnd(now: $2, into: &$1) }
            return lines
        }

        /// Moves the clock to `time` from now, firing the timer at each deadline it was armed for.
        mutating func advance(_ amount: TimeAmount, isWritable: Bool = true) -> [String] {
            let target = self.now + amount
            var lines: [String] = []
            while let armed = self.machine.timers.armedAt, armed <= target {
                self.now = armed
                var ids = self.ids
                lines += self.on { machine, actions, now in
                    machine.timerFired(now: now, isWritable: isWritable, ids: &ids, into: &actions)
                }
                self.ids = ids
            }
            self.now = target
            return lines
        }

        static func head(_ status: Int, length: Int) -> UpstreamResponseHead {
            UpstreamResponseHead(
                status: status,
                isHTTP10: false,
                bytes: ByteBuffer(string: "HTTP/1.1 \(status) X\r\nContent-Length: \(length)\r\n\r\n"),
                contentLength: length,
                chunked: false,
                connectionClose: false,
                connectionKeepAlive: false,
                connectionNamesHeaders: false
            )
        }

        static func line(_ action: Action) -> String? {
            func text(_ buffer: ByteBuffer) -> String {
                String(String(buffer: buffer).split(separator: "\r\n").first ?? "")
            }
            switch action {
            case .write(let bytes): return "write \(text(bytes))"
            case .writeAndFlush(let bytes): return "writeAndFlush \(text(bytes))"
            case .writeAndClose(let bytes): return bytes.readableBytes == 0 ? "close after writes" : "writeAndClose \(text(bytes))"
            case .close: return "close"
            case .leaseUpstream(let fresh): return fresh ? "lease fresh" : "lease"
            case .leaveBackendQueue: return "leave queue"
            case .upstreamWriteHead(let bytes, _): return "upstream \(text(bytes))"
            case .upstreamWrite(let bytes): return "upstream body \(text(bytes))"
            case .releaseUpstream(let reusable): return reusable ? "release to pool" : "release and close"
            case .resumeUpstreamReads: return "resume upstream"
            case .read: return "read"
            case .endExchange: return "end"
            case .flushAtTickEnd, .upstreamFlush, .upstreamFlushAtTickEnd, .armTimer, .parse: return nil
            }
        }
    }

    static let get = "GET /a HTTP/1.1\r\nHost: gw\r\n\r\n"

    // MARK: - Pipelining

    /// Every idle keep-alive connection carries one machine inline in its handler: what is
    /// needed only during an exchange (its log line, a pending inspection) is held by reference.
    @Test func theMachineStaysSmallForIdleConnections() {
        #expect(MemoryLayout<ConnectionStateMachine>.size <= 576, "\(MemoryLayout<ConnectionStateMachine>.size) bytes")
        #expect(MemoryLayout<ClientExchange>.size <= 192, "\(MemoryLayout<ClientExchange>.size) bytes")
        var connection = Connection()
        _ = connection.read("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = connection.attach(reused: true)
        _ = connection.respond()
        #expect(connection.machine.log == nil, "an idle connection holds no log line")
        #expect(connection.machine.exchange.inspection == nil)
    }

    @Test func aPipelinedRequestWaitsUnparsedUntilTheExchangeBeforeItEnds() {
        var connection = Connection()
        let first = connection.read(Self.get + "GET /b HTTP/1.1\r\nHost: gw\r\n\r\n")
        #expect(first == ["lease"])
        #expect(connection.heads == ["GET /a"])
        // The second request's bytes wait: reads are held meanwhile.
        let readsWhileWaiting = connection.machine.readRequested()
        #expect(!readsWhileWaiting)
        #expect(connection.attach(reused: true) == ["upstream GET /a"])
        // The first response ends: the upstream goes back to the pool, then the next request
        // is parsed and leased.
        #expect(connection.respond(body: "1") == ["write HTTP/1.1 200 X", "release to pool", "end", "lease", "read"])
        #expect(connection.heads == ["GET /a", "GET /b"])
        let readsAfter = connection.machine.readRequested()
        #expect(readsAfter)
        #expect(connection.attach(reused: true) == ["upstream GET /b"])
        #expect(connection.respond(body: "2") == ["write HTTP/1.1 200 X", "release to pool", "end"])
        #expect(connection.logs.map(\.status) == [200, 200])
        #expect(connection.logs.map(\.requestID).count == 2)
        #expect(connection.logs[0].requestID != connection.logs[1].requestID)
        #expect(connection.machine.phase == .idle)
    }

    // MARK: - Upstream failures

    @Test func anIdempotentRequestOnAStalePooledConnectionIsSentOnceMoreOnAFreshOne() {
        var connection = Connection()
        _ = connection.read(Self.get)
        #expect(connection.attach(reused: true) == ["upstream GET /a"])
        // The pooled connection had been closed by the upstream: nothing came back.
        let lines1 = connection.on { $0.upstreamClosed(responseBytesCameBack: false, now: $2, into: &$1) }
        #expect(lines1 == ["lease fresh"])
        #expect(connection.attach(reused: false) == ["upstream GET /a"])
        #expect(connection.respond() == ["write HTTP/1.1 200 X", "release to pool", "end"])
        #expect(connection.logs.map(\.reason) == [.allowed])
    }

    @Test func aRetryHappensOnceAndNeverForARequestTheBackendMayHaveRead() {
        var connection = Connection()
        _ = connection.read(Self.get)
        _ = connection.attach(reused: true)
        _ = connection.on { $0.upstreamClosed(responseBytesCameBack: false, now: $2, into: &$1) }
        _ = connection.attach(reused: false)
        // A fresh connection failing is the upstream's failure: 502, no second retry.
        let second = connection.on { $0.upstreamClosed(responseBytesCameBack: false, now: $2, into: &$1) }
        #expect(second == ["write HTTP/1.1 502 Bad Gateway", "end"])

        var post = Connection()
        _ = post.read("POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n")
        _ = post.attach(reused: true)
        let lines2 = post.on { $0.upstreamClosed(responseBytesCameBack: false, now: $2, into: &$1) }
        #expect(lines2 == ["write HTTP/1.1 502 Bad Gateway", "end"])

        var answered = Connection()
        _ = answered.read(Self.get)
        _ = answered.attach(reused: true)
        // A byte came back (a 1xx, say): the backend read the request.
        let lines3 = answered.on { $0.upstreamClosed(responseBytesCameBack: true, now: $2, into: &$1) }
        #expect(lines3 == ["write HTTP/1.1 502 Bad Gateway", "end"])
        #expect(answered.logs.map(\.reason) == [.upstreamError])
    }

    @Test func theUpstreamClosingWhileTheHeadIsHeldIs502AndTheHeadIsNeverSent() {
        var connection = Connection()
        _ = connection.read(Self.get)
        _ = connection.attach(reused: true)
        // The head is held for the body that usually follows it: nothing is written yet.
        connection.machine.responseHead(Connection.head(200, length: 10))
        let lines = connection.on { $0.upstreamClosed(responseBytesCameBack: true, now: $2, into: &$1) }
        #expect(lines == ["write HTTP/1.1 502 Bad Gateway", "end", "close after writes"])
        #expect(connection.logs.map(\.status) == [502])
        // The held head never went out: the line counts the 502 alone.
        #expect(connection.logs[0].bytesOut == connection.written)
        #expect(connection.machine.phase == .closing)
    }

    @Test func theUpstreamClosingMidBodyCutsTheConnection() {
        var connection = Connection()
        _ = connection.read(Self.get)
        _ = connection.attach(reused: true)
        connection.machine.responseHead(Connection.head(200, length: 10_000))
        _ = connection.on { machine, actions, _ in machine.responseBody(ByteBuffer(repeating: 0x61, count: 5000), into: &actions) }
        let lines4 = connection.on { $0.upstreamClosed(responseBytesCameBack: true, now: $2, into: &$1) }
        #expect(lines4 == ["end", "close"])
        #expect(connection.logs.map(\.reason) == [.upstreamAborted])
    }

    @Test func aFailedConnectIs502() {
        var connection = Connection()
        _ = connection.read(Self.get)
        connection.machine.upstreamConnecting(now: connection.now)
        #expect(connection.machine.isAwaitingConnection)
        let lines5 = connection.on { $0.upstreamConnectFailed(now: $2, into: &$1) }
        #expect(lines5 == ["write HTTP/1.1 502 Bad Gateway", "end"])
        #expect(connection.logs.map(\.reason) == [.upstreamUnavailable])
        #expect(!connection.machine.isAwaitingConnection)
    }

    // MARK: - Timeouts

    @Test func theExchangeTimeoutBeforeTheResponseHeadIs504() {
        var connection = Connection()
        _ = connection.read(Self.get)
        _ = connection.attach(reused: true)
        #expect(connection.advance(.seconds(599)).isEmpty)
        let lines = connection.advance(.seconds(2))
        #expect(lines == ["release and close", "write HTTP/1.1 504 Gateway Timeout", "end"])
        #expect(connection.logs.map(\.reason) == [.upstreamTimeout])
        // The connection stays for the next request: the request was whole.
        #expect(connection.machine.phase == .idle)
    }

    @Test func theExchangeTimeoutAfterTheResponseHeadCutsTheConnection() {
        var connection = Connection()
        _ = connection.read(Self.get)
        _ = connection.attach(reused: true)
        connection.machine.responseHead(Connection.head(200, length: 10_000))
        let lines6 = connection.on { machine, actions, _ in machine.upstreamReadComplete(into: &actions) }
        #expect(lines6 == ["write HTTP/1.1 200 X"])
        #expect(connection.advance(.seconds(601)) == ["end", "release and close", "close"])
        #expect(connection.logs.map(\.reason) == [.upstreamTimeout])
        #expect(connection.machine.phase == .closing)
    }

    @Test func aRequestBodyThatStopsIs408AfterTheBodyTimeout() {
        var connection = Connection()
        #expect(connection.read("POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\nabc") == ["lease"])
        #expect(connection.attach(reused: true) == ["upstream POST /a", "upstream body abc"])
        // Checked every 5 s: not cut before 20 s of silence, cut by 25 s.
        #expect(connection.advance(.seconds(19)).isEmpty)
        let lines = connection.advance(.seconds(6))
        #expect(lines == ["release and close", "write HTTP/1.1 408 Request Timeout", "close after writes"])
        // The request never ended: its line is written when the connection has closed.
        #expect(connection.logs.isEmpty)
        let closed = connection.on { machine, actions, _ in machine.closed(into: &actions) }
        #expect(closed == ["end"])
        #expect(connection.logs.map(\.reason) == [.clientTimeout])
        #expect(connection.logs.map(\.status) == [408])
    }

    @Test func bodyBytesThatKeepComingAreNeverCut() {
        var connection = Connection()
        _ = connection.read("POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\na")
        _ = connection.attach(reused: true)
        for byte in "bcdefghi" {
            #expect(connection.advance(.seconds(15)).isEmpty)
            #expect(connection.read(String(byte)) == ["upstream body \(byte)"])
        }
        #expect(connection.read("j") == ["upstream body j"])
        #expect(connection.respond() == ["write HTTP/1.1 200 X", "release to pool", "end"])
    }

    @Test func aClientThatStopsReadingIsCutAfterTheSendTimeout() {
        var connection = Connection()
        _ = connection.read(Self.get)
        _ = connection.attach(reused: true)
        connection.machine.responseHead(Connection.head(200, length: 100_000))
        _ = connection.on { machine, actions, _ in machine.responseBody(ByteBuffer(repeating: 0x61, count: 60_000), into: &actions) }
        _ = connection.on { $0.writabilityChanged(isWritable: false, now: $2, into: &$1) }
        #expect(connection.advance(.seconds(29), isWritable: false).isEmpty)
        #expect(connection.advance(.seconds(2), isWritable: false) == ["end", "release and close", "close"])
        #expect(connection.logs.map(\.reason) == [.sendTimeout])
    }

    @Test func aClientThatTakesItsBytesAgainIsNotCut() {
        var connection = Connection()
        _ = connection.read(Self.get)
        _ = connection.attach(reused: true)
        connection.machine.responseHead(Connection.head(200, length: 100_000))
        _ = connection.on { $0.writabilityChanged(isWritable: false, now: $2, into: &$1) }
        let lines7 = connection.on { $0.writabilityChanged(isWritable: true, now: $2, into: &$1) }
        #expect(lines7 == ["resume upstream"])
        #expect(connection.advance(.seconds(40)).isEmpty)
    }

    @Test func aHeadThatNeverCompletesIs408AndAnIdleConnectionClosesQuietly() {
        var slow = Connection()
        _ = slow.read("GET /a HTTP/1.1\r\nHo")
        #expect(slow.advance(.seconds(29)).isEmpty)
        #expect(slow.advance(.seconds(2)) == ["end", "writeAndClose HTTP/1.1 408 Request Timeout"])
        #expect(slow.logs.map(\.status) == [408])

        var idle = Connection()
        _ = idle.read(Self.get)
        _ = idle.attach(reused: true)
        _ = idle.respond()
        #expect(idle.advance(.seconds(59)).isEmpty)
        #expect(idle.advance(.seconds(2)) == ["close"])
        #expect(idle.logs.count == 1)
    }

    // MARK: - Drain

    @Test func drainClosesAnIdleConnectionAndABusyOneAfterItsResponse() {
        var idle = Connection()
        let lines8 = idle.on { actions, list, _ in actions.quiesce(into: &list) }
        #expect(lines8 == ["close"])

        var busy = Connection()
        _ = busy.read(Self.get)
        _ = busy.attach(reused: true)
        let quiesced = busy.on { actions, list, _ in actions.quiesce(into: &list) }
        #expect(quiesced.isEmpty)
        #expect(busy.respond() == ["write HTTP/1.1 200 X", "release to pool", "end", "close after writes"])
        #expect(busy.machine.phase == .closing)
    }

    @Test func theDrainTimeoutCutsTheExchangeInFlight() {
        var connection = Connection()
        _ = connection.read(Self.get)
        _ = connection.attach(reused: true)
        _ = connection.on { actions, list, _ in actions.quiesce(into: &list) }
        let lines9 = connection.on { actions, list, _ in actions.drainExpired(into: &list) }
        #expect(lines9 == ["end", "release and close", "close"])
        #expect(connection.logs.map(\.reason) == [.shutdown])
    }

    // MARK: - Backend queue

    @Test func aQueuedExchangeLeasesWhenASlotComesAndIs503WhenNoneDoes() {
        var granted = Connection()
        _ = granted.read(Self.get)
        _ = granted.on { $0.backendQueued(now: $2, into: &$1) }
        let lines10 = granted.on { machine, actions, _ in machine.backendSlotGranted(into: &actions) }
        #expect(lines10 == ["lease"])

        var waiting = Connection()
        _ = waiting.read(Self.get)
        _ = waiting.on { $0.backendQueued(now: $2, into: &$1) }
        #expect(waiting.advance(.seconds(11)) == ["leave queue", "write HTTP/1.1 503 Service Unavailable", "end"])
        #expect(waiting.logs.map(\.reason) == [.backendBusy])
    }

    // MARK: - Framing errors

    @Test func anUnreadableRequestIs400AndNothingOfItGoesUpstream() {
        var connection = Connection()
        let lines = connection.read("GET /a HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(lines == ["write HTTP/1.1 400 Bad Request", "end", "close after writes"])
        #expect(connection.heads.isEmpty)
        #expect(connection.logs.map(\.reason) == [.badRequest])
    }
}
