import PortcullisPolicy
/// Why the gateway could not start, reload or stop as asked, worded for the operator (the CLI
/// prints `description`, the reason alone; `debugDescription` adds the code and the throw site).
///
/// Errors compare equal when their codes do.
public struct GatewayError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case invalidSetting
            case cannotListen
            case missingCredential
            case needsRestart
            case reloadUnavailable
            case drainTimeout
            case io
            case internalError
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// A setting the gateway cannot use: a TLS or admin token file, an issuer's keys or state,
        /// a client's public key.
        public static let invalidSetting = Code(.invalidSetting)
        /// The listener or the admin address could not be bound.
        public static let cannotListen = Code(.cannotListen)
        /// `upstream.auth` is configured but its credential was not obtained.
        public static let missingCredential = Code(.missingCredential)
        /// A reload asks for what only a restart can do.
        public static let needsRestart = Code(.needsRestart)
        /// This gateway cannot reload itself (the admin API's reload).
        public static let reloadUnavailable = Code(.reloadUnavailable)
        /// Connections were still open when the drain timed out.
        public static let drainTimeout = Code(.drainTimeout)
        /// A file could not be written.
        public static let io = Code(.io)
        /// A state the gateway should never reach.
        public static let internalError = Code(.internalError)

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
