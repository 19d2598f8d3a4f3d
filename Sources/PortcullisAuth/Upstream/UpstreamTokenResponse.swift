import PortcullisPolicy

/// A token endpoint's successful answer to a client-credentials grant (RFC 6749 §5.1):
/// `{"access_token", "token_type": "Bearer", "expires_in"}`.
public struct UpstreamTokenResponse: Sendable, Equatable {
    public var accessToken: String
    /// Seconds the token is valid for, from when it was asked for.
    public var expiresIn: Int64

    /// Used when the endpoint leaves `expires_in` out (RFC 6749 only recommends it).
    public static let defaultExpiresIn: Int64 = 300

    public init(accessToken: String, expiresIn: Int64) {
        self.accessToken = accessToken
        self.expiresIn = expiresIn
    }

    /// Parses the body. `access_token` must be visible ASCII (it goes into a header line as it
    /// is); `token_type`, when given, must be `Bearer` (any case); `expires_in` is a positive
    /// whole number of seconds, as a JSON number or a string of digits (some endpoints send one).
    /// Errors never quote the token.
    public static func parse(_ body: some Collection<UInt8>) throws(UpstreamCredentialError) -> UpstreamTokenResponse {
        guard case .object(let object)? = try? JSONValue.parse(body) else {
            throw UpstreamCredentialError(.invalidTokenResponse, reason: "the token response is not a JSON object")
        }
        guard let token = object["access_token"]?.stringValue else {
            throw UpstreamCredentialError(.invalidTokenResponse, reason: "the token response has no string access_token")
        }
        guard !token.isEmpty, token.utf8.count <= 16 * 1024, token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw UpstreamCredentialError(
                .invalidTokenResponse,
                reason: "the token response's access_token is empty, too long or not visible ASCII"
            )
        }
        if let type = object["token_type"] {
            guard let text = type.stringValue, text.lowercased() == "bearer" else {
                throw UpstreamCredentialError(.invalidTokenResponse, reason: "the token response's token_type is not Bearer")
            }
        }
        var expiresIn = Self.defaultExpiresIn
        if let value = object["expires_in"] {
            let seconds: Int64?
            switch value {
            case .number(let number):
                seconds = number.rounded(.towardZero) == number && number < 1e12 ? Int64(exactly: number) : nil
            case .string(let text):
                seconds = !text.isEmpty && text.utf8.count <= 12 && text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) ? Int64(text) : nil
            default:
                seconds = nil
            }
            guard let seconds, seconds > 0 else {
                throw UpstreamCredentialError(.invalidTokenResponse, reason: "the token response's expires_in is not a positive whole number")
            }
            expiresIn = seconds
        }
        return UpstreamTokenResponse(accessToken: token, expiresIn: expiresIn)
    }

    /// The `error` code of an RFC 6749 §5.2 error body (`invalid_client`, ...), when it is a short
    /// plain code; worth logging, unlike the rest of the body.
    static func errorCode(_ body: some Collection<UInt8>) -> String? {
        guard case .object(let object)? = try? JSONValue.parse(body), let code = object["error"]?.stringValue,
            !code.isEmpty, code.utf8.count <= 64,
            code.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || $0 == 0x5F || ($0 >= 0x30 && $0 <= 0x39) })
        else { return nil }
        return code
    }

    /// `grant_type=client_credentials&client_id=..&client_secret=..[&scope=..]`, every value
    /// percent-encoded (application/x-www-form-urlencoded; only unreserved characters stay).
    public static func requestBody(clientID: String, clientSecret: String, scope: String?) -> String {
        var body = "grant_type=client_credentials&client_id=\(Self.formEncode(clientID))&client_secret=\(Self.formEncode(clientSecret))"
        if let scope { body += "&scope=\(Self.formEncode(scope))" }
        return body
    }

    static func formEncode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// When to ask for the next token, and how long to wait after a failure. Pure: tested directly.
public struct TokenRefreshSchedule: Sendable, Equatable {
    /// The first retry delay after a failure; it doubles up to ``maximumRetryDelay``.
    public var minimumRetryDelay: Duration = .seconds(1)
    public var maximumRetryDelay: Duration = .seconds(16)

    public init(minimumRetryDelay: Duration = .seconds(1), maximumRetryDelay: Duration = .seconds(16)) {
        self.minimumRetryDelay = minimumRetryDelay
        self.maximumRetryDelay = maximumRetryDelay
    }

    /// Nanoseconds after the fetch started to refresh a token valid for `lifetime` seconds: at
    /// 80% of its lifetime or 60 s before it expires, whichever is earlier, but never before half
    /// of it (a short-lived token is not refreshed back to back).
    public func refreshDelay(lifetime seconds: Int64) -> Int64 {
        let lifetime = Self.nanoseconds(seconds)
        let eighty = lifetime / 10 * 8
        let minuteBefore = lifetime - 60_000_000_000
        return max(min(eighty, minuteBefore), lifetime / 2)
    }

    /// Nanoseconds to wait after `failures` failed attempts in a row (1 or more), never past
    /// ``maximumRetryDelay``.
    public func retryDelay(afterFailures failures: Int) -> Int64 {
        let minimum = max(Self.nanoseconds(self.minimumRetryDelay), 1_000_000)
        let maximum = max(Self.nanoseconds(self.maximumRetryDelay), minimum)
        var delay = minimum
        for _ in 1..<max(failures, 1) where delay < maximum {
            delay = delay > maximum / 2 ? maximum : delay * 2
        }
        return min(delay, maximum)
    }

    static func nanoseconds(_ seconds: Int64) -> Int64 {
        seconds > Int64.max / 1_000_000_000 ? Int64.max : seconds * 1_000_000_000
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return Self.nanoseconds(seconds) &+ attoseconds / 1_000_000_000
    }
}
