/// Every allow and deny rule of every role, compiled once per load into a segment trie that
/// decides a request without allocating or creating strings.
///
/// The trie has one node per distinct pattern prefix. A node's children are: literal segments
/// (one open-addressing hash table for the whole trie, keyed by parent node and segment bytes,
/// ASCII-folded when paths are case-insensitive), globs such as `List*` (sorted by first byte,
/// each first compared on its literal prefix as one 8-byte word), one `*` child and one `**`
/// child. Each node lists the rules whose pattern ends there. A request
/// walks the trie over the segments of its canonical path, following every child that matches;
/// a `**` node tries each number of segments, and remembers which (node, segment) pairs it has
/// tried so that patterns with several `**` stay linear in the path length. Each rule reached at
/// the path's end whose methods include the request's method and whose role is the client's
/// counts; the decision keeps the first allow rule and the first deny rule (in rule order).
///
/// Methods are a bitmask: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, the other methods some
/// rule names, and one bit for every method no rule names (matched only by rules without
/// `methods`). Request methods compare case-sensitively, as HTTP defines them.
public struct RouteMatcher: Sendable {
    /// One compiled rule: a pattern, its methods, and what it means when it matches.
    public struct Rule: Sendable, Hashable {
        public enum Kind: UInt8, Sendable {
            case allow
            case deny
            /// Not a privilege: marks an endpoint without a tenant check (catalogue
            /// `x-cipp-any-tenant: true`), whoever's role reaches it.
            case noTenantCheck
        }

        public var kind: Kind
        /// The role's index; the client's role list holds these. Unused for `.noTenantCheck`.
        public var role: Int
        /// Upper-case method names; nil means any method.
        public var methods: [String]?
        public var pattern: PathPattern
        /// An allow rule whose paths have no tenant check (`any_tenant: true`, or from the catalogue).
        public var anyTenant: Bool

        public init(kind: Kind, role: Int, methods: [String]?, pattern: PathPattern, anyTenant: Bool = false) {
            self.kind = kind
            self.role = role
            self.methods = methods
            self.pattern = pattern
            self.anyTenant = anyTenant
        }
    }

    /// Methods beyond the seven standard ones that one matcher can tell apart.
    public static let maximumExtensionMethods = 56

    public let rules: [Rule]
    public let caseInsensitive: Bool
    private let table: RouteTable

    /// Compiles `rules`; `caseInsensitive` folds ASCII letters in literal and glob segments (CIPP).
    ///
    /// At most `maximumExtensionMethods` distinct non-standard method names (the loader checks).
    public init(rules: [Rule], caseInsensitive: Bool) {
        self.rules = rules
        self.caseInsensitive = caseInsensitive
        self.table = RouteTable(rules: rules, fold: caseInsensitive)
    }

    /// Decides a request for a client holding `roles` (role indexes, at most 64).
    ///
    /// `path` is the canonical path's bytes (starting with `/`, no query); one trailing `/` is
    /// ignored, and a path that is not canonical in shape (not starting with `/`, or with an
    /// empty segment) is denied. No allocation: the scratch space (4 bytes per path byte pair,
    /// plus one bit per `**` node and segment) is taken with `withUnsafeTemporaryAllocation`,
    /// on the stack except for paths of many hundreds of segments.
    public func decide(roles: UnsafeBufferPointer<Int32>, method: String, path: UnsafeRawBufferPointer) -> AccessDecision {
        var method = method
        let bit = method.withUTF8 { self.table.methodBit(UnsafeRawBufferPointer($0)) }
        return self.table.decide(roles: roles, methodBit: bit, path: path)
    }

    /// `decide` for a path given as a `String`, `Substring` or byte collection (copied only when
    /// its storage is not contiguous).
    public func decide<Path: Collection>(roles: [Int32], method: String, path: Path) -> AccessDecision
    where Path.Element == UInt8 {
        roles.withUnsafeBufferPointer { roles in
            withBytes(of: path) { self.decide(roles: roles, method: method, path: $0) }
        }
    }
}

@inline(__always)
func withBytes<Bytes: Collection, Result>(of bytes: Bytes, _ body: (UnsafeRawBufferPointer) -> Result) -> Result
where Bytes.Element == UInt8 {
    if let result = bytes.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) {
        return result
    }
    return Array(bytes).withUnsafeBytes(body)
}

/// The trie in flat, immutable buffers: read with raw pointers on the hot path.
final class RouteTable: @unchecked Sendable {
    struct Node {
        /// Bit `role % 64` for every role of the node's rules (all bits for `.noTenantCheck`
        /// markers) and the union of their methods: a client none of whose roles, or a method
        /// none of whose rules, has a bit here skips the list.
        var terminalRoles: UInt64 = 0
        var terminalMethods: UInt64 = 0
        var terminalStart: Int32 = 0
        var terminalEnd: Int32 = 0
        /// Globs starting with `*` are `globStart..<globsByByte`; the others follow, sorted by
        /// their first byte, up to `globEnd`.
        var globStart: Int32 = 0
        var globsByByte: Int32 = 0
        var globEnd: Int32 = 0
        var star: Int32 = -1
        var doubleStar: Int32 = -1
        /// For a `**` node, its number among them (for the tried-pairs bitmap); else -1.
        var doubleStarOrdinal: Int32 = -1
        var hasLiterals = false
    }

    struct LiteralSlot {
        var key: UInt64 = 0
        var parent: Int32 = -1
        var child: Int32 = -1
        var offset: Int32 = 0
        var length: Int32 = 0
    }

    struct GlobEdge {
        /// Up to the first 8 bytes before the first `*` (folded), first byte lowest, and the
        /// mask of those bytes: a segment whose first bytes differ is skipped with one comparison.
        var prefix: UInt64
        var prefixMask: UInt64
        /// The glob is its prefix and one final `*`: the prefix comparison decides.
        var prefixDecides: Bool
        /// Bytes the prefix comparison has already matched (at most 8).
        var checkedLength: Int32
        /// Bytes before the first `*` and after the last one.
        var prefixLength: Int32
        var suffixLength: Int32
        var offset: Int32
        var length: Int32
        /// Bytes other than `*`: no shorter segment can match.
        var minimumLength: Int32
        var child: Int32
        /// The bytes and byte pairs of the pieces after the prefix, as `SegmentGrams` bits: a
        /// segment lacking one cannot match, which most segments show without a search.
        var neededBytes: UInt64
        var neededPairs: UInt64
    }

    struct RuleEntry {
        var methods: UInt64
        var role: Int32
        var kind: RouteMatcher.Rule.Kind
        var anyTenant: Bool
    }

    let nodes: UnsafeMutableBufferPointer<Node>
    let terminals: UnsafeMutableBufferPointer<Int32>
    let globs: UnsafeMutableBufferPointer<GlobEdge>
    /// Each glob's first byte (folded), 0 for one starting with `*`: the binary search reads these.
    let globFirstBytes: UnsafeMutableBufferPointer<UInt8>
    let slots: UnsafeMutableBufferPointer<LiteralSlot>
    let slotShift: UInt64
    /// Literal and glob bytes, with 8 zero bytes after the last so that any 8-byte read starting
    /// inside it stays inside.
    let bytes: UnsafeMutableBufferPointer<UInt8>
    let ruleEntries: UnsafeMutableBufferPointer<RuleEntry>
    let doubleStarCount: Int
    let fold: Bool
    let extensionMethods: [[UInt8]]

    init(rules: [RouteMatcher.Rule], fold: Bool) {
        self.fold = fold

        var extensionMethods: [[UInt8]] = []
        func bit(of name: String) -> UInt64 {
            if let index = HTTPMethodName.standard.firstIndex(of: name) { return 1 << UInt64(index) }
            let bytes = Array(name.utf8)
            if let index = extensionMethods.firstIndex(of: bytes) { return 1 << UInt64(7 + index) }
            precondition(
                extensionMethods.count < RouteMatcher.maximumExtensionMethods,
                "more than \(RouteMatcher.maximumExtensionMethods) distinct extension methods"
            )
            extensionMethods.append(bytes)
            return 1 << UInt64(7 + extensionMethods.count - 1)
        }
        var entries: [RuleEntry] = []
        entries.reserveCapacity(rules.count)
        for rule in rules {
            let methods = rule.methods.map { $0.reduce(UInt64(0)) { $0 | bit(of: $1) } } ?? UInt64.max
            entries.append(RuleEntry(methods: methods, role: Int32(rule.role), kind: rule.kind, anyTenant: rule.anyTenant))
        }
        self.extensionMethods = extensionMethods

        // Build with dictionaries, then flatten.
        struct BuildNode {
            var literals: [[UInt8]: Int] = [:]
            var globs: [[UInt8]: Int] = [:]
            var star = -1
            var doubleStar = -1
            var isDoubleStar = false
            var terminals: [Int32] = []
        }
        var built = [BuildNode()]
        func child(_ parent: Int, _ segment: PathPattern.Segment) -> Int {
            func fresh(doubleStar: Bool = false) -> Int {
                var node = BuildNode()
                node.isDoubleStar = doubleStar
                built.append(node)
                return built.count - 1
            }
            switch segment {
            case .literal(let bytes):
                let key = fold ? bytes.map(asciiLower) : bytes
                if let existing = built[parent].literals[key] { return existing }
                let node = fresh()
                built[parent].literals[key] = node
                return node
            case .glob(let bytes):
                let key = fold ? bytes.map(asciiLower) : bytes
                if let existing = built[parent].globs[key] { return existing }
                let node = fresh()
                built[parent].globs[key] = node
                return node
            case .star:
                if built[parent].star >= 0 { return built[parent].star }
                let node = fresh()
                built[parent].star = node
                return node
            case .doubleStar:
                if built[parent].doubleStar >= 0 { return built[parent].doubleStar }
                let node = fresh(doubleStar: true)
                built[parent].doubleStar = node
                return node
            }
        }
        for (index, rule) in rules.enumerated() {
            var node = 0
            for segment in rule.pattern.segments { node = child(node, segment) }
            built[node].terminals.append(Int32(index))
        }

        let star = UInt8(ascii: "*")
        var nodes: [Node] = []
        var terminals: [Int32] = []
        var globs: [GlobEdge] = []
        var globFirstBytes: [UInt8] = []
        var arena: [UInt8] = []
        var literalEdges: [(parent: Int32, offset: Int32, length: Int32, child: Int32, key: UInt64)] = []
        var doubleStarCount = 0
        for (index, node) in built.enumerated() {
            var flat = Node()
            flat.terminalStart = Int32(terminals.count)
            terminals.append(contentsOf: node.terminals)
            for number in node.terminals {
                let entry = entries[Int(number)]
                flat.terminalMethods |= entry.methods
                flat.terminalRoles |= entry.kind == .noTenantCheck ? .max : 1 << UInt64(entry.role & 63)
            }
            flat.terminalEnd = Int32(terminals.count)

            flat.globStart = Int32(globs.count)
            flat.globsByByte = flat.globStart + Int32(node.globs.keys.filter { $0.first == star }.count)
            // Star-first globs sort first (as byte 0), the others by their bytes.
            func order(_ bytes: [UInt8]) -> [UInt8] { bytes.first == star ? [0] + bytes : bytes }
            for (bytes, child) in node.globs.sorted(by: { order($0.key).lexicographicallyPrecedes(order($1.key)) }) {
                let prefixLength = bytes.prefix { $0 != star }.count
                let checked = min(8, prefixLength)
                let prefix = bytes.withUnsafeBytes { wordAt($0.baseAddress!, checked, $0.baseAddress!, $0.baseAddress! + $0.count) }
                var needed = SegmentGrams()
                for piece in bytes.dropFirst(prefixLength).split(separator: star) { needed.add(piece) }
                globs.append(
                    GlobEdge(
                        prefix: prefix,
                        prefixMask: byteMask(checked),
                        prefixDecides: prefixLength <= 8 && prefixLength == bytes.count - 1,
                        checkedLength: Int32(checked),
                        prefixLength: Int32(prefixLength),
                        suffixLength: Int32(bytes.reversed().prefix { $0 != star }.count),
                        offset: Int32(arena.count),
                        length: Int32(bytes.count),
                        minimumLength: Int32(bytes.filter { $0 != star }.count),
                        child: Int32(child),
                        neededBytes: needed.bytes,
                        neededPairs: needed.pairs
                    )
                )
                globFirstBytes.append(prefixLength == 0 ? 0 : bytes[0])
                arena.append(contentsOf: bytes)
            }
            flat.globEnd = Int32(globs.count)
            flat.star = Int32(node.star)
            flat.doubleStar = Int32(node.doubleStar)
            if node.isDoubleStar {
                flat.doubleStarOrdinal = Int32(doubleStarCount)
                doubleStarCount += 1
            }
            flat.hasLiterals = !node.literals.isEmpty
            for (bytes, child) in node.literals {
                let key = bytes.withUnsafeBytes { buffer in
                    RouteTable.key(
                        parent: Int32(index),
                        segmentHash(buffer.baseAddress!, buffer.count, buffer.baseAddress!, buffer.baseAddress! + buffer.count, fold: false)
                    )
                }
                literalEdges.append((Int32(index), Int32(arena.count), Int32(bytes.count), Int32(child), key))
                arena.append(contentsOf: bytes)
            }
            nodes.append(flat)
        }
        arena.append(contentsOf: repeatElement(0, count: 8))

        var capacity = 8
        while capacity < literalEdges.count * 2 { capacity *= 2 }
        var slots = [LiteralSlot](repeating: LiteralSlot(), count: capacity)
        let shift = UInt64(64 - capacity.trailingZeroBitCount)
        for edge in literalEdges {
            var index = Int(edge.key >> shift)
            while slots[index].child >= 0 { index = (index + 1) & (capacity - 1) }
            slots[index] = LiteralSlot(key: edge.key, parent: edge.parent, child: edge.child, offset: edge.offset, length: edge.length)
        }

        self.nodes = Self.copy(nodes)
        self.terminals = Self.copy(terminals)
        self.globs = Self.copy(globs)
        self.globFirstBytes = Self.copy(globFirstBytes)
        self.slots = Self.copy(slots)
        self.slotShift = shift
        self.bytes = Self.copy(arena)
        self.ruleEntries = Self.copy(entries)
        self.doubleStarCount = doubleStarCount
    }

    deinit {
        self.nodes.deallocate()
        self.terminals.deallocate()
        self.globs.deallocate()
        self.globFirstBytes.deallocate()
        self.slots.deallocate()
        self.bytes.deallocate()
        self.ruleEntries.deallocate()
    }

    private static func copy<Element>(_ array: [Element]) -> UnsafeMutableBufferPointer<Element> {
        let buffer = UnsafeMutableBufferPointer<Element>.allocate(capacity: max(1, array.count))
        _ = buffer.initialize(from: array)
        return UnsafeMutableBufferPointer(rebasing: buffer[..<array.count])
    }

    /// Mixes the parent node into a segment's hash: the table's key.
    @inline(__always)
    static func key(parent: Int32, _ hash: UInt64) -> UInt64 {
        var key = hash ^ (UInt64(UInt32(bitPattern: parent)) &* 0x9e37_79b9_7f4a_7c15)
        key ^= key >> 29
        return key &* 0xbf58_476d_1ce4_e5b9
    }

    // MARK: Methods

    @inline(__always)
    func methodBit(_ name: UnsafeRawBufferPointer) -> UInt64 {
        @inline(__always) func equals(_ text: StaticString) -> Bool {
            memcmpEqual(name.baseAddress!, UnsafeRawPointer(text.utf8Start), text.utf8CodeUnitCount)
        }
        switch name.count {
        case 3:
            if equals("GET") { return 1 << 0 }
            if equals("PUT") { return 1 << 3 }
        case 4:
            if equals("HEAD") { return 1 << 1 }
            if equals("POST") { return 1 << 2 }
        case 5:
            if equals("PATCH") { return 1 << 4 }
        case 6:
            if equals("DELETE") { return 1 << 5 }
        case 7:
            if equals("OPTIONS") { return 1 << 6 }
        default:
            break
        }
        for (index, known) in self.extensionMethods.enumerated() where known.count == name.count {
            if known.withUnsafeBytes({ memcmpEqual(name.baseAddress!, $0.baseAddress!, name.count) }) {
                return 1 << UInt64(7 + index)
            }
        }
        return 1 << 63
    }

    // MARK: Deciding

    func decide(roles: UnsafeBufferPointer<Int32>, methodBit: UInt64, path: UnsafeRawBufferPointer) -> AccessDecision {
        guard let base = path.baseAddress, path.count > 0, path[0] == UInt8(ascii: "/") else {
            return AccessDecision(outcome: .noAllowRule)
        }
        var end = path.count
        if end > 1, path[end - 1] == UInt8(ascii: "/") {
            end -= 1
            if path[end - 1] == UInt8(ascii: "/") { return AccessDecision(outcome: .noAllowRule) }
        }
        // Segments are never empty in a canonical path (a path with one is refused here), so
        // there are at most end / 2 of them.
        return withUnsafeTemporaryAllocation(of: Int32.self, capacity: end / 2 + 2) { starts in
            var count = 0
            if end > 1 {
                starts[0] = 1
                // Eight bytes at a time: the bits of `slashes` mark the bytes equal to `/`.
                let ones: UInt64 = 0x0101_0101_0101_0101
                var index = 1
                while index < end {
                    let word = wordAt(base + index, min(8, end &- index), base, base + path.count) ^ (ones &* 0x2f)
                    var slashes = ~(((word & (ones &* 0x7f)) &+ ones &* 0x7f) | word | ones &* 0x7f)
                    while slashes != 0 {
                        let at = index &+ slashes.trailingZeroBitCount >> 3
                        if at == Int(starts[count]) { return AccessDecision(outcome: .noAllowRule) }
                        count &+= 1
                        starts[count] = Int32(truncatingIfNeeded: at &+ 1)
                        slashes &= slashes &- 1
                    }
                    index &+= 8
                }
                count &+= 1
            }
            starts[count] = Int32(truncatingIfNeeded: end &+ 1)
            let memoWords = self.doubleStarCount == 0 ? 0 : (self.doubleStarCount * (count + 1) + 63) / 64
            return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: memoWords) { memo in
                if memoWords > 0 { memo.initialize(repeating: 0) }
                let walk = Walk(
                    table: self,
                    path: base,
                    pathEnd: base + path.count,
                    starts: starts.baseAddress!,
                    count: count,
                    memo: memo.baseAddress,
                    methodBit: methodBit,
                    roles: roles
                )
                var found = Found()
                walk.explore(0, 0, &found)
                return found.decision
            }
        }
    }

    /// What a walk has found so far.
    private struct Found {
        var firstAllow = Int32.max
        var firstDeny = Int32.max
        var allowing: UInt64 = 0
        var anyTenantRoles: UInt64 = 0
        var noTenantCheckEndpoint = false

        var decision: AccessDecision {
            if self.firstDeny != .max {
                return AccessDecision(outcome: .denyRule, rule: Int(self.firstDeny), endpointHasNoTenantCheck: self.noTenantCheckEndpoint)
            }
            if self.firstAllow != .max {
                return AccessDecision(
                    outcome: .allowed,
                    rule: Int(self.firstAllow),
                    allowingRoles: RoleSlots(bits: self.allowing),
                    noTenantCheckRoles: RoleSlots(bits: self.anyTenantRoles),
                    endpointHasNoTenantCheck: self.noTenantCheckEndpoint
                )
            }
            return AccessDecision(outcome: .noAllowRule, endpointHasNoTenantCheck: self.noTenantCheckEndpoint)
        }
    }

    /// One request's walk: everything it reads, immutable, so that its methods never copy it;
    /// what it finds goes to an `inout Found`.
    private struct Walk {
        let nodes: UnsafeMutablePointer<Node>
        let terminals: UnsafeMutablePointer<Int32>
        let globs: UnsafeMutablePointer<GlobEdge>
        let globFirstBytes: UnsafeMutablePointer<UInt8>
        let slots: UnsafeMutablePointer<LiteralSlot>
        let slotShift: UInt64
        let slotMask: Int
        let bytes: UnsafeRawPointer
        let bytesEnd: UnsafeRawPointer
        let rules: UnsafeMutablePointer<RuleEntry>
        let fold: Bool
        let path: UnsafeRawPointer
        let pathEnd: UnsafeRawPointer
        let starts: UnsafeMutablePointer<Int32>
        let count: Int
        let memo: UnsafeMutablePointer<UInt64>?
        let methodBit: UInt64
        let roles: UnsafeBufferPointer<Int32>
        /// Bit `role % 64` of each of the client's roles, and bit 63 always (for markers).
        let roleBloom: UInt64

        init(
            table: RouteTable,
            path: UnsafeRawPointer,
            pathEnd: UnsafeRawPointer,
            starts: UnsafeMutablePointer<Int32>,
            count: Int,
            memo: UnsafeMutablePointer<UInt64>?,
            methodBit: UInt64,
            roles: UnsafeBufferPointer<Int32>
        ) {
            self.nodes = table.nodes.baseAddress!
            self.terminals = table.terminals.baseAddress!
            self.globs = table.globs.baseAddress!
            self.globFirstBytes = table.globFirstBytes.baseAddress!
            self.slots = table.slots.baseAddress!
            self.slotShift = table.slotShift
            self.slotMask = table.slots.count - 1
            self.bytes = UnsafeRawPointer(table.bytes.baseAddress!)
            self.bytesEnd = self.bytes + table.bytes.count
            self.rules = table.ruleEntries.baseAddress!
            self.fold = table.fold
            self.path = path
            self.pathEnd = pathEnd
            self.starts = starts
            self.count = count
            self.memo = memo
            self.methodBit = methodBit
            self.roles = roles
            var bloom: UInt64 = 1 << 63
            for role in roles { bloom |= 1 << UInt64(role & 63) }
            self.roleBloom = bloom
        }

        /// `node`'s pattern prefix has matched the path's first `index` segments.
        func explore(_ node: Int32, _ index: Int, _ found: inout Found) {
            let ordinal = Int(self.nodes[Int(node)].doubleStarOrdinal)
            guard ordinal >= 0, let memo = self.memo else {
                self.step(node, index, &found)
                return
            }
            // `**` has consumed segments up to `next`; a pair already tried was followed by all
            // later ones, so the first repeat ends the loop.
            var next = index
            while next <= self.count {
                let bit = ordinal &* (self.count &+ 1) &+ next
                let word = memo[bit >> 6]
                let mask = UInt64(1) << UInt64(bit & 63)
                if word & mask != 0 { return }
                memo[bit >> 6] = word | mask
                self.step(node, next, &found)
                next &+= 1
            }
        }

        /// Follows `node`'s children over segment `index`, or accepts its rules at the end.
        func step(_ node: Int32, _ index: Int, _ found: inout Found) {
            let current = self.nodes + Int(node)
            if index == self.count {
                self.accept(current, &found)
                let doubleStar = current.pointee.doubleStar
                if doubleStar >= 0 { self.explore(doubleStar, index, &found) }
                return
            }
            let start = Int(self.starts[index])
            let length = Int(self.starts[index &+ 1]) &- 1 &- start
            let segment = self.path + start
            if current.pointee.hasLiterals, let child = self.literal(node, segment, length) {
                self.explore(child, index &+ 1, &found)
            }
            let globEnd = Int(current.pointee.globEnd)
            var glob = Int(current.pointee.globStart)
            if glob < globEnd {
                var head = wordAt(segment, min(8, length), self.path, self.pathEnd)
                if self.fold { head = foldWord(head) }
                var grams: SegmentGrams? = nil
                let byByte = Int(current.pointee.globsByByte)
                while glob < byByte {
                    self.tryGlob(glob, head, &grams, segment, length, index, &found)
                    glob &+= 1
                }
                // The globs whose first byte is the segment's: a lower bound, then a short run.
                let first = UInt8(truncatingIfNeeded: head)
                var high = globEnd
                while glob < high {
                    let middle = (glob &+ high) >> 1
                    if self.globFirstBytes[middle] < first { glob = middle &+ 1 } else { high = middle }
                }
                while glob < globEnd, self.globFirstBytes[glob] == first {
                    self.tryGlob(glob, head, &grams, segment, length, index, &found)
                    glob &+= 1
                }
            }
            let star = current.pointee.star
            if star >= 0 { self.explore(star, index &+ 1, &found) }
            let doubleStar = current.pointee.doubleStar
            if doubleStar >= 0 { self.explore(doubleStar, index, &found) }
        }

        @inline(__always)
        func tryGlob(
            _ number: Int,
            _ head: UInt64,
            _ grams: inout SegmentGrams?,
            _ segment: UnsafeRawPointer,
            _ length: Int,
            _ index: Int,
            _ found: inout Found
        ) {
            let edge = self.globs + number
            guard head & edge.pointee.prefixMask == edge.pointee.prefix, Int(edge.pointee.minimumLength) <= length else { return }
            if !edge.pointee.prefixDecides {
                if grams == nil { grams = SegmentGrams(segment, length, fold: self.fold) }
                guard grams!.bytes & edge.pointee.neededBytes == edge.pointee.neededBytes,
                    grams!.pairs & edge.pointee.neededPairs == edge.pointee.neededPairs,
                    self.globMatches(edge, segment, length)
                else { return }
            }
            self.explore(edge.pointee.child, index &+ 1, &found)
        }

        @inline(__always)
        func accept(_ node: UnsafeMutablePointer<Node>, _ found: inout Found) {
            guard node.pointee.terminalRoles & self.roleBloom != 0, node.pointee.terminalMethods & self.methodBit != 0 else { return }
            var index = Int(node.pointee.terminalStart)
            let end = Int(node.pointee.terminalEnd)
            while index < end {
                let number = self.terminals[index]
                index &+= 1
                let rule = self.rules + Int(number)
                guard rule.pointee.methods & self.methodBit != 0 else { continue }
                let kind = rule.pointee.kind
                if kind == .noTenantCheck {
                    found.noTenantCheckEndpoint = true
                    continue
                }
                guard let slot = self.roles.firstIndex(of: rule.pointee.role) else { continue }
                if kind == .deny {
                    found.firstDeny = min(found.firstDeny, number)
                } else {
                    found.allowing |= 1 << UInt64(slot)
                    if rule.pointee.anyTenant { found.anyTenantRoles |= 1 << UInt64(slot) }
                    found.firstAllow = min(found.firstAllow, number)
                }
            }
        }

        @inline(__always)
        func literal(_ parent: Int32, _ segment: UnsafeRawPointer, _ length: Int) -> Int32? {
            let key = RouteTable.key(parent: parent, segmentHash(segment, length, self.path, self.pathEnd, fold: self.fold))
            var index = Int(key >> self.slotShift)
            while true {
                let slot = self.slots + index
                if slot.pointee.child < 0 { return nil }
                if slot.pointee.key == key, slot.pointee.parent == parent, Int(slot.pointee.length) == length,
                    self.equal(self.bytes + Int(slot.pointee.offset), segment, length)
                {
                    return slot.pointee.child
                }
                index = (index &+ 1) & self.slotMask
            }
        }

        /// `count` stored bytes (already folded) against as many of the path's, folding those
        /// when paths are case-insensitive: eight at a time, the last eight overlapping.
        @inline(__always)
        func equal(_ stored: UnsafeRawPointer, _ segment: UnsafeRawPointer, _ count: Int) -> Bool {
            if count <= 8 {
                var word = wordAt(segment, count, self.path, self.pathEnd)
                if self.fold { word = foldWord(word) }
                return wordAt(stored, count, self.bytes, self.bytesEnd) == word
            }
            var offset = 0
            while true {
                if offset &+ 8 > count { offset = count &- 8 }
                var word = UInt64(littleEndian: (segment + offset).loadUnaligned(as: UInt64.self))
                if self.fold { word = foldWord(word) }
                if UInt64(littleEndian: (stored + offset).loadUnaligned(as: UInt64.self)) != word { return false }
                offset &+= 8
                if offset >= count { return true }
            }
        }

        /// A glob `P0*P1*...*Pk` against a segment: `P0` anchored at the start (its first bytes
        /// already compared), `Pk` at the end, and each middle piece at its leftmost place after
        /// the previous one, which is where a `*`-only glob can always put it. Linear, no
        /// backtracking. The caller has checked that the segment is long enough.
        func globMatches(_ edge: UnsafeMutablePointer<GlobEdge>, _ segment: UnsafeRawPointer, _ length: Int) -> Bool {
            let glob = self.bytes + Int(edge.pointee.offset)
            let total = Int(edge.pointee.length)
            let prefix = Int(edge.pointee.prefixLength)
            let suffix = Int(edge.pointee.suffixLength)
            let checked = Int(edge.pointee.checkedLength)
            if prefix > checked, !self.equal(glob + checked, segment + checked, prefix &- checked) { return false }
            if suffix > 0, !self.equal(glob + (total &- suffix), segment + (length &- suffix), suffix) { return false }
            let star = UInt8(ascii: "*")
            let limit = length &- suffix
            let lastStar = total &- suffix &- 1
            var position = prefix
            var piece = prefix &+ 1
            while piece < lastStar {
                var pieceEnd = piece
                while glob.load(fromByteOffset: pieceEnd, as: UInt8.self) != star { pieceEnd &+= 1 }
                let pieceLength = pieceEnd &- piece
                let first = glob.load(fromByteOffset: piece, as: UInt8.self)
                var found = false
                while position &+ pieceLength <= limit {
                    var byte = segment.load(fromByteOffset: position, as: UInt8.self)
                    if self.fold { byte = asciiLower(byte) }
                    if byte == first, self.equal(glob + piece, segment + position, pieceLength) {
                        found = true
                        break
                    }
                    position &+= 1
                }
                guard found else { return false }
                position &+= pieceLength
                piece = pieceEnd &+ 1
            }
            return true
        }
    }
}

@inline(__always)
func memcmpEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
    var offset = 0
    while offset + 8 <= count {
        if a.loadUnaligned(fromByteOffset: offset, as: UInt64.self) != b.loadUnaligned(fromByteOffset: offset, as: UInt64.self) {
            return false
        }
        offset += 8
    }
    while offset < count {
        if a.load(fromByteOffset: offset, as: UInt8.self) != b.load(fromByteOffset: offset, as: UInt8.self) { return false }
        offset += 1
    }
    return true
}

/// The low `count` bytes of a word set (first byte lowest); `count` 0...8.
@inline(__always)
func byteMask(_ count: Int) -> UInt64 {
    count >= 8 ? .max : (UInt64(1) << UInt64(8 &* count)) &- 1
}

/// The `count` (0...8) bytes at `pointer` as one word, first byte lowest, the rest zero. Reads
/// one 8-byte word, from `pointer` or ending at `pointer + count`, whichever stays inside
/// `lower..<upper`; byte by byte only when the whole buffer is shorter than 8 bytes.
@inline(__always)
func wordAt(_ pointer: UnsafeRawPointer, _ count: Int, _ lower: UnsafeRawPointer, _ upper: UnsafeRawPointer) -> UInt64 {
    if count == 0 { return 0 }
    if upper - pointer >= 8 {
        return UInt64(littleEndian: pointer.loadUnaligned(as: UInt64.self)) & byteMask(count)
    }
    if (pointer + count) - lower >= 8 {
        return UInt64(littleEndian: (pointer + count - 8).loadUnaligned(as: UInt64.self)) >> UInt64(8 &* (8 &- count))
    }
    var word: UInt64 = 0
    var index = 0
    while index < count {
        word |= UInt64(pointer.load(fromByteOffset: index, as: UInt8.self)) << UInt64(8 &* index)
        index &+= 1
    }
    return word
}

/// A multiply-xorshift hash of a segment's (folded) bytes, eight at a time. The same bytes hash
/// the same wherever they lie, so build time (from arrays) and request time agree.
@inline(__always)
func segmentHash(_ pointer: UnsafeRawPointer, _ count: Int, _ lower: UnsafeRawPointer, _ upper: UnsafeRawPointer, fold: Bool) -> UInt64 {
    @inline(__always) func mix(_ hash: UInt64, _ word: UInt64) -> UInt64 {
        let mixed = (hash ^ word) &* 0x9e37_79b9_7f4a_7c15
        return mixed ^ (mixed >> 32)
    }
    var hash = 0xcbf2_9ce4_8422_2325 ^ UInt64(count)
    if count <= 8 {
        let word = wordAt(pointer, count, lower, upper)
        return mix(hash, fold ? foldWord(word) : word)
    }
    var offset = 0
    while true {
        if offset &+ 8 > count { offset = count &- 8 }
        let word = UInt64(littleEndian: (pointer + offset).loadUnaligned(as: UInt64.self))
        hash = mix(hash, fold ? foldWord(word) : word)
        offset &+= 8
        if offset >= count { return hash }
    }
}

/// ASCII `A`-`Z` to `a`-`z` in every byte of `word` at once; other bytes unchanged.
@inline(__always)
func foldWord(_ word: UInt64) -> UInt64 {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let low7 = word & (ones &* 0x7f)
    let atLeastA = low7 &+ ones &* (0x80 - 0x41)
    let aboveZ = low7 &+ ones &* (0x80 - 0x5b)
    let upper = atLeastA & ~aboveZ & ~word & (ones &* 0x80)
    return word | (upper >> 2)
}

/// Which (folded) bytes and adjacent byte pairs occur in a segment, as one bit each of two
/// 64-bit sets (hashed, so a set bit may stand for several): a glob piece needing a byte or
/// pair whose bit is clear cannot occur.
struct SegmentGrams {
    var bytes: UInt64 = 0
    var pairs: UInt64 = 0

    init() {}

    @inline(__always)
    init(_ pointer: UnsafeRawPointer, _ count: Int, fold: Bool) {
        var previous: UInt8 = 0
        var index = 0
        while index < count {
            var byte = pointer.load(fromByteOffset: index, as: UInt8.self)
            if fold { byte = asciiLower(byte) }
            self.bytes |= 1 << UInt64(byte & 63)
            if index > 0 { self.pairs |= 1 << UInt64((previous &* 31 &+ byte) & 63) }
            previous = byte
            index &+= 1
        }
    }

    /// Adds one piece's (already folded) bytes and the pairs within it.
    mutating func add(_ piece: ArraySlice<UInt8>) {
        var previous: UInt8?
        for byte in piece {
            self.bytes |= 1 << UInt64(byte & 63)
            if let previous { self.pairs |= 1 << UInt64((previous &* 31 &+ byte) & 63) }
            previous = byte
        }
    }
}
