/// Base64url without padding (RFC 7515 section 2, RFC 4648 section 5), strict both ways.
///
/// Decoding accepts exactly one spelling of each byte string: only `A-Z a-z 0-9 - _`, no `=`,
/// no whitespace, no `+` or `/`, no length of the form `4n + 1`, and the unused low bits of the
/// last character must be zero. Anything looser lets an attacker mint several encodings of one
/// signature, which breaks a cache keyed by the token bytes.
public enum Base64URL {
    /// The bytes `encoded` spells, or nil when it is not canonical unpadded base64url.
    public static func decode<Bytes: Collection>(_ encoded: Bytes) -> [UInt8]? where Bytes.Element == UInt8 {
        if let decoded = encoded.withContiguousStorageIfAvailable({ Self.decode(UnsafeRawBufferPointer($0)) }) {
            return decoded
        }
        return Array(encoded).withUnsafeBytes { Self.decode($0) }
    }

    /// The bytes `encoded` spells, or nil when it is not canonical unpadded base64url.
    public static func decode(_ encoded: UnsafeRawBufferPointer) -> [UInt8]? {
        Self.decodeTable.withUnsafeBufferPointer { Self.decode(encoded, table: $0) }
    }

    private static func decode(_ encoded: UnsafeRawBufferPointer, table: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        let count = encoded.count
        let remainder = count & 3
        guard remainder != 1 else { return nil }
        let decodedCount = (count >> 2) * 3 + (remainder == 0 ? 0 : remainder - 1)
        var valid = true
        let decoded = [UInt8](unsafeUninitializedCapacity: decodedCount) { output, initialized in
            var input = 0
            var out = 0
            let wholeEnd = count - remainder
            while input < wholeEnd {
                let a = table[Int(encoded[input])]
                let b = table[Int(encoded[input + 1])]
                let c = table[Int(encoded[input + 2])]
                let d = table[Int(encoded[input + 3])]
                guard (a | b | c | d) & 0x80 == 0 else {
                    valid = false
                    break
                }
                output[out] = a << 2 | b >> 4
                output[out + 1] = b << 4 | c >> 2
                output[out + 2] = c << 6 | d
                input += 4
                out += 3
            }
            if valid && remainder != 0 {
                let a = table[Int(encoded[input])]
                let b = table[Int(encoded[input + 1])]
                let c = remainder == 3 ? table[Int(encoded[input + 2])] : 0
                if (a | b | c) & 0x80 != 0 {
                    valid = false
                } else if remainder == 2 {
                    // One byte from 12 bits: the low 4 bits of the second character are unused.
                    valid = b & 0x0F == 0
                    output[out] = a << 2 | b >> 4
                    out += 1
                } else {
                    // Two bytes from 18 bits: the low 2 bits of the third character are unused.
                    valid = c & 0x03 == 0
                    output[out] = a << 2 | b >> 4
                    output[out + 1] = b << 4 | c >> 2
                    out += 2
                }
            }
            initialized = valid ? out : 0
        }
        return valid ? decoded : nil
    }

    /// The unpadded base64url text of `bytes`.
    public static func encode<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        String(decoding: Self.encodedBytes(bytes), as: UTF8.self)
    }

    /// The unpadded base64url text of `bytes`, as ASCII bytes.
    public static func encodedBytes<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        let input = Array(bytes)
        let count = input.count
        let encodedCount = (count / 3) * 4 + (count % 3 == 0 ? 0 : count % 3 + 1)
        return [UInt8](unsafeUninitializedCapacity: encodedCount) { output, initialized in
            var index = 0
            var out = 0
            while index + 3 <= count {
                let value = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
                output[out] = Self.character(value >> 18)
                output[out + 1] = Self.character(value >> 12)
                output[out + 2] = Self.character(value >> 6)
                output[out + 3] = Self.character(value)
                index += 3
                out += 4
            }
            switch count - index {
            case 1:
                let value = UInt32(input[index]) << 16
                output[out] = Self.character(value >> 18)
                output[out + 1] = Self.character(value >> 12)
                out += 2
            case 2:
                let value = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8
                output[out] = Self.character(value >> 18)
                output[out + 1] = Self.character(value >> 12)
                output[out + 2] = Self.character(value >> 6)
                out += 3
            default:
                break
            }
            initialized = out
        }
    }

    /// The 6-bit value of every byte as a base64url character, 0xFF for the other bytes.
    private static let decodeTable: [UInt8] = (0...255).map { Self.sextet(UInt8($0)) }

    private static func sextet(_ byte: UInt8) -> UInt8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return byte &- UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return byte &- UInt8(ascii: "a") &+ 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte &- UInt8(ascii: "0") &+ 52
        case UInt8(ascii: "-"): return 62
        case UInt8(ascii: "_"): return 63
        default: return 0xFF
        }
    }

    @inline(__always)
    private static func character(_ value: UInt32) -> UInt8 {
        let sextet = UInt8(truncatingIfNeeded: value) & 0x3F
        switch sextet {
        case 0..<26: return UInt8(ascii: "A") &+ sextet
        case 26..<52: return UInt8(ascii: "a") &+ (sextet &- 26)
        case 52..<62: return UInt8(ascii: "0") &+ (sextet &- 52)
        case 62: return UInt8(ascii: "-")
        default: return UInt8(ascii: "_")
        }
    }
}
