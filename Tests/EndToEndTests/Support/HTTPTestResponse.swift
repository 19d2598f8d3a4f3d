import Foundation

/// One HTTP/1.1 response as a test sees it.
struct HTTPTestResponse: CustomStringConvertible {
    /// 0 when no response could be read; `failure` then says why.
    var status: Int
    var reason: String = ""
    /// From the status line, e.g. `HTTP/1.1`.
    var version: String = ""
    /// In received order, names as received.
    var headers: [(String, String)] = []
    var body: [UInt8] = []
    /// Trailer fields of a chunked body.
    var trailers: [(String, String)] = []
    /// How the body was delimited.
    var framing: Framing = .none
    /// Set when reading failed (timeout, connection error, malformed message).
    var failure: String?

    enum Framing: Equatable {
        case none
        case contentLength
        case chunked
        case endOfFile
    }

    static func failed(_ why: String) -> HTTPTestResponse {
        HTTPTestResponse(status: 0, failure: why)
    }

    /// The first value of header `name`, ignoring case.
    func header(_ name: String) -> String? {
        self.headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }

    /// Every value of header `name`, ignoring case.
    func headerValues(_ name: String) -> [String] {
        self.headers.filter { $0.0.caseInsensitiveCompare(name) == .orderedSame }.map(\.1)
    }

    var bodyString: String {
        String(decoding: self.body, as: UTF8.self)
    }

    /// The body as a JSON object, or nil when it is not one.
    var json: [String: Any]? {
        self.jsonValue as? [String: Any]
    }

    /// The body as any JSON value (array, object, ...).
    var jsonValue: Any? {
        guard !self.body.isEmpty else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(self.body), options: [.fragmentsAllowed])
    }

    var description: String {
        if let failure = self.failure {
            return "no response (\(failure))"
        }
        let preview = self.body.count <= 512 ? self.bodyString : "\(self.body.count) bytes"
        return "\(self.status) \(self.reason) \(self.headers.map { "\($0.0): \($0.1)" }) \(preview)"
    }
}
