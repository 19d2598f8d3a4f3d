/// What the CIPP profile reads from a request, the way CIPP's own code reads it (DESIGN.md,
/// `profile: cipp`).
///
/// - The tenant: CIPP takes `tenantFilter`, else `tenantId`, from the query, else from the JSON
///   body, each a string or `{"value": ...}`, names matched in any letter case; some handlers
///   then act on the body's `tenantID` alone. So every one of those fields is read, in the query
///   and in the body, and they must all name the same tenant.
/// - `POST /api/$batch`: each item runs as its own request whose endpoint is `url` and whose
///   query is the item's `query` object.
/// - Endpoint names: CIPP finds the handler with a command lookup in which `*`, `?`, `[` and `]`
///   are wildcards, so a name holding one could reach another endpoint than the one matched.
///
/// Ambiguity is refused rather than guessed: fields naming different tenants, a tenant field of
/// the wrong shape, a body that is not the JSON object it claims to be.
public enum CIPPRequest {
    public enum Tenant: Equatable, Sendable {
        /// The request names no tenant.
        case none
        case named(String)
        /// Several fields name tenants that differ as written (in any letter case); they may
        /// still be one tenant written as its id and as its domain (see `TenantDirectory`).
        case several([String])
        /// The request names a tenant in a way that cannot be read for sure.
        case ambiguous(String)

        /// The every-field rule across two places (the query, then the body).
        public func merged(with other: Tenant) -> Tenant {
            switch (self, other) {
            case (.ambiguous, _): return self
            case (_, .ambiguous): return other
            case (.none, _): return other
            case (_, .none): return self
            default:
                var names = TenantNames()
                for name in self.names + other.names { names.add(name) }
                return names.tenant
            }
        }

        var names: [String] {
            switch self {
            case .named(let name): return [name]
            case .several(let names): return names
            case .none, .ambiguous: return []
            }
        }
    }

    /// The names the tenant fields of one request hold, distinct in ASCII case.
    struct TenantNames {
        private(set) var names: [String] = []

        mutating func add(_ name: String) {
            if !self.names.contains(where: { TenantRules.same($0, name) }) { self.names.append(name) }
        }

        var tenant: Tenant {
            switch self.names.count {
            case 0: return .none
            case 1: return .named(self.names[0])
            default: return .several(self.names)
            }
        }
    }

    /// `tenantFilter` and `tenantId`, in any letter case.
    static func isTenantKey(_ key: some StringProtocol) -> Bool {
        let utf8 = key.utf8
        switch utf8.count {
        case 12: return Self.equalsLowercased(utf8, "tenantfilter")
        case 8: return Self.equalsLowercased(utf8, "tenantid")
        default: return false
        }
    }

    private static func equalsLowercased(_ bytes: some Collection<UInt8>, _ lower: StaticString) -> Bool {
        lower.withUTF8Buffer { expected in
            bytes.count == expected.count && zip(bytes, expected).allSatisfy { asciiLower($0) == $1 }
        }
    }

    /// The tenant fields of a raw query (`a=1&tenantFilter=contoso.onmicrosoft.com`), names
    /// percent-decoded and matched in any letter case, values percent-decoded (`+` is a space).
    public static func tenant(inQuery query: Substring?) -> Tenant {
        guard let query, !query.isEmpty else { return .none }
        var names = TenantNames()
        for pair in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            let rawKey = pair[pair.startIndex..<(equals ?? pair.endIndex)]
            guard let key = Self.percentDecoded(rawKey) else {
                return .ambiguous("a query parameter name is not readable")
            }
            guard Self.isTenantKey(key) else { continue }
            guard let equals, let value = Self.percentDecoded(pair[pair.index(after: equals)...]) else {
                return .ambiguous("\(key) in the query has no readable value")
            }
            guard !value.isEmpty else { return .ambiguous("\(key) in the query is empty") }
            names.add(value)
        }
        return names.tenant
    }

    /// The tenant fields at the top level of a JSON object body.
    public static func tenant(inJSONBody body: some Collection<UInt8>) -> Tenant {
        guard !body.isEmpty else { return .none }
        guard case .object(let object)? = try? JSONValue.parse(body) else {
            return .ambiguous("the request body is not a JSON object")
        }
        return Self.tenant(inObject: object, place: "the body")
    }

    /// The tenant fields of a JSON object: a string, or an object with a string `value`.
    static func tenant(inObject object: JSONObject, place: String) -> Tenant {
        var names = TenantNames()
        for (key, value) in object where Self.isTenantKey(key) {
            let name: String
            switch value {
            case .string(let text):
                name = text
            case .object(let inner):
                let values = inner.filter { Self.equalsLowercased($0.key.utf8, "value") }
                guard values.count == 1, let text = values[0].value.stringValue else {
                    return .ambiguous("\(key) in \(place) is an object without one string value")
                }
                name = text
            case .null:
                continue
            default:
                return .ambiguous("\(key) in \(place) is neither a string nor {value}")
            }
            guard !name.isEmpty else { return .ambiguous("\(key) in \(place) is empty") }
            names.add(name)
        }
        return names.tenant
    }

    // MARK: - Endpoint names

    /// Whether a canonical path holds a character CIPP's command lookup reads as a wildcard:
    /// `*`, `?`, `[` or `]`, raw or percent-encoded.
    public static func hasWildcard(_ path: some Collection<UInt8>) -> Bool {
        var iterator = path.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "*"), UInt8(ascii: "?"), UInt8(ascii: "["), UInt8(ascii: "]"):
                return true
            case UInt8(ascii: "%"):
                guard let high = iterator.next(), let low = iterator.next() else { return false }
                switch (high, asciiLower(low)) {
                case (UInt8(ascii: "2"), UInt8(ascii: "a")), (UInt8(ascii: "3"), UInt8(ascii: "f")),
                    (UInt8(ascii: "5"), UInt8(ascii: "b")), (UInt8(ascii: "5"), UInt8(ascii: "d")):
                    return true
                default:
                    continue
                }
            default:
                continue
            }
        }
        return false
    }

    // MARK: - $batch

    /// One item of a `$batch` body: `{"id","method","url","query"?,"body"?}`.
    public struct BatchItem: Equatable, Sendable {
        public var method: String
        /// The endpoint name (`url`), e.g. `ListUsers`.
        public var endpoint: String
        /// The tenant its `query` object and its `body` name, by the every-field rule.
        public var tenant: Tenant

        /// The path the item calls, for the rules: `/api/` and the endpoint name.
        public var path: String { "/api/" + self.endpoint }
    }

    /// The items of a `$batch` body, or why it is refused (400). `maximumItems` is
    /// `limits.max_batch_items`.
    public static func batch(inJSONBody body: some Collection<UInt8>, maximumItems: Int) -> Result<[BatchItem], BatchError> {
        guard case .object(let object)? = try? JSONValue.parse(body, maximumDepth: 32) else {
            return .failure(BatchError(.invalidBody, reason: "the $batch body is not a JSON object"))
        }
        let lists = object.filter { Self.equalsLowercased($0.key.utf8, "requests") }
        guard lists.count == 1, case .array(let requests) = lists[0].value else {
            return .failure(BatchError(.invalidBody, reason: "the $batch body has no requests array"))
        }
        guard requests.count <= maximumItems else {
            return .failure(BatchError(.tooManyRequests, reason: "the $batch has \(requests.count) requests; at most \(maximumItems) are allowed"))
        }
        var items: [BatchItem] = []
        items.reserveCapacity(requests.count)
        for (index, request) in requests.enumerated() {
            guard case .object(let fields) = request else {
                return .failure(BatchError(.invalidRequest, reason: "$batch request \(index) is not an object"))
            }
            switch Self.batchItem(fields) {
            case .success(let item): items.append(item)
            case .failure(let why): return .failure(BatchError(why.code, reason: "$batch request \(index): \(why.description)", file: why.file, line: why.line))
            }
        }
        return .success(items)
    }

    private static func batchItem(_ fields: JSONObject) -> Result<BatchItem, BatchError> {
        func field(_ name: StaticString) -> Result<JSONValue?, BatchError> {
            let matches = fields.filter { Self.equalsLowercased($0.key.utf8, name) }
            guard matches.count <= 1 else { return .failure(BatchError(.invalidRequest, reason: "\(name) is given more than once")) }
            return .success(matches.first?.value)
        }
        let method: String
        switch field("method") {
        case .failure(let error): return .failure(error)
        case .success(let value):
            guard let text = value?.stringValue, !text.isEmpty, text.utf8.allSatisfy(Self.isTokenByte) else {
                return .failure(BatchError(.invalidRequest, reason: "no valid method"))
            }
            method = text.uppercased()
        }
        let endpoint: String
        switch field("url") {
        case .failure(let error): return .failure(error)
        case .success(let value):
            guard let url = value?.stringValue, !url.isEmpty else { return .failure(BatchError(.invalidRequest, reason: "no url")) }
            // CIPP takes url as the endpoint's name, as it is: anything but a plain name could
            // reach another endpoint (wildcards) or none.
            guard url.utf8.allSatisfy(Self.isEndpointNameByte) else {
                return .failure(
                    BatchError(.invalidRequest, reason: "url must be an endpoint name such as ListUsers (letters, digits, - and _); put parameters in the item's query object")
                )
            }
            endpoint = url
        }
        var tenant = Tenant.none
        switch field("query") {
        case .failure(let error): return .failure(error)
        case .success(nil), .success(.null?): break
        case .success(.object(let query)?): tenant = Self.tenant(inObject: query, place: "the item's query")
        case .success(_?): return .failure(BatchError(.invalidRequest, reason: "query is not an object"))
        }
        switch field("body") {
        case .failure(let error): return .failure(error)
        case .success(nil), .success(.null?): break
        case .success(.object(let body)?): tenant = tenant.merged(with: Self.tenant(inObject: body, place: "the item's body"))
        case .success(_?): return .failure(BatchError(.invalidRequest, reason: "body is not an object"))
        }
        if case .ambiguous(let why) = tenant { return .failure(BatchError(.invalidRequest, reason: why)) }
        return .success(BatchItem(method: method, endpoint: endpoint, tenant: tenant))
    }

    /// Why a `$batch` body was refused; `description` is the reason alone (the client reads it in
    /// the 400 body), `debugDescription` adds the code and the throw site. Errors compare equal when
    /// their codes do.
    public struct BatchError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
        public struct Code: Hashable, Sendable, CustomStringConvertible {
            private enum Backing: Hashable, Sendable {
                case invalidBody
                case tooManyRequests
                case invalidRequest
            }

            private let backing: Backing

            private init(_ backing: Backing) {
                self.backing = backing
            }

            /// Not a JSON object, or no `requests` array.
            public static let invalidBody = Code(.invalidBody)
            /// More requests than the configured maximum.
            public static let tooManyRequests = Code(.tooManyRequests)
            /// One request of the batch: a field given twice, no valid method or url, a query or body
            /// that is not an object, an ambiguous tenant.
            public static let invalidRequest = Code(.invalidRequest)

            public var description: String { "\(self.backing)" }
        }

        public let code: Code
        public let reason: String
        public let file: String
        public let line: UInt

        init(_ code: Code, reason: String, file: String = #fileID, line: UInt = #line) {
            self.code = code
            self.reason = reason
            self.file = file
            self.line = line
        }

        public var description: String { self.reason }

    }

    // MARK: - Bytes

    /// Percent-decodes a query component (`+` as space); nil when an escape is malformed or the
    /// result is not UTF-8.
    static func percentDecoded(_ bytes: some Collection<UInt8>) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(CanonicalPath.hexValue), let low = iterator.next().flatMap(CanonicalPath.hexValue) else {
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

    private static func isEndpointNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), 0x30...0x39,
            UInt8(ascii: "-"), UInt8(ascii: "_"):
            return true
        default:
            return false
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
