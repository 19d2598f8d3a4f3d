/// What the CIPP profile reads from a request to decide it (DESIGN.md, `profile: cipp`): the
/// tenant it acts on, from `tenantFilter` in the query and then in a JSON body (a string or
/// `{"value": ...}`, keys case-insensitive), and the sub-requests of `POST /api/$batch`.
///
/// Ambiguity is refused rather than guessed: two different `tenantFilter`s in one request, a
/// `tenantFilter` of the wrong shape, or a body that is not the JSON it claims to be.
public enum CIPPRequest {
    public enum Tenant: Equatable, Sendable {
        /// The request names no tenant.
        case none
        case named(String)
        /// The request names a tenant in a way that cannot be read for sure.
        case ambiguous(String)
    }

    /// `tenantFilter` of a raw query (`a=1&tenantFilter=contoso.onmicrosoft.com`), the key
    /// matched case-insensitively, the value percent-decoded (`+` is a space).
    public static func tenant(inQuery query: Substring?) -> Tenant {
        guard let query, !query.isEmpty else { return .none }
        var found: String?
        for pair in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            let key = pair[pair.startIndex..<(equals ?? pair.endIndex)]
            guard let decodedKey = Self.percentDecoded(key), Self.isTenantFilterKey(decodedKey) else { continue }
            guard let equals, let value = Self.percentDecoded(pair[pair.index(after: equals)...]) else {
                return .ambiguous("tenantFilter in the query has no readable value")
            }
            if let found, found.lowercased() != value.lowercased() {
                return .ambiguous("the query names two different tenants")
            }
            found = found ?? value
        }
        guard let found else { return .none }
        return found.isEmpty ? .ambiguous("tenantFilter in the query is empty") : .named(found)
    }

    /// `tenantFilter` at the top level of a JSON object body.
    public static func tenant(inJSONBody body: some Collection<UInt8>) -> Tenant {
        guard !body.isEmpty else { return .none }
        guard case .object(let object)? = try? JSONValue.parse(body) else {
            // Not a JSON object: it names no tenant the backend would read as tenantFilter
            // only if the backend does not parse it either; refuse to guess.
            return .ambiguous("the request body is not a JSON object")
        }
        return Self.tenant(inObject: object)
    }

    static func tenant(inObject object: JSONObject) -> Tenant {
        var found: String?
        for (key, value) in object where Self.isTenantFilterKey(key) {
            let name: String
            switch value {
            case .string(let text):
                name = text
            case .object(let inner):
                guard let text = inner.first(where: { $0.key.lowercased() == "value" })?.value.stringValue else {
                    return .ambiguous("tenantFilter in the body is an object without a string value")
                }
                name = text
            case .null:
                continue
            default:
                return .ambiguous("tenantFilter in the body is neither a string nor {value}")
            }
            if let found, found.lowercased() != name.lowercased() {
                return .ambiguous("the body names two different tenants")
            }
            found = found ?? name
        }
        guard let found else { return .none }
        return found.isEmpty ? .ambiguous("tenantFilter in the body is empty") : .named(found)
    }

    /// One sub-request of a `$batch` body: `{"requests":[{"id","method","url","body"?}]}`,
    /// `url` relative to `/api/` (`ListUsers?tenantFilter=...`).
    public struct BatchItem: Equatable, Sendable {
        public var method: String
        /// The sub-request's path as `/api/...`, before canonicalisation.
        public var target: String
        public var bodyTenant: Tenant
    }

    /// The sub-requests of a `$batch` body, or nil (with why) when it is not one.
    public static func batch(inJSONBody body: some Collection<UInt8>) -> Result<[BatchItem], BatchError> {
        guard case .object(let object)? = try? JSONValue.parse(body, maximumDepth: 32) else {
            return .failure(BatchError("the $batch body is not a JSON object"))
        }
        guard case .array(let requests)? = object.first(where: { $0.key.lowercased() == "requests" })?.value else {
            return .failure(BatchError("the $batch body has no requests array"))
        }
        var items: [BatchItem] = []
        items.reserveCapacity(requests.count)
        for request in requests {
            guard case .object(let fields) = request else {
                return .failure(BatchError("a $batch request is not an object"))
            }
            func field(_ name: String) -> JSONValue? { fields.first { $0.key.lowercased() == name }?.value }
            guard let method = field("method")?.stringValue, !method.isEmpty,
                method.utf8.allSatisfy({ Self.isTokenByte($0) })
            else { return .failure(BatchError("a $batch request has no valid method")) }
            guard let url = field("url")?.stringValue, !url.isEmpty else {
                return .failure(BatchError("a $batch request has no url"))
            }
            // Relative to /api/; an absolute URL or a leading slash could point elsewhere.
            guard !url.hasPrefix("/"), !url.contains("://"), !url.hasPrefix("\\") else {
                return .failure(BatchError("a $batch url must be relative to /api/"))
            }
            var bodyTenant = Tenant.none
            switch field("body") {
            case .object(let inner)?: bodyTenant = Self.tenant(inObject: inner)
            case nil, .null?: break
            default: bodyTenant = .ambiguous("a $batch request body is not an object")
            }
            items.append(BatchItem(method: method.uppercased(), target: "/api/" + url, bodyTenant: bodyTenant))
        }
        return .success(items)
    }

    public struct BatchError: Error, Equatable, Sendable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    // MARK: - Bytes

    private static func isTenantFilterKey(_ key: String) -> Bool {
        key.utf8.count == 12 && key.lowercased() == "tenantfilter"
    }

    /// Percent-decodes a query component (`+` as space); nil when an escape is malformed or the
    /// result is not UTF-8.
    static func percentDecoded(_ bytes: some Collection<UInt8>) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(Self.hex), let low = iterator.next().flatMap(Self.hex) else {
                    return nil
                }
                out.append(high << 4 | low)
            case UInt8(ascii: "+"):
                out.append(UInt8(ascii: " "))
            default:
                out.append(byte)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), 0x30...0x39,
            UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
