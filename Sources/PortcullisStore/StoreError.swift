/// Why a store refused or failed a change. Compared on the code alone.
public struct StoreError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: Sendable, Equatable {
        case unknownClient
        case duplicateClient
        /// The change would make an invalid client; nothing was written.
        case invalid
        /// The client is declared in the config directory: change it there.
        case declaredClient
        /// A secret operation on a client of an outside issuer.
        case notBuiltin
        /// The store cannot be reached (PostgreSQL down): nothing was written.
        case unavailable
        /// Reading or writing the store failed.
        case io
    }

    public let code: Code
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { self.reason }

    public static func == (lhs: StoreError, rhs: StoreError) -> Bool { lhs.code == rhs.code }
}
