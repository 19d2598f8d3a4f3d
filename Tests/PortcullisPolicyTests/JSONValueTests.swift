import Testing

@testable import PortcullisPolicy

@Suite struct JSONValueTests {
    private func parse(_ text: String) throws(JSONError) -> JSONValue {
        try JSONValue.parse(Array(text.utf8))
    }

    private func code(_ text: String) -> JSONError.Code? {
        do {
            _ = try self.parse(text)
            return nil
        } catch {
            return error.code
        }
    }

    private func code(_ bytes: [UInt8]) -> JSONError.Code? {
        do {
            _ = try JSONValue.parse(bytes)
            return nil
        } catch {
            return error.code
        }
    }

    @Test func everyValueKindParses() throws {
        let value = try self.parse(#" { "s" : "x" , "n" : -1.5e2 , "t" : true , "f" : false , "z" : null , "a" : [ 1 , [ ] , { } ] } "#)
        #expect(
            value
                == .object([
                    "s": .string("x"), "n": .number(-150), "t": .bool(true), "f": .bool(false), "z": .null,
                    "a": .array([.number(1), .array([]), .object([:])]),
                ]))
    }

    @Test(arguments: [
        ("0", 0.0), ("-0", 0.0), ("7", 7), ("-12", -12), ("1700000000", 1_700_000_000), ("1.25", 1.25),
        ("1e3", 1000), ("1E+3", 1000), ("25e-2", 0.25), ("123456789012345678", 1.2345678901234568e17),
        ("1700000000.75", 1_700_000_000.75),
    ])
    func numbersFollowRFC8259(text: String, value: Double) throws {
        #expect(try self.parse(text) == .number(value))
    }

    @Test(arguments: ["01", "-", "+1", "1.", ".5", "1e", "1e+", "0x10", "NaN", "Infinity", "-Infinity", "1.5.2", "--1"])
    func looseNumbersAreRefused(text: String) {
        #expect(self.code(text) != nil)
    }

    @Test func numbersBeyondDoubleAreRefused() {
        #expect(self.code("1e999") == .invalidNumber)
        #expect(self.code("-1e400") == .invalidNumber)
    }

    @Test func allEscapesDecode() throws {
        let value = try self.parse(#""\" \\ \/ \b \f \n \r \t \u0041 \u00e9 \u20AC \ud83d\ude00 \u0000""#)
        #expect(value == .string("\" \\ / \u{8} \u{c} \n \r \t A é € 😀 \u{0}"))
    }

    @Test func utf8TextPassesThrough() throws {
        #expect(try self.parse("\"caf\u{e9} \u{1F600}\"") == .string("café 😀"))
    }

    @Test(arguments: [
        #""\ud83d""#, #""\ud83d x""#, #""\ud83d\u0041""#, #""\ude00""#, #""\ude00\ud83d""#,  // surrogates
        #""\x41""#, #""\u12""#, #""\u12G4""#, #""\'""#, #""abc"#, "\"a\tb\"", "\"a\nb\"", "\"\u{1}\"",
    ])
    func badStringsAreRefused(text: String) {
        #expect(self.code(text) != nil)
    }

    @Test func invalidUTF8IsRefused() {
        #expect(self.code([0x22, 0xC3, 0x28, 0x22]) == .invalidString)  // broken two-byte sequence
        #expect(self.code([0x22, 0xC0, 0x80, 0x22]) == .invalidString)  // overlong NUL
        #expect(self.code([0x22, 0xED, 0xA0, 0x80, 0x22]) == .invalidString)  // encoded surrogate
        #expect(self.code([0x22, 0xFF, 0x22]) == .invalidString)
        #expect(self.code([0x22, 0x5C, 0x6E, 0xC3, 0x28, 0x22]) == .invalidString)  // after an escape
    }

    @Test func duplicateKeysAreRefusedEvenWhenSpelledDifferently() {
        #expect(self.code(#"{"alg":"RS256","alg":"none"}"#) == .duplicateKey)
        #expect(self.code(#"{"alg":"RS256","\u0061lg":"none"}"#) == .duplicateKey)
        #expect(self.code(#"{"a":{"b":1,"b":1}}"#) == .duplicateKey)
        #expect(self.code(#"{"a":1,"A":1}"#) == nil)
    }

    /// Names are told apart by their length and first bytes before any String comparison;
    /// what decides is still String equality, which holds canonically equivalent names equal
    /// (KELVIN SIGN is K), so a lookup or a duplicate involving a non-ASCII name is never missed.
    @Test func namesSharingLengthAndPrefixOrEquivalentAcrossScriptsAreToldApartAsStrings() throws {
        let object = try #require(
            try self.parse(#"{"iss":1,"iat":2,"client_id":3,"client_ix":4,"client_i":5,"clientXid":6,"K":7,"é":8}"#).objectValue
        )
        #expect(object["iss"] == .number(1) && object["iat"] == .number(2) && object["isz"] == nil)
        #expect(object["client_id"] == .number(3) && object["client_ix"] == .number(4) && object["client_i"] == .number(5))
        #expect(object["clientXid"] == .number(6) && object["client_iy"] == nil && object["client_"] == nil)
        #expect(object["K"] == .number(7), "KELVIN SIGN and K are equal Strings")
        #expect(object["e\u{301}"] == .number(8), "a decomposed é finds the composed one")
        #expect(object[""] == nil)
        let escaped = try #require(try self.parse(#"{"\u0069ss":1,"cl\u0069ent_id":2}"#).objectValue)
        #expect(escaped["iss"] == .number(1) && escaped[JSONObject.Name("client_id")] == .number(2))
        #expect(self.code(#"{"K":1,"\u212A":2}"#) == .duplicateKey)
        #expect(self.code(#"{"K":1,"K":2}"#) == .duplicateKey, "KELVIN SIGN written as itself")
        #expect(self.code(#"{"client_id":1,"client_ix":2,"client_id":3}"#) == .duplicateKey)
        #expect(self.code(#"{"":1,"":2}"#) == .duplicateKey)
        #expect(self.code(#"{"client_id":1,"client_ix":2}"#) == nil)
    }

    @Test func duplicatesAreFoundInLargeObjectsToo() throws {
        let members = (0..<200).map { #""k\#($0)":\#($0)"# }
        let object = try #require(try self.parse("{" + members.joined(separator: ",") + "}").objectValue)
        #expect(object.count == 200)
        #expect(object["k0"] == .number(0) && object["k199"] == .number(199) && object["k200"] == nil)
        #expect(self.code("{" + (members + [#""k3":0"#]).joined(separator: ",") + "}") == .duplicateKey)
        #expect(self.code("{" + (members + [#""k199":0"#]).joined(separator: ",") + "}") == .duplicateKey)
    }

    @Test func objectsKeepDocumentOrderAndCompareRegardlessOfIt() throws {
        let object = try #require(try self.parse(#"{"b":1,"a":2,"c":3}"#).objectValue)
        #expect(object.keys == ["b", "a", "c"])
        #expect(object == ["a": .number(2), "b": .number(1), "c": .number(3)])
        #expect(object != ["a": .number(2), "b": .number(1)])
        #expect(object != ["a": .number(2), "b": .number(1), "c": .number(4)])
    }

    @Test func trailingBytesAreRefused() {
        #expect(self.code(#"{"a":1}x"#) == .trailingBytes)
        #expect(self.code(#"{"a":1}{}"#) == .trailingBytes)
        #expect(self.code("1 2") == .trailingBytes)
        #expect(self.code([0x7B, 0x7D, 0x00]) == .trailingBytes)
        #expect(self.code(" {} \n\t\r") == nil)
    }

    @Test(arguments: [
        "", " ", "{", "[", #"{"a""#, #"{"a":"#, #"{"a":1"#, #"{"a":1,}"#, "[1,]", "[,1]", "{,}", #"{a:1}"#,
        "{'a':1}", "tru", "nul", "True", "[1 2]", #"{"a" 1}"#, "\u{FEFF}{}",
    ])
    func malformedDocumentsAreRefused(text: String) {
        #expect(self.code(text) != nil)
    }

    @Test func nestingIsBounded() {
        let limit = JSONValue.defaultMaximumDepth
        let deepest = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
        let tooDeep = String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)
        #expect(self.code(deepest) == nil)
        #expect(self.code(tooDeep) == .tooDeep)
        let objects = String(repeating: #"{"a":"#, count: limit + 1) + "1" + String(repeating: "}", count: limit + 1)
        #expect(self.code(objects) == .tooDeep)
        #expect(self.code(String(repeating: "[", count: 100_000)) == .tooDeep)
    }

    @Test func accessorsReturnTheMatchingKindOnly() throws {
        let value = try self.parse(#"{"s":"x","n":2,"b":true,"a":[],"o":{}}"#)
        let object = try #require(value.objectValue)
        #expect(object["s"]?.stringValue == "x")
        #expect(object["s"]?.numberValue == nil)
        #expect(object["n"]?.numberValue == 2)
        #expect(object["b"]?.boolValue == true)
        #expect(object["a"]?.arrayValue == [])
        #expect(object["o"]?.objectValue == [:])
        #expect(value.arrayValue == nil)
    }
}
