import PortcullisPolicy
/// The claims of a verified JWT payload (RFC 7519 section 4.1).
///
/// Parsing checks only shapes: the payload is a JSON object, `iss`/`sub`/`jti` are strings,
/// `aud` is a string or an array of strings, and `exp`/`nbf`/`iat` are numbers. Whether the
/// values are acceptable is ``ClaimsPolicy``'s call.
///
/// NumericDate values may be non-integer (RFC 7519 section 2); the integer part is used
/// (rounded down), which can only end a token's life up to a second early. Values beyond
/// ±2^53 seconds are refused as ``ClaimsError/Code/invalidClaims``.
public struct JWTClaims: Sendable {
    public let issuer: String?
    public let subject: String?
    /// `aud` as a list (a string claim is one element); nil when the token has none.
    public let audience: [String]?
    /// `exp` in seconds since the epoch.
    public let expiresAt: Int64?
    public let notBefore: Int64?
    public let issuedAt: Int64?
    public let jwtID: String?
    /// Every top-level claim, the registered ones included.
    public let members: JSONObject

    /// Parses a JWT payload, e.g. ``VerifiedToken/payload``.
    public init<Bytes: Collection>(payload: Bytes) throws(ClaimsError) where Bytes.Element == UInt8 {
        guard case .object(let members)? = try? JSONValue.parse(payload) else {
            throw ClaimsError(.invalidClaims, claim: nil, reason: "payload is not a strict JSON object")
        }
        self.members = members
        self.issuer = try Self.string(members, Self.iss)
        self.subject = try Self.string(members, Self.sub)
        self.jwtID = try Self.string(members, Self.jti)
        self.expiresAt = try Self.numericDate(members, Self.exp)
        self.notBefore = try Self.numericDate(members, Self.nbf)
        self.issuedAt = try Self.numericDate(members, Self.iat)
        switch members[Self.aud] {
        case nil:
            self.audience = nil
        case .string(let single)?:
            self.audience = [single]
        case .array(let elements)?:
            var audience: [String] = []
            audience.reserveCapacity(elements.count)
            for element in elements {
                guard case .string(let value) = element else {
                    throw ClaimsError(.invalidClaims, claim: "aud", reason: "aud array holds a non-string")
                }
                audience.append(value)
            }
            self.audience = audience
        default:
            throw ClaimsError(.invalidClaims, claim: "aud", reason: "aud is neither a string nor an array of strings")
        }
    }

    /// The top-level claim `name` when it is a string: how `client_claim` (`appid`, `azp`,
    /// `client_id`, `sub`) names the client.
    public func string(named name: String) -> String? {
        self.members[name]?.stringValue
    }

    /// As `string(named:)`, for a name looked up for every token (an issuer's client claim).
    public func string(named name: JSONObject.Name) -> String? {
        self.members[name]?.stringValue
    }

    private static let iss = JSONObject.Name("iss")
    private static let sub = JSONObject.Name("sub")
    private static let jti = JSONObject.Name("jti")
    private static let exp = JSONObject.Name("exp")
    private static let nbf = JSONObject.Name("nbf")
    private static let iat = JSONObject.Name("iat")
    private static let aud = JSONObject.Name("aud")

    /// The top-level claim `name`, of any JSON type.
    public subscript(name: String) -> JSONValue? {
        self.members[name]
    }

    private static func string(_ members: JSONObject, _ name: JSONObject.Name) throws(ClaimsError) -> String? {
        switch members[name] {
        case nil: return nil
        case .string(let value)?: return value
        default: throw ClaimsError(.invalidClaims, claim: name.text, reason: "claim is not a string")
        }
    }

    private static let numericDateLimit: Double = 9_007_199_254_740_992  // 2^53

    private static func numericDate(_ members: JSONObject, _ name: JSONObject.Name) throws(ClaimsError) -> Int64? {
        switch members[name] {
        case nil:
            return nil
        case .number(let value)?:
            guard value.magnitude <= Self.numericDateLimit else {
                throw ClaimsError(.invalidClaims, claim: name.text, reason: "NumericDate is out of range")
            }
            return Int64(value.rounded(.down))
        default:
            throw ClaimsError(.invalidClaims, claim: name.text, reason: "NumericDate is not a number")
        }
    }
}
