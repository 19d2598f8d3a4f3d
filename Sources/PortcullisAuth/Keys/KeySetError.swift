import PortcullisPolicy
/// Why an issuer's key set could not be loaded or refreshed, worded for an operator reading the
/// log or a reload error.
///
/// A refresh that fails keeps the last good set; ``IssuerKeys/lastError`` holds the latest
/// failure. Errors compare equal when their codes do.
public struct KeySetError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case unreadableFile
            case invalidKeySet
            case emptyKeySet
            case insecureURL
            case unreachable
            case httpStatus
            case tooLarge
            case invalidDiscoveryDocument
            case issuerMismatch
            case shutDown
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// A `jwks_file` that cannot be read.
        public static let unreadableFile = Code(.unreadableFile)
        /// The document is not a JWK Set (see ``JWKSet``).
        public static let invalidKeySet = Code(.invalidKeySet)
        /// The set parsed but holds no usable key.
        public static let emptyKeySet = Code(.emptyKeySet)
        /// Not `https://` (plain `http://` only to a loopback address), or a URL with user info:
        /// nothing is fetched.
        public static let insecureURL = Code(.insecureURL)
        /// Connecting, TLS, or the exchange failed or timed out.
        public static let unreachable = Code(.unreachable)
        /// An answer other than `200 OK`; redirects are not followed.
        public static let httpStatus = Code(.httpStatus)
        /// A body over the size limit.
        public static let tooLarge = Code(.tooLarge)
        /// The OpenID configuration is not a JSON object with string `issuer` and `jwks_uri`.
        public static let invalidDiscoveryDocument = Code(.invalidDiscoveryDocument)
        /// The OpenID configuration names another `issuer` than the configured one.
        public static let issuerMismatch = Code(.issuerMismatch)
        /// ``IssuerKeyManager/shutdown()`` has run.
        public static let shutDown = Code(.shutDown)

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

    public var debugDescription: String { "\(self.code): \(self.reason) (\(self.file):\(self.line))" }

}
