import Foundation

#if canImport(Glibc)
import Glibc
private let socketStreamType = Int32(SOCK_STREAM.rawValue)
private let sendFlags = Int32(MSG_NOSIGNAL)
#elseif canImport(Darwin)
import Darwin
private let socketStreamType = SOCK_STREAM
private let sendFlags: Int32 = 0
#endif

enum RawHTTPClientError: Error, CustomStringConvertible {
    case resolve(host: String, port: Int, reason: String)
    case connect(host: String, port: Int, reason: String)

    var description: String {
        switch self {
        case .resolve(let host, let port, let reason): "cannot resolve \(host):\(port): \(reason)"
        case .connect(let host, let port, let reason): "cannot connect to \(host):\(port): \(reason)"
        }
    }
}

/// A blocking TCP client for end-to-end tests: it sends exactly the bytes it is given and reads
/// HTTP/1.1 responses off the stream one at a time, so tests can pipeline, send malformed
/// requests, or watch how the peer closes. Every wait has a timeout; nothing blocks forever.
///
/// Not thread-safe: one client belongs to one test task.
final class RawHTTPClient {
    let host: String
    let port: Int
    /// Why the last `readResponse` returned nil.
    private(set) var lastFailure: String?
    /// The peer closed its side (read returned 0) or reset the connection.
    private(set) var peerClosed = false
    /// The peer reset the connection (ECONNRESET), as `/demo/reset` does.
    private(set) var peerReset = false

    private var fd: Int32
    /// Bytes received and not yet consumed by a reader.
    private var pending: [UInt8] = []
    private var pendingStart = 0
    private var scratch = [UInt8](repeating: 0, count: 256 * 1024)

    static func connect(host: String = "127.0.0.1", port: Int, timeout: Double = 5, from source: String? = nil) throws -> RawHTTPClient {
        try RawHTTPClient(host: host, port: port, timeout: timeout, from: source)
    }

    /// `source` binds the local end to that address first (`127.0.0.2`, `::1`), so tests can
    /// call from different client addresses over loopback.
    init(host: String = "127.0.0.1", port: Int, timeout: Double = 5, from source: String? = nil) throws {
        let bareHost = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        self.host = bareHost
        self.port = port
        self.fd = try Self.openConnection(host: bareHost, port: port, deadline: Deadline(seconds: timeout), source: source)
    }

    deinit {
        self.close()
    }

    var isOpen: Bool { self.fd >= 0 }

    /// `host:port` as a Host header value.
    var authority: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }

    func close() {
        if self.fd >= 0 {
            _ = systemClose(self.fd)
            self.fd = -1
        }
    }

    /// Half-closes the sending side (FIN), leaving reads open.
    func shutdownWrite() {
        if self.fd >= 0 {
            _ = shutdown(self.fd, Int32(SHUT_WR))
        }
    }

    // MARK: - Sending

    /// Sends all of `bytes`; false when the peer is gone or the socket stayed full for `timeout`.
    @discardableResult
    func send(_ bytes: [UInt8], timeout: Double = 10) -> Bool {
        bytes.withUnsafeBytes { self.send(raw: $0, deadline: Deadline(seconds: timeout)) }
    }

    @discardableResult
    func send(_ string: String, timeout: Double = 10) -> Bool {
        self.send(Array(string.utf8), timeout: timeout)
    }

    /// Sends one request: Host (unless given) and Content-Length (when there is a body and no
    /// framing header is given) are added.
    @discardableResult
    func sendRequest(
        _ method: String,
        _ path: String,
        headers: [(String, String)] = [],
        body: [UInt8]? = nil,
        authorize: Bool = true,
        timeout: Double = 10
    ) -> Bool {
        let head = Self.requestHead(
            method,
            path,
            authority: self.authority,
            headers: headers,
            bodyLength: body?.count,
            authorize: authorize
        )
        return self.send(head + (body ?? []), timeout: timeout)
    }

    /// The bytes of a request head ending in the blank line.
    static func requestHead(
        _ method: String,
        _ path: String,
        authority: String,
        headers: [(String, String)] = [],
        bodyLength: Int? = nil,
        authorize: Bool = true
    ) -> [UInt8] {
        func has(_ name: String) -> Bool {
            headers.contains { $0.0.caseInsensitiveCompare(name) == .orderedSame }
        }
        var text = "\(method) \(path) HTTP/1.1\r\n"
        if !has("Host") {
            text += "Host: \(authority)\r\n"
        }
        if authorize && !has("Authorization") {
            text += TestIdentity.authorizationLine
        }
        for (name, value) in headers {
            text += "\(name): \(value)\r\n"
        }
        if let bodyLength, !has("Content-Length"), !has("Transfer-Encoding") {
            text += "Content-Length: \(bodyLength)\r\n"
        }
        text += "\r\n"
        return Array(text.utf8)
    }

    private func send(raw: UnsafeRawBufferPointer, deadline: Deadline) -> Bool {
        guard self.fd >= 0, let base = raw.baseAddress else { return raw.isEmpty && self.fd >= 0 }
        var offset = 0
        while offset < raw.count {
            let sent = systemSend(self.fd, base + offset, raw.count - offset, sendFlags)
            if sent > 0 {
                offset += sent
                continue
            }
            switch errno {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                guard self.wait(for: Int16(POLLOUT), deadline: deadline) else { return false }
            default:
                self.notePeerError(errno)
                return false
            }
        }
        return true
    }

    // MARK: - Receiving

    /// Whatever has arrived (buffered bytes first, else one read); nil when nothing arrives within
    /// `timeout` or the peer has closed (see `peerClosed`).
    func receive(timeout: Double = 5) -> [UInt8]? {
        if self.pendingCount == 0 {
            guard self.fill(Deadline(seconds: timeout)) == .data else { return nil }
        }
        return self.takeAll()
    }

    /// Everything until the peer closes or `timeout` passes, buffered bytes included.
    func readUntilClose(timeout: Double = 10) -> [UInt8] {
        let deadline = Deadline(seconds: timeout)
        while self.fill(deadline) == .data {}
        return self.takeAll()
    }

    /// Whether the peer closes (FIN or RST) within `timeout`. Bytes arriving meanwhile are kept for
    /// the next read.
    func isClosedByPeer(timeout: Double = 5) -> Bool {
        if self.peerClosed { return true }
        let deadline = Deadline(seconds: timeout)
        while true {
            switch self.fill(deadline) {
            case .data: continue
            case .closed: return true
            case .timeout: return false
            }
        }
    }

    /// Reads one response off the stream, leaving any bytes after it for the next call, so
    /// pipelined responses come out one by one. Interim (1xx) responses are returned on their own.
    /// Pass the request's method so a response to HEAD is read without a body. Nil on timeout,
    /// early close or a malformed response; `lastFailure` says which.
    func readResponse(timeout: Double = 10, requestMethod: String = "GET") -> HTTPTestResponse? {
        var body: [UInt8] = []
        let response = self.readResponse(deadline: Deadline(seconds: timeout), requestMethod: requestMethod) {
            body.append(contentsOf: $0)
        }
        guard var response else { return nil }
        response.body = body
        return response
    }

    /// Reads one response passing its body to `consume` piece by piece instead of keeping it.
    func readResponse(
        deadline: Deadline,
        requestMethod: String = "GET",
        consume: (UnsafeRawBufferPointer) -> Void
    ) -> HTTPTestResponse? {
        self.lastFailure = nil
        guard var response = self.readHead(deadline) else { return nil }
        let noBody =
            requestMethod.uppercased() == "HEAD" || (100..<200).contains(response.status)
            || response.status == 204 || response.status == 304
        if noBody {
            response.framing = .none
            return response
        }
        let codings = response.headerValues("Transfer-Encoding").joined(separator: ",").lowercased()
        let lastCoding = codings.split(separator: ",").last?.trimmingCharacters(in: .whitespaces)
        if lastCoding == "chunked" {
            response.framing = .chunked
            guard let trailers = self.readChunkedBody(deadline, consume) else { return nil }
            response.trailers = trailers
        } else if let lengthText = response.header("Content-Length") {
            guard let length = Int(lengthText.trimmingCharacters(in: .whitespaces)), length >= 0 else {
                return self.fail("bad Content-Length \(lengthText)")
            }
            response.framing = .contentLength
            guard self.readExactly(length, deadline, consume) else { return nil }
        } else {
            response.framing = .endOfFile
            while true {
                self.consumePending(self.pendingCount, consume)
                let result = self.fill(deadline)
                if result == .closed { break }
                if result == .timeout { return self.fail("timed out reading a body delimited by EOF") }
            }
        }
        return response
    }

    // MARK: - One-shot helpers

    /// Opens a connection, sends one request, reads its response and closes. On failure the
    /// response has status 0 and `failure` set.
    static func request(
        _ method: String,
        _ path: String,
        host: String = "127.0.0.1",
        port: Int,
        headers: [(String, String)] = [],
        body: [UInt8]? = nil,
        authorize: Bool = true,
        timeout: Double = 10
    ) -> HTTPTestResponse {
        let client: RawHTTPClient
        do {
            client = try RawHTTPClient(host: host, port: port, timeout: timeout)
        } catch {
            return .failed("\(error)")
        }
        defer { client.close() }
        guard client.sendRequest(method, path, headers: headers, body: body, authorize: authorize, timeout: timeout) else {
            return client.readResponse(timeout: 1, requestMethod: method) ?? .failed("sending the request failed")
        }
        return client.readResponse(timeout: timeout, requestMethod: method)
            ?? .failed(client.lastFailure ?? "no response")
    }

    /// Sends a `totalBytes` body of pattern bytes (see `TestBodyPattern`) in `chunk`-sized writes
    /// with Content-Length, without holding it all in memory, and returns the response. When the
    /// peer stops taking the body (an early answer), the response read so far is returned.
    static func streamUpload(
        host: String = "127.0.0.1",
        port: Int,
        path: String,
        totalBytes: Int,
        chunk: Int = 64 * 1024,
        headers: [(String, String)] = [],
        timeout: Double = 120
    ) -> HTTPTestResponse {
        let client: RawHTTPClient
        do {
            client = try RawHTTPClient(host: host, port: port, timeout: 5)
        } catch {
            return .failed("\(error)")
        }
        defer { client.close() }
        let deadline = Deadline(seconds: timeout)
        let head = requestHead("POST", path, authority: client.authority, headers: headers, bodyLength: totalBytes)
        guard client.send(head, timeout: deadline.remainingSeconds) else {
            return client.readResponse(timeout: 1) ?? .failed("sending the head failed")
        }
        let piece = max(1, chunk)
        let block = TestBodyPattern.bytes(offset: 0, length: piece + TestBodyPattern.period)
        var offset = 0
        let sentAll = block.withUnsafeBytes { blockBytes -> Bool in
            while offset < totalBytes {
                let length = min(piece, totalBytes - offset)
                let phase = offset % TestBodyPattern.period
                let slice = UnsafeRawBufferPointer(rebasing: blockBytes[phase..<(phase + length)])
                guard client.send(raw: slice, deadline: deadline) else { return false }
                offset += length
            }
            return true
        }
        let readTimeout = sentAll ? max(1, deadline.remainingSeconds) : 2
        return client.readResponse(timeout: readTimeout)
            ?? .failed(client.lastFailure ?? "no response after sending \(offset) of \(totalBytes) bytes")
    }

    /// GETs `path` and counts the body without keeping it: status (0 on failure), body length
    /// and the body's FNV-1a.
    static func streamDownload(
        host: String = "127.0.0.1",
        port: Int,
        path: String,
        headers: [(String, String)] = [],
        timeout: Double = 120
    ) -> (status: Int, bodyBytes: Int, fnv1a: UInt64) {
        guard let client = try? RawHTTPClient(host: host, port: port, timeout: 5) else {
            return (0, 0, FNV1a().value)
        }
        defer { client.close() }
        guard client.sendRequest("GET", path, headers: headers) else {
            return (0, 0, FNV1a().value)
        }
        var count = 0
        var hash = FNV1a()
        let response = client.readResponse(deadline: Deadline(seconds: timeout)) { piece in
            count += piece.count
            hash.update(piece)
        }
        return (response?.status ?? 0, count, hash.value)
    }

    // MARK: - Parsing

    private func readHead(_ deadline: Deadline) -> HTTPTestResponse? {
        var searchFrom = 0
        while true {
            if let end = self.findHeadEnd(from: searchFrom) {
                let headBytes = Array(self.pending[self.pendingStart..<end.headEnd])
                self.pendingStart = end.bodyStart
                return self.parseHead(headBytes)
            }
            searchFrom = max(0, self.pendingCount - 3)
            switch self.fill(deadline) {
            case .data:
                continue
            case .closed:
                return self.fail(
                    self.pendingCount == 0
                        ? "connection closed before a response" + (self.peerReset ? " (reset)" : "")
                        : "connection closed inside a response head")
            case .timeout:
                return self.fail("timed out waiting for a response head")
            }
        }
    }

    /// The end of the head (before the blank line) and the start of the body, as pending indices.
    private func findHeadEnd(from offset: Int) -> (headEnd: Int, bodyStart: Int)? {
        var index = self.pendingStart + offset
        let end = self.pending.count
        while index < end {
            if self.pending[index] == UInt8(ascii: "\n") {
                if index + 1 < end && self.pending[index + 1] == UInt8(ascii: "\n") {
                    return (index, index + 2)
                }
                if index + 2 < end && self.pending[index + 1] == UInt8(ascii: "\r")
                    && self.pending[index + 2] == UInt8(ascii: "\n")
                {
                    return (index, index + 3)
                }
            }
            index += 1
        }
        return nil
    }

    private func parseHead(_ bytes: [UInt8]) -> HTTPTestResponse? {
        // Split bytes, not Characters: in a String "\r\n" is one Character.
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map {
            String(decoding: $0.last == UInt8(ascii: "\r") ? $0.dropLast() : $0, as: UTF8.self)
        }
        guard !lines.isEmpty else { return self.fail("empty response head") }
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]), parts[1].count == 3 else {
            return self.fail("bad status line: \(statusLine)")
        }
        var response = HTTPTestResponse(status: status)
        response.version = String(parts[0])
        response.reason = parts.count > 2 ? String(parts[2]) : ""
        for line in lines where !line.isEmpty {
            if line.first == " " || line.first == "\t", !response.headers.isEmpty {
                response.headers[response.headers.count - 1].1 += " " + line.trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let colon = line.firstIndex(of: ":") else {
                return self.fail("bad header line: \(line)")
            }
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
            response.headers.append((name, value))
        }
        return response
    }

    private func readExactly(_ count: Int, _ deadline: Deadline, _ consume: (UnsafeRawBufferPointer) -> Void) -> Bool {
        var remaining = count
        while remaining > 0 {
            if self.pendingCount == 0 {
                switch self.fill(deadline) {
                case .data: ()
                case .closed:
                    self.fail("connection closed with \(remaining) of \(count) body bytes missing")
                    return false
                case .timeout:
                    self.fail("timed out with \(remaining) of \(count) body bytes missing")
                    return false
                }
            }
            let take = min(remaining, self.pendingCount)
            self.consumePending(take, consume)
            remaining -= take
        }
        return true
    }

    /// Reads a chunked body; returns its trailers, or nil on failure.
    private func readChunkedBody(
        _ deadline: Deadline,
        _ consume: (UnsafeRawBufferPointer) -> Void
    ) -> [(String, String)]? {
        while true {
            guard let sizeLine = self.readLine(deadline) else { return nil }
            let sizeText = sizeLine.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                self.fail("bad chunk size line: \(sizeLine)")
                return nil
            }
            if size == 0 {
                var trailers: [(String, String)] = []
                while true {
                    guard let line = self.readLine(deadline) else { return nil }
                    if line.isEmpty { return trailers }
                    if let colon = line.firstIndex(of: ":") {
                        trailers.append(
                            (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
                        )
                    }
                }
            }
            guard self.readExactly(size, deadline, consume) else { return nil }
            guard let end = self.readLine(deadline) else { return nil }
            guard end.isEmpty else {
                self.fail("chunk data not followed by CRLF")
                return nil
            }
        }
    }

    /// One line without its CRLF (or LF).
    private func readLine(_ deadline: Deadline) -> String? {
        var searched = 0  // relative to pendingStart: `fill` may move the buffer
        while true {
            if let newline = self.pending[(self.pendingStart + searched)...].firstIndex(of: UInt8(ascii: "\n")) {
                var end = newline
                if end > self.pendingStart && self.pending[end - 1] == UInt8(ascii: "\r") {
                    end -= 1
                }
                let line = String(decoding: self.pending[self.pendingStart..<end], as: UTF8.self)
                self.pendingStart = newline + 1
                return line
            }
            searched = self.pendingCount
            switch self.fill(deadline) {
            case .data: continue
            case .closed:
                self.fail("connection closed inside a chunked body")
                return nil
            case .timeout:
                self.fail("timed out inside a chunked body")
                return nil
            }
        }
    }

    @discardableResult
    private func fail(_ why: String) -> HTTPTestResponse? {
        self.lastFailure = why
        return nil
    }

    // MARK: - Buffer and socket

    private var pendingCount: Int { self.pending.count - self.pendingStart }

    private func takeAll() -> [UInt8] {
        let bytes = Array(self.pending[self.pendingStart...])
        self.pending.removeAll(keepingCapacity: true)
        self.pendingStart = 0
        return bytes
    }

    private func consumePending(_ count: Int, _ consume: (UnsafeRawBufferPointer) -> Void) {
        guard count > 0 else { return }
        self.pending.withUnsafeBytes { consume(UnsafeRawBufferPointer(rebasing: $0[self.pendingStart..<(self.pendingStart + count)])) }
        self.pendingStart += count
        if self.pendingStart == self.pending.count {
            self.pending.removeAll(keepingCapacity: true)
            self.pendingStart = 0
        }
    }

    private enum FillResult { case data, closed, timeout }

    /// Reads once into `pending`, waiting until `deadline`.
    private func fill(_ deadline: Deadline) -> FillResult {
        guard self.fd >= 0, !self.peerClosed else { return .closed }
        if self.pendingStart > 0 && self.pendingStart >= self.pending.count / 2 {
            self.pending.removeFirst(self.pendingStart)
            self.pendingStart = 0
        }
        while true {
            let fd = self.fd
            let received = self.scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received > 0 {
                self.pending.append(contentsOf: self.scratch[0..<received])
                return .data
            }
            if received == 0 {
                self.peerClosed = true
                return .closed
            }
            switch errno {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                guard self.wait(for: Int16(POLLIN), deadline: deadline) else { return .timeout }
            default:
                self.notePeerError(errno)
                return .closed
            }
        }
    }

    private func notePeerError(_ code: Int32) {
        self.peerClosed = true
        if code == ECONNRESET || code == EPIPE {
            self.peerReset = self.peerReset || code == ECONNRESET
        }
    }

    /// Polls for `events` until the deadline; true when the socket is ready (or in error).
    private func wait(for events: Int16, deadline: Deadline) -> Bool {
        while true {
            let milliseconds = deadline.remainingMilliseconds
            if milliseconds <= 0 { return false }
            var descriptor = pollfd(fd: self.fd, events: events, revents: 0)
            let ready = poll(&descriptor, 1, milliseconds)
            if ready > 0 { return true }
            if ready == 0 { continue }
            if errno != EINTR { return false }
        }
    }

    private static func bind(_ fd: Int32, family: Int32, to source: String) -> Bool {
        if family == AF_INET6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            guard inet_pton(AF_INET6, source, &address.sin6_addr) == 1 else { return false }
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { systemBind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0 }
            }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        guard inet_pton(AF_INET, source, &address.sin_addr) == 1 else { return false }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { systemBind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    private static func openConnection(host: String, port: Int, deadline: Deadline, source: String?) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = socketStreamType
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0, let first = list else {
            throw RawHTTPClientError.resolve(host: host, port: port, reason: String(cString: gai_strerror(resolved)))
        }
        defer { freeaddrinfo(list) }

        var lastError = "no addresses"
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, socketStreamType, 0)
            guard fd >= 0 else {
                lastError = String(cString: strerror(errno))
                continue
            }
            if let source {
                guard Self.bind(fd, family: info.pointee.ai_family, to: source) else {
                    lastError = "cannot bind to \(source): \(String(cString: strerror(errno)))"
                    _ = systemClose(fd)
                    continue
                }
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            #if canImport(Darwin)
            _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
            #endif
            if systemConnect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                return fd
            }
            if errno == EINPROGRESS {
                var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let milliseconds = max(1, deadline.remainingMilliseconds)
                if poll(&descriptor, 1, milliseconds) > 0 {
                    var socketError: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &socketError, &length)
                    if socketError == 0 {
                        return fd
                    }
                    lastError = String(cString: strerror(socketError))
                } else {
                    lastError = "timed out"
                }
            } else {
                lastError = String(cString: strerror(errno))
            }
            _ = systemClose(fd)
        }
        throw RawHTTPClientError.connect(host: host, port: port, reason: lastError)
    }
}

/// A point on the monotonic clock.
struct Deadline {
    private let end: UInt64

    init(seconds: Double) {
        let nanoseconds = UInt64(max(0, seconds) * 1_000_000_000)
        self.end = DispatchTime.now().uptimeNanoseconds &+ nanoseconds
    }

    var remainingMilliseconds: Int32 {
        let now = DispatchTime.now().uptimeNanoseconds
        guard now < self.end else { return 0 }
        return Int32(clamping: (self.end - now + 999_999) / 1_000_000)
    }

    var remainingSeconds: Double {
        Double(self.remainingMilliseconds) / 1000
    }
}

#if canImport(Glibc)
private let systemClose = Glibc.close
private let systemSend = Glibc.send
private let systemConnect = Glibc.connect
private let systemBind = Glibc.bind
#elseif canImport(Darwin)
private let systemClose = Darwin.close
private let systemSend = Darwin.send
private let systemConnect = Darwin.connect
private let systemBind = Darwin.bind
#endif
