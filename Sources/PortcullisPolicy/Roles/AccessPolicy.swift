/// The compiled roles and clients of one configuration: decides whether a client may call a
/// method on a canonical path, and for the CIPP profile whether its roles cover the tenant.
///
/// Built once per load (`GatewayConfig.policy`), immutable, shared by every event loop. Client
/// indexes (`clientIndex(id:)`, the position in `GatewayConfig.clients`) and rule indexes belong
/// to the snapshot they came from: after a reload, resolve them again. On the request path:
///
/// ```swift
/// let decision = policy.decide(client: index, method: head.method.rawValue, path: canonicalPathBytes)
/// guard decision.isAllowed else { /* 403 insufficient_scope, reason decision.reason */ }
/// if cipp {
///     let tenant = policy.checkTenant(tenantFilter, client: index, decision: decision)
///     guard tenant.isAllowed else { /* 403 insufficient_scope, reason tenant.reason */ }
/// }
/// ```
public struct AccessPolicy: Sendable {
    /// Every compiled rule, in the order decisions prefer them: roles in file order, each
    /// role's `allow` rules (one per path), its expanded permissions, then its `deny` rules;
    /// the catalogue's no-tenant-check endpoints last. `AccessDecision.rule` indexes this.
    public let rules: [PolicyRule]
    /// Role names, in file order; the role indexes of `PolicyRule` and `roles(ofClient:)` use these.
    public let roleNames: [String]
    public let caseInsensitivePaths: Bool

    private let tenantRules: [TenantRules?]
    private let clientIndexes: [String: Int]
    /// The role indexes of every client, one after another; `clientRoleRanges[i]` picks client i's.
    private let clientRoles: [Int32]
    private let clientRoleRanges: [Range<Int>]
    private let matcher: RouteMatcher

    /// The most roles one client may hold: a decision carries them as bits.
    public static let maximumRolesPerClient = 64

    /// Compiles a validated configuration (the loader reports what this would trip over).
    ///
    /// Client role names that are not roles are ignored; roles with `permissions` expand against
    /// `catalog` (nothing without one). `permissionsCoverEveryMethod`: a permission grants its
    /// operations' paths whatever the method, because the backend runs the same handler for
    /// every method (CIPP), so the method is no boundary there.
    public init(
        roles: [RoleConfig],
        catalog: PermissionCatalog?,
        clients: [ClientConfig],
        caseInsensitivePaths: Bool,
        permissionsCoverEveryMethod: Bool = false
    ) {
        var rules: [PolicyRule] = []
        for (index, role) in roles.enumerated() {
            for rule in role.allow {
                for (number, pattern) in rule.paths.enumerated() {
                    rules.append(
                        PolicyRule(
                            role: index,
                            roleName: role.name,
                            kind: .allow,
                            methods: rule.methods,
                            pattern: pattern,
                            anyTenant: rule.anyTenant,
                            origin: .written,
                            key: rule.paths.count == 1 ? rule.key : "\(rule.key).paths[\(number)]",
                            location: rule.pathLocations.indices.contains(number) ? rule.pathLocations[number] : rule.location
                        )
                    )
                }
            }
            if let selection = role.permissions, let catalog {
                let prefix = "roles.\(role.name).permissions"
                for operation in catalog.operations {
                    guard let permission = operation.permission, selection.selects(permission) else { continue }
                    rules.append(
                        PolicyRule(
                            role: index,
                            roleName: role.name,
                            kind: .allow,
                            methods: permissionsCoverEveryMethod ? nil : operation.methods,
                            pattern: operation.pattern,
                            anyTenant: operation.anyTenant,
                            origin: .permission(permission, catalog: catalog.fileName, path: operation.path),
                            key: "\(prefix) \(permission)",
                            location: selection.location
                        )
                    )
                }
            }
            for rule in role.deny {
                for (number, pattern) in rule.paths.enumerated() {
                    rules.append(
                        PolicyRule(
                            role: index,
                            roleName: role.name,
                            kind: .deny,
                            methods: rule.methods,
                            pattern: pattern,
                            anyTenant: false,
                            origin: .written,
                            key: rule.paths.count == 1 ? rule.key : "\(rule.key).paths[\(number)]",
                            location: rule.pathLocations.indices.contains(number) ? rule.pathLocations[number] : rule.location
                        )
                    )
                }
            }
        }
        for operation in catalog?.operations ?? [] where operation.anyTenant {
            rules.append(
                PolicyRule(
                    role: -1,
                    roleName: nil,
                    kind: .noTenantCheck,
                    methods: operation.methods,
                    pattern: operation.pattern,
                    anyTenant: true,
                    origin: .catalogEndpoint(catalog: catalog?.fileName ?? "", path: operation.path),
                    key: "catalog",
                    location: nil
                )
            )
        }
        self.rules = rules
        self.roleNames = roles.map(\.name)
        self.caseInsensitivePaths = caseInsensitivePaths
        self.tenantRules = roles.map(\.tenants)

        var indexByName: [String: Int] = [:]
        for (index, role) in roles.enumerated() where indexByName[role.name] == nil { indexByName[role.name] = index }
        var clientRoles: [Int32] = []
        var ranges: [Range<Int>] = []
        var clientIndexes: [String: Int] = [:]
        for (index, client) in clients.enumerated() {
            let start = clientRoles.count
            for name in client.roles {
                guard let role = indexByName[name], !clientRoles[start...].contains(Int32(role)) else { continue }
                guard clientRoles.count - start < Self.maximumRolesPerClient else { break }
                clientRoles.append(Int32(role))
            }
            ranges.append(start..<clientRoles.count)
            if clientIndexes[client.id] == nil { clientIndexes[client.id] = index }
        }
        self.clientIndexes = clientIndexes
        self.clientRoles = clientRoles
        self.clientRoleRanges = ranges
        self.matcher = RouteMatcher(
            rules: rules.map {
                RouteMatcher.Rule(kind: $0.kind.matcherKind, role: $0.role, methods: $0.methods, pattern: $0.pattern, anyTenant: $0.anyTenant)
            },
            caseInsensitive: caseInsensitivePaths
        )
    }

    /// The index of the client with this id (as in `GatewayConfig.clients`); resolve once per
    /// verified token, not per request.
    public func clientIndex(id: String) -> Int? {
        self.clientIndexes[id]
    }

    /// The role indexes of a client (into `roleNames`), in the order its `roles` lists them.
    public func roles(ofClient client: Int) -> ArraySlice<Int32> {
        self.clientRoles[self.clientRoleRanges[client]]
    }

    /// Decides a request: `path` is the canonical path's UTF-8 bytes (no query). No allocation.
    ///
    /// A client index out of range is denied (no rule allows).
    public func decide(client: Int, method: String, path: UnsafeRawBufferPointer) -> AccessDecision {
        guard self.clientRoleRanges.indices.contains(client) else { return AccessDecision(outcome: .noAllowRule) }
        let range = self.clientRoleRanges[client]
        return self.clientRoles.withUnsafeBufferPointer { all in
            self.matcher.decide(roles: UnsafeBufferPointer(rebasing: all[range]), method: method, path: path)
        }
    }

    /// `decide` for a path given as `String`, `Substring` (e.g. `CanonicalTarget.path.utf8`) or bytes.
    public func decide<Path: Collection>(client: Int, method: String, path: Path) -> AccessDecision where Path.Element == UInt8 {
        withBytes(of: path) { self.decide(client: client, method: method, path: $0) }
    }

    public func decide(client: Int, method: String, path: Substring) -> AccessDecision {
        self.decide(client: client, method: method, path: path.utf8)
    }

    public func decide(client: Int, method: String, path: String) -> AccessDecision {
        self.decide(client: client, method: method, path: path.utf8)
    }

    /// Whether the roles that allowed `decision` cover `tenant` (CIPP `tenantFilter`; nil when
    /// the request names none). See `TenantRules` for the rules. A denied decision stays denied.
    public func checkTenant(_ tenant: String?, client: Int, decision: AccessDecision, directory: TenantDirectory? = nil) -> TenantVerdict {
        guard decision.isAllowed, self.clientRoleRanges.indices.contains(client) else { return .notAllowed }
        let roles = self.clientRoles[self.clientRoleRanges[client]]
        for (slot, role) in roles.enumerated() where decision.allowingRoles.contains(slot) {
            guard let rules = self.tenantRules[Int(role)] else { return .allowed }
            if let tenant {
                if rules.permits(tenant, directory: directory) { return .allowed }
            } else if decision.endpointHasNoTenantCheck || decision.noTenantCheckRoles.contains(slot) {
                return .allowed
            }
        }
        return tenant == nil ? .tenantRequired : .tenantNotAllowed
    }

    /// The names of the client's roles whose bits `slots` holds (for `explain` and logs).
    public func roleNames(ofClient client: Int, _ slots: RoleSlots) -> [String] {
        self.roles(ofClient: client).enumerated().filter { slots.contains($0.offset) }.map { self.roleNames[Int($0.element)] }
    }
}

/// The outcome of `AccessPolicy.decide`: a small value, built without allocating.
public struct AccessDecision: Hashable, Sendable {
    public enum Outcome: Hashable, Sendable {
        case allowed
        /// No allow rule of the client's roles matches: deny by default.
        case noAllowRule
        /// A deny rule of one of the client's roles matches (it wins over every allow).
        case denyRule
    }

    public let outcome: Outcome
    /// The deciding rule (an index into `AccessPolicy.rules`): the first matching allow rule, or
    /// the first matching deny rule; nil for `.noAllowRule`.
    public let rule: Int?
    /// Which of the client's roles (by position in its `roles` list) have an allow rule matching.
    public let allowingRoles: RoleSlots
    /// Those of `allowingRoles` whose matching rule says the path has no tenant check.
    public let noTenantCheckRoles: RoleSlots
    /// The catalogue marks this endpoint `x-cipp-any-tenant: true`.
    public let endpointHasNoTenantCheck: Bool

    public init(
        outcome: Outcome,
        rule: Int? = nil,
        allowingRoles: RoleSlots = RoleSlots(bits: 0),
        noTenantCheckRoles: RoleSlots = RoleSlots(bits: 0),
        endpointHasNoTenantCheck: Bool = false
    ) {
        self.outcome = outcome
        self.rule = rule
        self.allowingRoles = allowingRoles
        self.noTenantCheckRoles = noTenantCheckRoles
        self.endpointHasNoTenantCheck = endpointHasNoTenantCheck
    }

    public var isAllowed: Bool { self.outcome == .allowed }

    /// For the access log's `reason`: `allowed`, `role_denied` (no allow rule) or `deny_rule`.
    public var reason: StaticString {
        switch self.outcome {
        case .allowed: return "allowed"
        case .noAllowRule: return "role_denied"
        case .denyRule: return "deny_rule"
        }
    }
}

extension AccessDecision: CustomStringConvertible {
    public var description: String {
        let rule = self.rule.map { " rule \($0)" } ?? ""
        let tenant = self.endpointHasNoTenantCheck ? " no-tenant-check endpoint" : ""
        let roles = self.isAllowed ? " roles 0b\(String(self.allowingRoles.bits, radix: 2)) any-tenant 0b\(String(self.noTenantCheckRoles.bits, radix: 2))" : ""
        return "\(self.reason)\(rule)\(roles)\(tenant)"
    }
}

/// A set of positions in one client's `roles` list, as bits.
public struct RoleSlots: Hashable, Sendable {
    public let bits: UInt64

    public init(bits: UInt64) {
        self.bits = bits
    }

    public func contains(_ slot: Int) -> Bool {
        slot >= 0 && slot < 64 && self.bits & (1 << UInt64(slot)) != 0
    }

    public var isEmpty: Bool { self.bits == 0 }
}

/// The outcome of `AccessPolicy.checkTenant`.
public enum TenantVerdict: Hashable, Sendable {
    case allowed
    /// The request names no tenant, and the endpoint has a tenant check for every allowing role
    /// that limits tenants.
    case tenantRequired
    /// No allowing role covers the named tenant.
    case tenantNotAllowed
    /// The route decision was already a deny.
    case notAllowed

    public var isAllowed: Bool { self == .allowed }

    /// For the access log's `reason`.
    public var reason: StaticString {
        switch self {
        case .allowed: return "allowed"
        case .tenantRequired: return "tenant_required"
        case .tenantNotAllowed: return "tenant_denied"
        case .notAllowed: return "role_denied"
        }
    }
}

/// One compiled rule, described for `explain`, logs and tests.
public struct PolicyRule: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        case allow
        case deny
        /// A catalogue endpoint without a tenant check; not a privilege.
        case noTenantCheck

        var matcherKind: RouteMatcher.Rule.Kind {
            switch self {
            case .allow: return .allow
            case .deny: return .deny
            case .noTenantCheck: return .noTenantCheck
            }
        }
    }

    public enum Origin: Hashable, Sendable {
        /// Written in a role's `allow` or `deny`.
        case written
        /// Expanded from a role's `permissions`: the permission, the catalogue file and its path.
        case permission(String, catalog: String, path: String)
        /// A catalogue operation marked as having no tenant check.
        case catalogEndpoint(catalog: String, path: String)
    }

    /// The role's index in `AccessPolicy.roleNames`; -1 for `.noTenantCheck`.
    public let role: Int
    public let roleName: String?
    public let kind: Kind
    /// Upper-case methods; nil means any.
    public let methods: [String]?
    public let pattern: PathPattern
    public let anyTenant: Bool
    public let origin: Origin
    /// The config key, e.g. `roles.readonly.allow[0].paths[1]` or
    /// `roles.readonly.permissions Identity.User.Read`: stable text for the access log's `rule`.
    public let key: String
    /// Where it was written; for an expanded permission, the role's `permissions` key.
    public let location: SourceLocation?

    /// E.g. `role readonly, allow GET,HEAD /api/List* (roles.yaml:12:20 roles.readonly.allow[0])`
    /// or `role readonly, permission Identity.User.Read (catalog.json /api/ListUsers), from
    /// roles.yaml:9:5 roles.readonly.permissions`.
    public var description: String {
        let methods = self.methods?.joined(separator: ",") ?? "any method"
        let place = self.location.map { "\($0) " } ?? ""
        switch self.origin {
        case .written:
            let kind = self.kind == .deny ? "deny" : "allow"
            return "role \(self.roleName ?? "-"), \(kind) \(methods) \(self.pattern) (\(place)\(self.key))"
        case .permission(let permission, let catalog, let path):
            return "role \(self.roleName ?? "-"), permission \(permission) (\(catalog) \(path)), from \(place)roles.\(self.roleName ?? "-").permissions"
        case .catalogEndpoint(let catalog, let path):
            return "\(catalog) \(path): no tenant check"
        }
    }
}
