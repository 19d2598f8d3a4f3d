import PortcullisPolicy
/// Why a store refused or failed a change, worded for the admin API's answer or the CLI.
///
/// `description` is the `reason` alone (what users read); `debugDescription` adds the code and
/// the throw site. Errors compare equal when their codes do.
public struct StoreError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case unknownClient
            case duplicateClient
            case invalid
            case declaredClient
            case notBuiltin
            case unavailable
            case io
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        public static let unknownClient = Code(.unknownClient)
        public static let duplicateClient = Code(.duplicateClient)
        /// The change would make an invalid client; nothing was written.
        public static let invalid = Code(.invalid)
        /// The client is declared in the config directory: change it there.
        public static let declaredClient = Code(.declaredClient)
        /// A secret operation on a client of an outside issuer.
        public static let notBuiltin = Code(.notBuiltin)
        /// The store cannot be reached (PostgreSQL down): nothing was written.
        public static let unavailable = Code(.unavailable)
        /// Reading or writing the store failed.
        public static let io = Code(.io)

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
