// Microbenchmarks of the two compiled matchers on the request path, each beside a naive linear
// scan over the same data:
//   (a) CIDRSet.contains against 10,000 mixed IPv4/IPv6 prefixes (target: 20 million/s, one core);
//   (b) AccessPolicy.decide against 1,000 role rules (CIPP profile: case-insensitive), for a
//       glob-heavy mix and for catalogue-style rules.
//
//   swift build -c release --scratch-path .build-bench --product PortcullisMicrobench
//   taskset -c 0 .build-bench/release/PortcullisMicrobench [--quick] [--only cidr|routes] [--by-kind] [--skip-naive]
//
// Data come from a fixed seed, so every run measures the same work; each result feeds a checksum
// that is printed, so the optimizer cannot drop the lookups.

import PortcullisPolicy

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        self.state &+= 0x9e37_79b9_7f4a_7c15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

let quick = CommandLine.arguments.contains("--quick")
/// `--only cidr` or `--only routes` runs one part (for profiling).
let only = CommandLine.arguments.firstIndex(of: "--only").flatMap { CommandLine.arguments.dropFirst($0 + 1).first }
/// `--skip-naive`: time only the compiled matchers (e.g. under callgrind).
let skipNaive = CommandLine.arguments.contains("--skip-naive")
var random = SplitMix64(state: 0x5EED_2026)

struct Row {
    var name: String
    var operationsPerSecond: Double
    var checksum: Int
    /// Shown against the table's last row (the naive scan over the same data).
    var comparable = true
}

/// Runs `body` (which performs `operations` lookups and returns a checksum) for `rounds` rounds
/// after one warm-up, and keeps the best rate: the least disturbed by the shared machine.
func measure(_ name: String, operations: Int, rounds: Int = 5, _ body: () -> Int) -> Row {
    let clock = ContinuousClock()
    var checksum = body()
    var best = Duration.seconds(1_000_000)
    for _ in 0..<rounds {
        let start = clock.now
        checksum &+= body()
        best = min(best, clock.now - start)
    }
    let seconds = Double(best.components.seconds) + Double(best.components.attoseconds) / 1e18
    return Row(name: name, operationsPerSecond: Double(operations) / seconds, checksum: checksum)
}

func printTable(_ title: String, _ rows: [Row]) {
    func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return left ? text + padding : padding + text
    }
    func format(_ value: Double, decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        var text = "\(rounded)"
        if let dot = text.firstIndex(of: ".") {
            let fraction = text[text.index(after: dot)...].count
            if fraction < decimals { text += String(repeating: "0", count: decimals - fraction) }
        }
        return text
    }
    print("\n\(title)")
    print(pad("benchmark", 52, left: true) + pad("lookups/s", 16) + pad("ns/lookup", 12) + pad("vs naive", 10))
    let naive = rows.last?.operationsPerSecond ?? 1
    for row in rows {
        let rate = row.operationsPerSecond >= 1e6
            ? format(row.operationsPerSecond / 1e6, decimals: 2) + " M"
            : format(row.operationsPerSecond / 1e3, decimals: 1) + " k"
        print(
            pad(row.name, 52, left: true) + pad(rate, 16) + pad(format(1e9 / row.operationsPerSecond, decimals: 1), 12)
                + pad(row.comparable ? format(row.operationsPerSecond / naive, decimals: 0) + "x" : "-", 10)
        )
    }
}

// MARK: - (a) CIDR lookups

func runCIDR() -> [Int] {
// Each part seeds afresh, so `--only` measures the same data as a full run.
random = SplitMix64(state: 0x5EED_2026)

func randomV4Prefix() -> CIDRPrefix {
    // /16 to /32, as allowlists hold them.
    let lengths = [16, 20, 22, 24, 24, 24, 24, 26, 27, 28, 29, 30, 32, 32, 32, 32]
    let length = lengths.randomElement(using: &random)!
    let mask: UInt32 = length == 0 ? 0 : UInt32.max << UInt32(32 - length)
    return CIDRPrefix(address: .v4(UInt32.random(in: 0...UInt32.max, using: &random) & mask), length: length)!
}

func randomV6Prefix() -> CIDRPrefix {
    let lengths = [19, 24, 29, 32, 32, 36, 40, 44, 48, 48, 48, 52, 56, 56, 60, 64, 64, 64, 80, 96, 112, 120, 128, 128]
    let length = lengths.randomElement(using: &random)!
    // Global unicast (2000::/3) like real allowlists.
    let high = (UInt64.random(in: 0...UInt64.max, using: &random) & 0x1fff_ffff_ffff_ffff) | 0x2000_0000_0000_0000
    let low = UInt64.random(in: 0...UInt64.max, using: &random)
    let maskHigh: UInt64 = length >= 64 ? .max : UInt64.max << UInt64(64 - length)
    let maskLow: UInt64 = length <= 64 ? 0 : UInt64.max << UInt64(128 - length)
    return CIDRPrefix(address: .v6(high & maskHigh, low & maskLow), length: length)!
}

/// An address inside `prefix`: its network plus random host bits.
func address(inside prefix: CIDRPrefix) -> IPAddress {
    switch prefix.address {
    case .v4(let network):
        let host: UInt32 = prefix.length == 32 ? 0 : UInt32.random(in: 0...UInt32.max, using: &random) & ~(UInt32.max << UInt32(32 - prefix.length))
        return .v4(network | host)
    case .v6(let high, let low):
        let hostHigh: UInt64 = prefix.length >= 64 ? 0 : UInt64.random(in: 0...UInt64.max, using: &random) & ~(UInt64.max << UInt64(64 - prefix.length))
        let hostLow: UInt64 = prefix.length >= 128 ? 0 : prefix.length <= 64 ? UInt64.random(in: 0...UInt64.max, using: &random)
            : UInt64.random(in: 0...UInt64.max, using: &random) & ~(UInt64.max << UInt64(128 - prefix.length))
        return .v6(high | hostHigh, low | hostLow)
    }
}

var prefixes: [CIDRPrefix] = []
for index in 0..<10_000 { prefixes.append(index % 2 == 0 ? randomV4Prefix() : randomV6Prefix()) }
let cidrSet = CIDRSet(prefixes)

let cidrQueryCount = quick ? 1 << 18 : 1 << 21
var cidrQueries: [IPAddress] = []
cidrQueries.reserveCapacity(cidrQueryCount)
for _ in 0..<cidrQueryCount {
    let roll = Int.random(in: 0..<100, using: &random)
    switch roll {
    case 0..<40:  // a hit
        cidrQueries.append(address(inside: prefixes.randomElement(using: &random)!))
    case 40..<65:  // a random IPv4 address, mostly a miss
        cidrQueries.append(.v4(UInt32.random(in: 0...UInt32.max, using: &random)))
    case 65..<70:  // an IPv4-mapped IPv6 peer, as dual-stack sockets report IPv4 clients
        cidrQueries.append(.v6(0, 0xffff_0000_0000 | UInt64(UInt32.random(in: 0...UInt32.max, using: &random))))
    default:  // a random global IPv6 address, mostly a miss
        cidrQueries.append(address(inside: CIDRPrefix(address: .v6(0x2000_0000_0000_0000, 0), length: 3)!))
    }
}

func naiveContains(_ address: IPAddress) -> Bool {
    for prefix in prefixes where prefix.contains(address) { return true }
    return false
}

// Both must agree before either is timed.
for address in cidrQueries.prefix(skipNaive ? 0 : 20_000) where cidrSet.contains(address) != naiveContains(address) {
    fatalError("CIDRSet and the linear scan disagree on \(address)")
}
let hitRate = Double(cidrQueries.prefix(100_000).filter(cidrSet.contains).count) / 1e3

let cidrCompiled = measure("CIDRSet.contains, 10,000 prefixes (5,000 v4 + 5,000 v6)", operations: cidrQueries.count) {
    var hits = 0
    for address in cidrQueries where cidrSet.contains(address) { hits += 1 }
    return hits
}
// The allowlist size of the HAProxy comparison in Benchmarks/.
let smallSet = CIDRSet(prefixes.prefix(50))
var cidrSmall = measure("CIDRSet.contains, 50 prefixes (same queries)", operations: cidrQueries.count) {
    var hits = 0
    for address in cidrQueries where smallSet.contains(address) { hits += 1 }
    return hits
}
cidrSmall.comparable = false
let naiveCIDRQueries = Array(cidrQueries.prefix(skipNaive ? 1 : quick ? 2_000 : 10_000))
let cidrNaive = measure("naive linear scan over the 10,000 prefixes", operations: naiveCIDRQueries.count, rounds: 3) {
    var hits = 0
    for address in naiveCIDRQueries where naiveContains(address) { hits += 1 }
    return hits
}
printTable("(a) CIDR lookups, \(cidrQueries.count) queries, \(hitRate)% hits", [cidrCompiled, cidrSmall, cidrNaive])
return [cidrCompiled.checksum, cidrSmall.checksum, cidrNaive.checksum]
}

// MARK: - (b) Route decisions

/// `mixed`: 70% exact endpoints, 17% in-segment globs (`Exec*`, `Get*Use*`), 9% `*` segments,
/// 4% `**`. `catalogue`: as roles expanded from a permission catalogue look, exact endpoints
/// and a few `List*` / `Get*`.
enum RuleMix: String {
    case mixed
    case catalogue
}

func runRoutes(_ mix: RuleMix) -> [Int] {
random = SplitMix64(state: mix == .mixed ? 0x5EED_0B01 : 0x5EED_0B02)

let verbs = ["List", "Get", "Exec", "Add", "Edit", "Remove", "Set", "Update"]
let nouns = [
    "Users", "Groups", "Mailboxes", "Devices", "Licenses", "Domains", "Contacts", "Sites", "Teams", "Policies",
    "Standards", "Alerts", "AuditLogs", "SignIns", "Tenants", "Apps", "Roles", "Contracts", "Calendars", "Rules",
    "Permissions", "Shares", "Transports", "Connectors", "Backups", "Tokens", "Reports", "Templates", "Scripts",
    "Mfa", "Passwords", "Sessions", "Quarantine", "Spam", "Phish", "Labels", "Retention", "Holds", "Vaults",
    "Keys", "Certificates", "Secrets", "Webhooks", "Queues", "Schedules", "Tasks", "Notes", "Logs", "Meters",
    "Invoices", "Subscriptions", "Partners", "Relationships", "Consents", "Grants", "Locations", "Zones",
    "Printers", "Rooms", "Resources",
]
var endpoints: [String] = []
for verb in verbs { for noun in nouns { endpoints.append("/api/\(verb)\(noun)") } }  // 480 CIPP-style names
let methodNames = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

/// 1,000 rules in 25 roles of 40: mostly exact endpoints (as catalogue roles expand to), some
/// in-segment globs, multi-segment paths with `*`, a few `**`; one in ten a deny.
var roleConfigs: [RoleConfig] = []
var ruleCount = 0
for roleIndex in 0..<25 {
    var allow: [RouteRule] = []
    var deny: [RouteRule] = []
    for _ in 0..<40 {
        let roll = mix == .catalogue ? (Int.random(in: 0..<100, using: &random) < 97 ? 0 : 70) : Int.random(in: 0..<100, using: &random)
        let text: String
        switch roll {
        case 0..<70: text = endpoints.randomElement(using: &random)!
        case 70..<82: text = "/api/\((mix == .catalogue ? ["List", "Get"] : verbs).randomElement(using: &random)!)*"
        case 82..<87: text = "/api/\(verbs.randomElement(using: &random)!)*\(nouns.randomElement(using: &random)!.prefix(3))*"
        case 87..<96: text = "/v1/tenants/*/\(nouns.randomElement(using: &random)!.lowercased())/*"
        default: text = "/v1/\(nouns.randomElement(using: &random)!.lowercased())/**"
        }
        let methods: [String]? = Int.random(in: 0..<4, using: &random) == 0
            ? nil : Array(methodNames.shuffled(using: &random).prefix(Int.random(in: 1...2, using: &random)))
        let rule = RouteRule(methods: methods, paths: [PathPattern(text)!], key: "roles.r\(roleIndex).rule\(ruleCount)")
        if Int.random(in: 0..<10, using: &random) == 0 { deny.append(rule) } else { allow.append(rule) }
        ruleCount += 1
    }
    roleConfigs.append(RoleConfig(name: "r\(roleIndex)", allow: allow, deny: deny))
}
var clientConfigs: [ClientConfig] = []
for index in 0..<100 {
    let roles = (0..<Int.random(in: 1...3, using: &random)).map { _ in "r\(Int.random(in: 0..<25, using: &random))" }
    clientConfigs.append(ClientConfig(id: "client-\(index)", name: "c\(index)", issuer: "local", roles: roles))
}
let policy = AccessPolicy(roles: roleConfigs, catalog: nil, clients: clientConfigs, caseInsensitivePaths: true)
precondition(policy.rules.count == 1_000)

/// Requests: the paths as one byte arena plus offsets, so a decision gets a pointer and a length.
struct Request {
    var client: Int
    var method: String
    var offset: Int
    var length: Int
    var kind: Int
}
let kindNames = ["exact endpoint", "endpoint, lower case", "/v1/tenants/*/x/*", "/v1/x/** (4 segments)", "unknown endpoint"]
let routeQueryCount = quick ? 1 << 16 : 1 << 19
var arena: [UInt8] = []
var requests: [Request] = []
for _ in 0..<routeQueryCount {
    let roll = Int.random(in: 0..<100, using: &random)
    var path: String
    let kind: Int
    switch roll {
    case 0..<60:
        path = endpoints.randomElement(using: &random)!
        kind = 0
    case 60..<70:
        path = endpoints.randomElement(using: &random)!.lowercased()
        kind = 1
    case 70..<85:
        let tenant = "\(UInt32.random(in: 0...UInt32.max, using: &random))"
        path = "/v1/tenants/\(tenant)/\(nouns.randomElement(using: &random)!.lowercased())/\(Int.random(in: 1...9999, using: &random))"
        kind = 2
    case 85..<92:
        path = "/v1/\(nouns.randomElement(using: &random)!.lowercased())/a/b/\(Int.random(in: 1...99, using: &random))"
        kind = 3
    default:
        path = "/api/Unknown\(Int.random(in: 0...99_999, using: &random))"
        kind = 4
    }
    let bytes = Array(path.utf8)
    requests.append(
        Request(
            client: Int.random(in: 0..<100, using: &random),
            method: Int.random(in: 0..<3, using: &random) == 0 ? "POST" : "GET",
            offset: arena.count,
            length: bytes.count,
            kind: kind
        )
    )
    arena.append(contentsOf: bytes)
}

/// The naive way: every rule of the client's roles in turn, each pattern matched segment by
/// segment on the same bytes (no trie, no hashing), deny wins.
struct NaiveRule {
    var role: Int32
    var isDeny: Bool
    var methods: [String]?
    var segments: [PathPattern.Segment]
}
let naiveRules = policy.rules.map {
    NaiveRule(role: Int32($0.role), isDeny: $0.kind == .deny, methods: $0.methods, segments: $0.pattern.segments)
}

func lower(_ byte: UInt8) -> UInt8 { byte >= 65 && byte <= 90 ? byte | 0x20 : byte }

func naiveGlob(_ glob: [UInt8], _ g: Int, _ path: UnsafeRawBufferPointer, _ t: Int, _ end: Int) -> Bool {
    if g == glob.count { return t == end }
    if glob[g] == UInt8(ascii: "*") {
        var k = t
        while k <= end {
            if naiveGlob(glob, g + 1, path, k, end) { return true }
            k += 1
        }
        return false
    }
    return t < end && lower(path[t]) == lower(glob[g]) && naiveGlob(glob, g + 1, path, t + 1, end)
}

/// Pattern segments from `s`, path from byte `p` (just after a `/`, or `end` when consumed).
func naiveMatch(_ segments: [PathPattern.Segment], _ s: Int, _ path: UnsafeRawBufferPointer, _ p: Int, _ end: Int) -> Bool {
    if s == segments.count { return p >= end }
    if case .doubleStar = segments[s] {
        var next = p
        while true {
            if naiveMatch(segments, s + 1, path, next, end) { return true }
            if next >= end { return false }
            while next < end, path[next] != UInt8(ascii: "/") { next += 1 }
            next += 1
        }
    }
    guard p < end else { return false }
    var segmentEnd = p
    while segmentEnd < end, path[segmentEnd] != UInt8(ascii: "/") { segmentEnd += 1 }
    let matched: Bool
    switch segments[s] {
    case .star, .doubleStar:
        matched = segmentEnd > p
    case .literal(let bytes):
        matched = bytes.count == segmentEnd - p && (0..<bytes.count).allSatisfy { lower(bytes[$0]) == lower(path[p + $0]) }
    case .glob(let bytes):
        matched = naiveGlob(bytes, 0, path, p, segmentEnd)
    }
    return matched && naiveMatch(segments, s + 1, path, segmentEnd + 1, end)
}

func naiveDecide(client: Int, method: String, path: UnsafeRawBufferPointer) -> (allowed: Bool, rule: Int?) {
    let roles = policy.roles(ofClient: client)
    var end = path.count
    if end > 1, path[end - 1] == UInt8(ascii: "/") { end -= 1 }
    var firstAllow: Int?
    for (index, rule) in naiveRules.enumerated() where roles.contains(rule.role) {
        guard rule.methods?.contains(method) ?? true, naiveMatch(rule.segments, 0, path, 1, end) else { continue }
        if rule.isDeny { return (false, index) }
        if firstAllow == nil { firstAllow = index }
    }
    return (firstAllow != nil, firstAllow)
}

var allowedCount = 0
arena.withUnsafeBytes { bytes in
    for request in requests.prefix(skipNaive ? 0 : 50_000) {
        let path = UnsafeRawBufferPointer(rebasing: bytes[request.offset..<request.offset + request.length])
        let compiled = policy.decide(client: request.client, method: request.method, path: path)
        let naive = naiveDecide(client: request.client, method: request.method, path: path)
        if compiled.isAllowed { allowedCount += 1 }
        guard compiled.isAllowed == naive.allowed, compiled.rule == naive.rule else {
            fatalError("RouteMatcher and the linear scan disagree on \(String(decoding: path, as: UTF8.self)): \(compiled) vs \(naive)")
        }
    }
}
let allowRate = Double(allowedCount) / (skipNaive ? 1 : 500)

let routeCompiled = arena.withUnsafeBytes { bytes in
    measure("AccessPolicy.decide (trie), 1,000 rules in 25 roles", operations: requests.count) {
        var sum = 0
        for request in requests {
            let path = UnsafeRawBufferPointer(rebasing: bytes[request.offset..<request.offset + request.length])
            let decision = policy.decide(client: request.client, method: request.method, path: path)
            sum &+= decision.rule ?? -1
        }
        return sum
    }
}
let naiveRequests = Array(requests.prefix(skipNaive ? 1 : quick ? 5_000 : 50_000))
let routeNaive = arena.withUnsafeBytes { bytes in
    measure("naive linear scan over the client's rules", operations: naiveRequests.count, rounds: 3) {
        var sum = 0
        for request in naiveRequests {
            let path = UnsafeRawBufferPointer(rebasing: bytes[request.offset..<request.offset + request.length])
            sum &+= naiveDecide(client: request.client, method: request.method, path: path).rule ?? -1
        }
        return sum
    }
}
printTable("(b) route decisions, \(mix) rules, \(requests.count) requests, \(allowRate)% allowed, CIPP profile", [routeCompiled, routeNaive])
if CommandLine.arguments.contains("--by-kind") {
    var rows: [Row] = []
    for (kind, name) in kindNames.enumerated() {
        let subset = requests.filter { $0.kind == kind }
        rows.append(
            arena.withUnsafeBytes { bytes in
                measure("  decide: \(name)", operations: subset.count) {
                    var sum = 0
                    for request in subset {
                        let path = UnsafeRawBufferPointer(rebasing: bytes[request.offset..<request.offset + request.length])
                        sum &+= policy.decide(client: request.client, method: request.method, path: path).rule ?? -1
                    }
                    return sum
                }
            }
        )
    }
    printTable("(b') route decisions by kind of request, \(mix) rules", rows + [routeNaive])
}

return [routeCompiled.checksum, routeNaive.checksum]
}

var checksums: [Int] = []
if only != "routes" { checksums += runCIDR() }
if only != "cidr" {
    checksums += runRoutes(.mixed)
    checksums += runRoutes(.catalogue)
}
print("\nchecksums: \(checksums)")
