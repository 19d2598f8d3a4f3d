/// Why the upstream credential could not be obtained, worded for an operator reading the log.
/// Never carries a secret or a token. Errors compare equal when their codes do.
public struct UpstreamCredentialError: Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case unreadableFile
            case unreachable
            case httpStatus
            case invalidTokenResponse
            case tooLarge
            case shutDown
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// A `value_file` or `client_secret_file` that cannot be read or holds a bad value.
        public static let unreadableFile = Code(.unreadableFile)
        /// Connecting, TLS, or the exchange with the token endpoint failed or timed out.
        public static let unreachable = Code(.unreachable)
        /// The token endpoint answered other than `200 OK`.
        public static let httpStatus = Code(.httpStatus)
        /// The answer is not a usable token response.
        public static let invalidTokenResponse = Code(.invalidTokenResponse)
        /// The answer is over the size limit.
        public static let tooLarge = Code(.tooLarge)
        /// ``UpstreamCredentialManager/shutdown()`` has run.
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

    public static func == (lhs: UpstreamCredentialError, rhs: UpstreamCredentialError) -> Bool {
        lhs.code == rhs.code
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.code)
    }
}
