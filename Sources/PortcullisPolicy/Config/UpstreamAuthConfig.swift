import Foundation

/// `upstream.auth`: the credential Portcullis itself presents to the upstream. The caller's own
/// `Authorization` never goes upstream; this takes its place.
public enum UpstreamAuthConfig: Sendable, Equatable {
    /// `header: {name, value_file}`: a fixed header whose value is the file's contents, read
    /// again whenever the file changes.
    case header(HeaderCredential)
    /// `client_credentials: {token_url, client_id, client_secret_file, scope}`: an OAuth 2.0
    /// access token sent as `Authorization: Bearer`, fetched and refreshed in the background.
    case clientCredentials(ClientCredentials)

    public struct HeaderCredential: Sendable, Equatable {
        /// As written (case kept); compared case-insensitively.
        public var name: String
        /// Resolved against the config file's directory.
        public var valueFile: String

        public init(name: String, valueFile: String) {
            self.name = name
            self.valueFile = valueFile
        }
    }

    public struct ClientCredentials: Sendable, Equatable {
        public var tokenURL: String
        public var clientID: String
        /// Resolved against the config file's directory; read again for every token request.
        public var clientSecretFile: String
        /// Nil: no `scope` parameter is sent.
        public var scope: String?

        public init(tokenURL: String, clientID: String, clientSecretFile: String, scope: String? = nil) {
            self.tokenURL = tokenURL
            self.clientID = clientID
            self.clientSecretFile = clientSecretFile
            self.scope = scope
        }
    }

    /// The lowercased name of the header the credential is sent in.
    public var headerName: String {
        switch self {
        case .header(let header): return header.name.lowercased()
        case .clientCredentials: return "authorization"
        }
    }

    /// Names the gateway writes itself or that frame the message: a fixed header may not be one.
    static let reservedHeaderNames: Set<String> = [
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade",
        "expect", "proxy-connection", "proxy-authorization", "forwarded", "x-forwarded-for", "x-forwarded-proto",
        "x-forwarded-host", "x-real-ip", "x-request-id", "traceparent",
    ]

    /// Why `name` cannot be the fixed header's name, or nil.
    static func headerNameProblem(_ name: String) -> String? {
        // RFC 9110 token characters.
        let tokenPunctuation = Set("!#$%&'*+-.^_`|~".utf8)
        guard !name.isEmpty,
            name.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || tokenPunctuation.contains($0) })
        else {
            return "'\(name)' is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)"
        }
        let lowercased = name.lowercased()
        if Self.reservedHeaderNames.contains(lowercased) || lowercased.hasPrefix("x-portcullis-")
            || lowercased.hasPrefix("x-ms-client-principal")
        {
            return "'\(name)' is a header the gateway sets or removes itself; choose another name"
        }
        return nil
    }

    /// The biggest credential file read (a header value or a client secret).
    public static let maximumFileBytes = 16 * 1024

    /// A credential file's contents with trailing line ends (CR, LF) trimmed. Fails when the file
    /// cannot be read, is empty or too large, or holds CR, LF, NUL or another control character
    /// before its end: the value goes into a header line or a form body as it is. The reason
    /// names the file, never its contents.
    public static func readCredentialFile(_ path: String) -> Result<String, CredentialFileError> {
        let data: Data
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            if let size = attributes[.size] as? NSNumber, size.intValue > Self.maximumFileBytes {
                return .failure(CredentialFileError(.tooLarge, reason: "\(path) is larger than \(Self.maximumFileBytes) bytes"))
            }
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            return .failure(CredentialFileError(.unreadable, reason: "cannot read \(path): \((error as NSError).localizedDescription)"))
        }
        var bytes = Array(data)
        while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
        guard !bytes.isEmpty else { return .failure(CredentialFileError(.empty, reason: "\(path) is empty")) }
        if bytes.contains(where: { $0 == 0x0A || $0 == 0x0D || $0 == 0x00 }) {
            return .failure(CredentialFileError(.invalidValue, reason: "\(path) holds a line break or NUL inside its value"))
        }
        if bytes.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) {
            return .failure(CredentialFileError(.invalidValue, reason: "\(path) holds a control character"))
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(CredentialFileError(.invalidValue, reason: "\(path) is not UTF-8 text"))
        }
        return .success(text)
    }
}

/// Why a credential file cannot be used; names the file, never its contents.
///
/// `description` is the reason alone; `debugDescription` adds the code and the throw site.
/// Errors compare equal when their codes do.
public struct CredentialFileError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case tooLarge
            case unreadable
            case empty
            case invalidValue
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// Larger than the 16 KiB limit.
        public static let tooLarge = Code(.tooLarge)
        public static let unreadable = Code(.unreadable)
        public static let empty = Code(.empty)
        /// A line break or NUL inside the value, a control character, or not UTF-8.
        public static let invalidValue = Code(.invalidValue)

        public var description: String { "\(self.backing)" }
    }

    public let code: Code
    public let reason: String
    public let file: String
    public let line: UInt

    public init(_ code: Code, reason: String, file: String = #fileID, line: UInt = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    public var description: String { self.reason }

}
