/// The tenants CIPP knows, each by its id (`customerId`, a GUID) and its default domain name:
/// CIPP resolves the tenant a request names by either, so a role's `tenants` are compared
/// through this directory and a block list cannot be sidestepped by naming the other form.
///
/// Read from CIPP's own tenant list (`ListTenants`: a JSON array of objects with `customerId`
/// and `defaultDomainName`, or an object holding it in `Results`), fetched from the upstream or
/// exported to a file. Immutable; a refresh builds a new one.
public final class TenantDirectory: Sendable {
    public struct Tenant: Hashable, Sendable {
        /// Lowercased.
        public let id: String
        /// Lowercased.
        public let domain: String
    }

    public let tenants: [Tenant]
    /// Where it came from, for messages: a file path or an upstream URL.
    public let source: String
    /// Lowercased id and domain -> index into `tenants`.
    private let index: [String: Int]

    public init(tenants: [(id: String, domain: String)], source: String) {
        var list: [Tenant] = []
        var index: [String: Int] = [:]
        for tenant in tenants {
            let entry = Tenant(id: Self.lowercased(tenant.id), domain: Self.lowercased(tenant.domain))
            // A name that two tenants claim resolves to neither.
            for name in [entry.id, entry.domain] {
                switch index[name] {
                case nil: index[name] = list.count
                case let other? where other >= 0 && list[other] != entry: index[name] = -1
                default: break
                }
            }
            list.append(entry)
        }
        self.tenants = list
        self.index = index
        self.source = source
    }

    /// The tenant named `name` (its id or its default domain, in any letter case).
    public func resolve(_ name: some StringProtocol) -> Tenant? {
        guard let position = self.index[Self.lowercased(name)], position >= 0 else { return nil }
        return self.tenants[position]
    }

    /// Whether `entry` (as a role writes it: an id or a domain) names `tenant`.
    public static func entry(_ entry: String, names tenant: Tenant) -> Bool {
        TenantRules.same(entry, tenant.id) || TenantRules.same(entry, tenant.domain)
    }

    /// Parses CIPP's tenant list.
    public static func parse(_ bytes: some Collection<UInt8>, source: String) -> Result<TenantDirectory, TenantDirectoryError> {
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes, maximumDepth: 64)
        } catch {
            return .failure(TenantDirectoryError(.invalidDocument, reason: "\(source) is not valid JSON: \(error)"))
        }
        let list: [JSONValue]
        switch value {
        case .array(let items): list = items
        case .object(let object):
            guard case .array(let items)? = object.first(where: { $0.key.lowercased() == "results" })?.value else {
                return .failure(TenantDirectoryError(.invalidDocument, reason: "\(source): expected CIPP's tenant list, a JSON array of tenants"))
            }
            list = items
        default:
            return .failure(TenantDirectoryError(.invalidDocument, reason: "\(source): expected CIPP's tenant list, a JSON array of tenants"))
        }
        var tenants: [(id: String, domain: String)] = []
        for (number, item) in list.enumerated() {
            guard case .object(let fields) = item else {
                return .failure(TenantDirectoryError(.invalidDocument, reason: "\(source): tenant \(number) is not an object"))
            }
            func text(_ key: String) -> String? { fields.first { $0.key.lowercased() == key }?.value.stringValue }
            guard let id = text("customerid"), let domain = text("defaultdomainname"), !id.isEmpty, !domain.isEmpty else {
                // CIPP's selector entry ("AllTenants") has no id: it is not a tenant.
                continue
            }
            tenants.append((id, domain))
        }
        guard !tenants.isEmpty else {
            return .failure(TenantDirectoryError(.invalidDocument, reason: "\(source) lists no tenant with customerId and defaultDomainName"))
        }
        return .success(TenantDirectory(tenants: tenants, source: source))
    }

    private static func lowercased(_ text: some StringProtocol) -> String {
        String(decoding: text.utf8.map(asciiLower), as: UTF8.self)
    }
}

/// Why CIPP's tenant list cannot be used: read from a file or fetched from the upstream.
///
/// `description` is the reason alone; `debugDescription` adds the code and the throw site.
/// Errors compare equal when their codes do.
public struct TenantDirectoryError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case invalidDocument
            case credentialUnavailable
            case httpStatus
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// Not JSON, not CIPP's tenant list, or no tenant with `customerId` and
        /// `defaultDomainName`.
        public static let invalidDocument = Code(.invalidDocument)
        /// The upstream credential the fetch needs is not available.
        public static let credentialUnavailable = Code(.credentialUnavailable)
        /// The upstream answered other than `200 OK`.
        public static let httpStatus = Code(.httpStatus)

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
