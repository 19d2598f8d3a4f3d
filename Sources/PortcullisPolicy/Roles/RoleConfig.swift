/// One `roles:` entry: a named set of privileges (DESIGN.md "Policy files").
///
/// A role allows what some `allow` rule (or, expanded at load, some catalogue permission of
/// `permissions`) matches, minus what a `deny` rule matches; across the roles of one client,
/// allows add up and any deny wins.
public struct RoleConfig: Sendable {
    public var name: String
    public var description: String?
    public var allow: [RouteRule]
    public var deny: [RouteRule]
    /// For the CIPP profile: which tenants the role may act for; nil means any tenant, or none.
    public var tenants: TenantRules?
    /// Catalogue permissions whose operations the role may call.
    public var permissions: PermissionSelection?
    /// The limits of clients holding this role, unless their own entry says otherwise.
    public var limits: ClientLimits?
    public var location: SourceLocation?

    public init(
        name: String,
        description: String? = nil,
        allow: [RouteRule] = [],
        deny: [RouteRule] = [],
        tenants: TenantRules? = nil,
        permissions: PermissionSelection? = nil,
        location: SourceLocation? = nil
    ) {
        self.name = name
        self.description = description
        self.allow = allow
        self.deny = deny
        self.tenants = tenants
        self.permissions = permissions
        self.location = location
    }
}

/// One `allow` or `deny` entry: `{methods: [GET, HEAD], paths: ["/api/List*"]}`.
public struct RouteRule: Sendable {
    /// Upper-case method names; nil (the key absent) means any method. GET does not imply HEAD
    /// here: write HEAD where it is wanted.
    public var methods: [String]?
    public var paths: [PathPattern]
    /// Where each of `paths` was written, in the same order.
    public var pathLocations: [SourceLocation?]
    /// `any_tenant: true` on an allow rule: the paths it allows have no tenant check, so a role
    /// with `tenants` may call them without naming a tenant (see `TenantRules`).
    public var anyTenant: Bool
    /// The rule's key path, e.g. `roles.readonly.allow[0]`.
    public var key: String
    public var location: SourceLocation?

    public init(
        methods: [String]?,
        paths: [PathPattern],
        pathLocations: [SourceLocation?]? = nil,
        anyTenant: Bool = false,
        key: String = "",
        location: SourceLocation? = nil
    ) {
        self.methods = methods
        self.paths = paths
        self.pathLocations = pathLocations ?? Array(repeating: nil, count: paths.count)
        self.anyTenant = anyTenant
        self.key = key
        self.location = location
    }
}

/// A role's `tenants: {allow: [...], block: [...]}` (CIPP profile; the tenant is `tenantFilter`).
///
/// - A tenant named by a request must be in `allow` (when `allow` is given; absent means every
///   tenant) and not in `block`. With a `TenantDirectory`, the request's tenant is resolved and
///   each entry may name it by id or by domain; a tenant it cannot resolve (`AllTenants`
///   included) is refused. Without one, names compare as written, ASCII case-insensitively, and
///   `block` is refused at load (it could be sidestepped with the other form).
/// - A request naming no tenant is allowed by a role with `tenants` only where the endpoint has
///   no tenant check: its catalogue operation says `x-cipp-any-tenant: true`, or the allow rule
///   that matched says `any_tenant: true`. Otherwise it needs a tenant.
/// - `block` narrows this role only; another role of the same client that allows the tenant
///   still does (privileges add up; only `deny` rules win across roles).
/// - A role without `tenants` places no condition on the tenant.
public struct TenantRules: Sendable, Hashable {
    /// nil: any tenant not blocked; empty: no tenant at all.
    public var allow: [String]?
    public var block: [String]

    public init(allow: [String]?, block: [String] = []) {
        self.allow = allow
        self.block = block
    }

    /// Whether this role may act for `tenant` (a tenant the request names), compared through
    /// `directory` when there is one: the request and the role may each write a tenant as its
    /// id or its domain, and a tenant the directory does not know is refused.
    public func permits(_ tenant: some StringProtocol, directory: TenantDirectory?) -> Bool {
        guard let directory else { return self.permits(tenant) }
        guard let resolved = directory.resolve(tenant) else { return false }
        if self.block.contains(where: { TenantDirectory.entry($0, names: resolved) }) { return false }
        guard let allow = self.allow else { return true }
        return allow.contains { TenantDirectory.entry($0, names: resolved) }
    }

    /// Whether this role may act for `tenant`, names compared as written (no directory).
    public func permits(_ tenant: some StringProtocol) -> Bool {
        if self.block.contains(where: { Self.same($0, tenant) }) { return false }
        guard let allow = self.allow else { return true }
        return allow.contains { Self.same($0, tenant) }
    }

    static func same(_ a: String, _ b: some StringProtocol) -> Bool {
        a.utf8.count == b.utf8.count && zip(a.utf8, b.utf8).allSatisfy { asciiLower($0) == asciiLower($1) }
    }
}

/// A role's `permissions: {include: [...], exclude: [...]}` over catalogue permission names.
///
/// `*` in a name matches any run of characters, dots included: `*.Read` selects
/// `Identity.User.Read` and not `Identity.User.ReadWrite`. Names match in any ASCII letter case,
/// as CIPP's own role definitions are matched (PowerShell's `-like`).
public struct PermissionSelection: Sendable, Hashable {
    public var include: [String]
    public var exclude: [String]
    /// The role's `permissions` key: where expanded rules point.
    public var location: SourceLocation?

    public init(include: [String], exclude: [String] = [], location: SourceLocation? = nil) {
        self.include = include
        self.exclude = exclude
        self.location = location
    }

    public func selects(_ permission: String) -> Bool {
        self.include.contains { Self.glob($0, matches: permission) }
            && !self.exclude.contains { Self.glob($0, matches: permission) }
    }

    /// `*` matches any run of bytes; everything else itself, in any ASCII letter case.
    public static func glob(_ pattern: String, matches name: String) -> Bool {
        let pattern = pattern.utf8.map(asciiLower)
        let name = name.utf8.map(asciiLower)
        var p = 0
        var n = 0
        var starP = -1
        var starN = 0
        while n < name.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                starP = p
                starN = n
                p += 1
            } else if p < pattern.count, pattern[p] == name[n] {
                p += 1
                n += 1
            } else if starP >= 0 {
                p = starP + 1
                starN += 1
                n = starN
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}

/// HTTP method names as rules write them.
enum HTTPMethodName {
    /// RFC 9110 token characters.
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty
            && text.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"):
                    return true
                default:
                    return "!#$%&'*+-.^_`|~".utf8.contains(byte)
                }
            }
    }

    /// The methods with a fixed bit in every matcher, in bit order.
    static let standard = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
}
