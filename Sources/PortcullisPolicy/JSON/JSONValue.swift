/// A JSON value parsed strictly from UTF-8 bytes (RFC 8259), for JOSE headers, JWT claims and
/// JWK sets.
///
/// Written by hand because it runs on the event loop for every token that misses the cache:
/// no Foundation, one pass over the bytes. Stricter than the RFC requires where JOSE benefits:
/// duplicate object keys, trailing bytes after the value, invalid UTF-8, lone surrogate escapes,
/// numbers that overflow a `Double`, and nesting deeper than `maximumDepth` are all errors.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// Every JSON number, as the nearest `Double` (integers up to 2^53 are exact).
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// Deep enough for JWK sets (`{"keys":[{"x5c":[...]}]}`) and ordinary claims.
    public static let defaultMaximumDepth = 16

    /// Parses `bytes` as exactly one JSON value, optionally surrounded by whitespace.
    public static func parse<Bytes: Collection>(
        _ bytes: Bytes,
        maximumDepth: Int = JSONValue.defaultMaximumDepth
    ) throws(JSONError) -> JSONValue where Bytes.Element == UInt8 {
        let result = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JSONError) -> JSONValue in
                try Self.parse(UnsafeRawBufferPointer(buffer), maximumDepth: maximumDepth)
            }
        }
        if let result {
            return try result.get()
        }
        let copy = Array(bytes)
        let copied = copy.withUnsafeBytes { buffer in
            Result { () throws(JSONError) -> JSONValue in
                try Self.parse(buffer, maximumDepth: maximumDepth)
            }
        }
        return try copied.get()
    }

    /// Parses `bytes` as exactly one JSON value, optionally surrounded by whitespace.
    public static func parse(
        _ bytes: UnsafeRawBufferPointer,
        maximumDepth: Int = JSONValue.defaultMaximumDepth
    ) throws(JSONError) -> JSONValue {
        var parser = JSONParser(bytes: bytes, maximumDepth: maximumDepth)
        return try parser.parseDocument()
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var numberValue: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }
}

/// The members of a JSON object, in document order, names unique.
///
/// An array rather than a dictionary: JOSE headers and JWT claims hold a handful to a few dozen
/// members, where a linear scan beats hashing every name, and parsing them runs per token.
public struct JSONObject: Sendable, Equatable, RandomAccessCollection, ExpressibleByDictionaryLiteral {
    public typealias Element = (key: String, value: JSONValue)

    // A struct, not the Element tuple: arrays of tuples look up type metadata at run time.
    struct Member: Sendable {
        var key: String
        var value: JSONValue
        /// `KeyPrint` of `key`.
        var keyPrint: UInt64

        init(key: String, value: JSONValue) {
            self.init(key: key, value: value, keyPrint: KeyPrint.of(key))
        }

        init(key: String, value: JSONValue, keyPrint: UInt64) {
            self.key = key
            self.value = value
            self.keyPrint = keyPrint
        }
    }

    /// A member name with its print worked out once, for names looked up again and again
    /// (a JWT's registered claims, an issuer's client claim).
    public struct Name: Sendable, Hashable {
        public let text: String
        let print: UInt64

        public init(_ text: String) {
            self.text = text
            self.print = KeyPrint.of(text)
        }
    }

    /// A name's length and first seven bytes, when it is ASCII (0 otherwise): two ASCII names
    /// with different prints are different names, so a lookup or the duplicate check compares
    /// Strings only where the prints match. Names that are not ASCII always compare as Strings,
    /// which is what decides equality (canonical equivalence included) in every case.
    enum KeyPrint {
        static func of(_ key: String) -> UInt64 {
            var key = key
            return key.withUTF8 { Self.of(UnsafeRawBufferPointer($0)) }
        }

        @inline(__always)
        static func of(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
            guard bytes.count > 0 else { return 0 }
            var print = UInt64(Swift.min(bytes.count, 255)) << 56
            var shift: UInt64 = 0
            var ascii: UInt8 = 0
            for byte in bytes.prefix(7) {
                print |= UInt64(byte) << shift
                shift += 8
            }
            for byte in bytes { ascii |= byte }
            return ascii < 0x80 ? print : 0
        }

        /// False only when the names are certainly different.
        @inline(__always)
        static func mayMatch(_ a: UInt64, _ b: UInt64) -> Bool {
            a == b || a == 0 || b == 0
        }
    }

    private var members: [Member]

    public init() {
        self.members = []
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.members = []
        for (key, value) in elements {
            precondition(self[key] == nil, "duplicate key \(key) in a JSONObject literal")
            self.members.append(Member(key: key, value: value))
        }
    }

    /// Members whose names the caller has already checked to be unique.
    init(uniqueMembers: [Member]) {
        self.members = uniqueMembers
    }

    /// The value of the member named `key`.
    public subscript(key: String) -> JSONValue? {
        self[Name(key)]
    }

    /// The value of the member named `name`.
    public subscript(name: Name) -> JSONValue? {
        self.members.withUnsafeBufferPointer { members in
            for index in members.indices
            where KeyPrint.mayMatch(members[index].keyPrint, name.print) && members[index].key == name.text {
                return members[index].value
            }
            return nil
        }
    }

    public var keys: [String] { self.members.map(\.key) }

    public var startIndex: Int { self.members.startIndex }
    public var endIndex: Int { self.members.endIndex }
    public subscript(position: Int) -> Element {
        let member = self.members[position]
        return (member.key, member.value)
    }

    /// Equal when both hold the same names with equal values, in any order.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.count == rhs.count && lhs.members.allSatisfy { rhs[$0.key] == $0.value }
    }
}

/// Why bytes are not one strict JSON value; `offset` is the byte where parsing stopped.
///
/// Errors compare equal when their codes do.
public struct JSONError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case unexpectedEnd
            case unexpectedByte
            case invalidString
            case invalidNumber
            case duplicateKey
            case tooDeep
            case trailingBytes
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        public static let unexpectedEnd = Code(.unexpectedEnd)
        public static let unexpectedByte = Code(.unexpectedByte)
        /// A control character, a bad escape, a lone surrogate, or invalid UTF-8 in a string.
        public static let invalidString = Code(.invalidString)
        /// Not RFC 8259 number syntax, or too large for a `Double`.
        public static let invalidNumber = Code(.invalidNumber)
        /// The same member name twice in one object (RFC 7515 section 4 allows refusing it).
        public static let duplicateKey = Code(.duplicateKey)
        public static let tooDeep = Code(.tooDeep)
        /// Something other than whitespace after the value.
        public static let trailingBytes = Code(.trailingBytes)

        public var description: String { "\(self.backing)" }
    }

    public let code: Code
    public let offset: Int
    public let file: String
    public let line: UInt

    public init(_ code: Code, offset: Int, file: String = #fileID, line: UInt = #line) {
        self.code = code
        self.offset = offset
        self.file = file
        self.line = line
    }

    public var description: String { "invalid JSON (\(self.code)) at byte \(self.offset)" }

}

/// A recursive-descent parser over a borrowed buffer; `index` only moves forward.
private struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    let maximumDepth: Int
    var index = 0

    static let linearDuplicateCheckLimit = 32
    static let initialMemberCapacity = 16

    init(bytes: UnsafeRawBufferPointer, maximumDepth: Int) {
        self.bytes = bytes
        self.maximumDepth = maximumDepth
    }

    mutating func parseDocument() throws(JSONError) -> JSONValue {
        let value = try self.parseValue(depth: 0)
        self.skipWhitespace()
        guard self.index == self.bytes.count else { throw self.error(.trailingBytes) }
        return value
    }

    private func error(_ code: JSONError.Code) -> JSONError {
        JSONError(code, offset: self.index)
    }

    @inline(__always)
    private mutating func skipWhitespace() {
        while self.index < self.bytes.count {
            switch self.bytes[self.index] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                self.index += 1
            default:
                return
            }
        }
    }

    @inline(__always)
    private mutating func peek() throws(JSONError) -> UInt8 {
        guard self.index < self.bytes.count else { throw self.error(.unexpectedEnd) }
        return self.bytes[self.index]
    }

    private mutating func parseValue(depth: Int) throws(JSONError) -> JSONValue {
        self.skipWhitespace()
        switch try self.peek() {
        case UInt8(ascii: "{"):
            return try self.parseObject(depth: depth + 1)
        case UInt8(ascii: "["):
            return try self.parseArray(depth: depth + 1)
        case UInt8(ascii: "\""):
            return .string(try self.parseString())
        case UInt8(ascii: "t"):
            try self.expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try self.expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try self.expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try self.parseNumber())
        default:
            throw self.error(.unexpectedByte)
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONError) {
        let count = literal.utf8CodeUnitCount
        guard self.bytes.count - self.index >= count else { throw self.error(.unexpectedEnd) }
        let start = literal.utf8Start
        for offset in 0..<count where self.bytes[self.index + offset] != start[offset] {
            self.index += offset
            throw self.error(.unexpectedByte)
        }
        self.index += count
    }

    private mutating func parseObject(depth: Int) throws(JSONError) -> JSONValue {
        guard depth <= self.maximumDepth else { throw self.error(.tooDeep) }
        self.index += 1
        var members: [JSONObject.Member] = []
        // Past a few dozen members, a set keeps the duplicate check linear.
        var names: Set<String>?
        self.skipWhitespace()
        if try self.peek() == UInt8(ascii: "}") {
            self.index += 1
            return .object(JSONObject())
        }
        // A JOSE header or a JWT's claims in one allocation instead of five growths.
        members.reserveCapacity(Self.initialMemberCapacity)
        while true {
            self.skipWhitespace()
            guard try self.peek() == UInt8(ascii: "\"") else { throw self.error(.unexpectedByte) }
            let keyOffset = self.index
            let key = try self.parseString()
            // Without escapes (a name is its bytes between the quotes) the print is read from
            // the input; an escape always shortens the text, so the lengths tell.
            let rawKey = UnsafeRawBufferPointer(rebasing: self.bytes[(keyOffset + 1)..<(self.index - 1)])
            let keyPrint = rawKey.count == key.utf8.count ? JSONObject.KeyPrint.of(rawKey) : JSONObject.KeyPrint.of(key)
            self.skipWhitespace()
            guard try self.peek() == UInt8(ascii: ":") else { throw self.error(.unexpectedByte) }
            self.index += 1
            let value = try self.parseValue(depth: depth)
            if names == nil && members.count >= Self.linearDuplicateCheckLimit {
                names = Set(members.map(\.key))
            }
            let member = JSONObject.Member(key: key, value: value, keyPrint: keyPrint)
            let duplicate: Bool
            if names != nil {
                duplicate = !names!.insert(key).inserted
            } else {
                duplicate = members.contains { JSONObject.KeyPrint.mayMatch($0.keyPrint, member.keyPrint) && $0.key == key }
            }
            guard !duplicate else {
                throw JSONError(.duplicateKey, offset: keyOffset)
            }
            members.append(member)
            self.skipWhitespace()
            switch try self.peek() {
            case UInt8(ascii: ","):
                self.index += 1
            case UInt8(ascii: "}"):
                self.index += 1
                return .object(JSONObject(uniqueMembers: members))
            default:
                throw self.error(.unexpectedByte)
            }
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONError) -> JSONValue {
        guard depth <= self.maximumDepth else { throw self.error(.tooDeep) }
        self.index += 1
        var elements: [JSONValue] = []
        self.skipWhitespace()
        if try self.peek() == UInt8(ascii: "]") {
            self.index += 1
            return .array(elements)
        }
        while true {
            elements.append(try self.parseValue(depth: depth))
            self.skipWhitespace()
            switch try self.peek() {
            case UInt8(ascii: ","):
                self.index += 1
            case UInt8(ascii: "]"):
                self.index += 1
                return .array(elements)
            default:
                throw self.error(.unexpectedByte)
            }
        }
    }

    /// Reads a string starting at its opening quote and leaves `index` after the closing one.
    private mutating func parseString() throws(JSONError) -> String {
        self.index += 1
        let start = self.index
        // Fast path: no escapes, so the string is a slice of the input (ASCII needs no check).
        var ascii = true
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeRawBufferPointer(rebasing: self.bytes[start..<self.index])
                self.index += 1
                if ascii {
                    return String(decoding: slice, as: UTF8.self)
                }
                guard let string = String(validating: slice, as: UTF8.self) else {
                    throw JSONError(.invalidString, offset: start)
                }
                return string
            }
            if byte == UInt8(ascii: "\\") {
                break
            }
            guard byte >= 0x20 else { throw self.error(.invalidString) }
            ascii = ascii && byte < 0x80
            self.index += 1
        }
        guard self.index < self.bytes.count else { throw self.error(.unexpectedEnd) }

        var unescaped = Array(self.bytes[start..<self.index])
        while true {
            guard self.index < self.bytes.count else { throw self.error(.unexpectedEnd) }
            let byte = self.bytes[self.index]
            switch byte {
            case UInt8(ascii: "\""):
                self.index += 1
                guard let string = String(validating: unescaped, as: UTF8.self) else {
                    throw JSONError(.invalidString, offset: start)
                }
                return string
            case UInt8(ascii: "\\"):
                self.index += 1
                try self.appendEscape(to: &unescaped)
            case 0..<0x20:
                throw self.error(.invalidString)
            default:
                unescaped.append(byte)
                self.index += 1
            }
        }
    }

    /// Decodes the escape after a backslash (`index` is on the character after it).
    private mutating func appendEscape(to output: inout [UInt8]) throws(JSONError) {
        let byte = try self.peek()
        self.index += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(byte)
        case UInt8(ascii: "b"): output.append(0x08)
        case UInt8(ascii: "f"): output.append(0x0C)
        case UInt8(ascii: "n"): output.append(0x0A)
        case UInt8(ascii: "r"): output.append(0x0D)
        case UInt8(ascii: "t"): output.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = UInt32(try self.parseHex4())
            switch scalar {
            case 0xD800...0xDBFF:
                guard self.bytes.count - self.index >= 2, self.bytes[self.index] == UInt8(ascii: "\\"),
                    self.bytes[self.index + 1] == UInt8(ascii: "u")
                else { throw self.error(.invalidString) }
                self.index += 2
                let low = UInt32(try self.parseHex4())
                guard (0xDC00...0xDFFF).contains(low) else { throw self.error(.invalidString) }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            case 0xDC00...0xDFFF:
                throw self.error(.invalidString)
            default:
                break
            }
            guard let unicode = Unicode.Scalar(scalar) else { throw self.error(.invalidString) }
            output.append(contentsOf: UTF8.encode(unicode)!)
        default:
            self.index -= 1
            throw self.error(.invalidString)
        }
    }

    private mutating func parseHex4() throws(JSONError) -> UInt16 {
        guard self.bytes.count - self.index >= 4 else { throw self.error(.unexpectedEnd) }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = self.bytes[self.index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw self.error(.invalidString)
            }
            value = value << 4 | UInt16(digit)
            self.index += 1
        }
        return value
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, nothing looser.
    private mutating func parseNumber() throws(JSONError) -> Double {
        let start = self.index
        var negative = false
        if self.bytes[self.index] == UInt8(ascii: "-") {
            negative = true
            self.index += 1
        }
        let integerStart = self.index
        guard self.index < self.bytes.count else { throw self.error(.invalidNumber) }
        if self.bytes[self.index] == UInt8(ascii: "0") {
            self.index += 1
        } else {
            guard self.skipDigits() > 0 else { throw self.error(.invalidNumber) }
        }
        let integerDigits = self.index - integerStart
        var isInteger = true
        if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: ".") {
            isInteger = false
            self.index += 1
            guard self.skipDigits() > 0 else { throw self.error(.invalidNumber) }
        }
        if self.index < self.bytes.count, self.bytes[self.index] | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            self.index += 1
            if self.index < self.bytes.count,
                self.bytes[self.index] == UInt8(ascii: "+") || self.bytes[self.index] == UInt8(ascii: "-")
            {
                self.index += 1
            }
            guard self.skipDigits() > 0 else { throw self.error(.invalidNumber) }
        }
        if isInteger && integerDigits <= 15 {
            var value: Int64 = 0
            for offset in integerStart..<self.index {
                value = value * 10 + Int64(self.bytes[offset] - UInt8(ascii: "0"))
            }
            return Double(negative ? -value : value)
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: self.bytes[start..<self.index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw JSONError(.invalidNumber, offset: start) }
        return value
    }

    private mutating func skipDigits() -> Int {
        let start = self.index
        while self.index < self.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self.bytes[self.index]) {
            self.index += 1
        }
        return self.index - start
    }
}
