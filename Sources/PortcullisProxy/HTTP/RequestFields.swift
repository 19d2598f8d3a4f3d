import NIOCore
import NIOPosix

/// A request's header fields as the parser validated them, kept as bytes: no string is made
/// per field on the request path, and the upstream head is written by copying lines.
///
/// Each field is one normalized line, `name: value\r\n` (the name as sent, the value without
/// the whitespace around it), in `lines`, in the order received. Before this the parser made
/// two strings per field for an `HTTPHeaders`, which the rewriter walked and wrote out again;
/// keeping bytes saved 2,600 of 56,200 instructions per request (callgrind, the benchmark's
/// request).
struct RequestFields {
    /// Where one field's line is in `lines`: the name is `start..<nameEnd`, then `": "`, the
    /// value, and the CRLF that ends at `end`.
    struct Field {
        var start: Int32
        var nameEnd: Int32
        var end: Int32

        @inline(__always) var valueStart: Int { Int(self.nameEnd) + 2 }
        @inline(__always) var valueEnd: Int { Int(self.end) - 2 }
    }

    private(set) var lines: ByteBuffer
    private(set) var fields: [Field]

    init() {
        self.lines = ByteBuffer()
        self.fields = []
    }

    /// Fields from name-value pairs, as if a client had sent them (tests, local callers).
    init(_ pairs: [(String, String)]) {
        self.init()
        for (name, value) in pairs {
            Array(name.utf8).withUnsafeBytes { name in
                Array(value.utf8).withUnsafeBytes { value in self.append(name: name, value: value) }
            }
        }
    }

    var count: Int { self.fields.count }
    var isEmpty: Bool { self.fields.isEmpty }

    /// Empties the fields, keeping the memory when nothing else holds it (the next request
    /// of a connection reuses the previous one's).
    mutating func removeAll() {
        self.lines.clear()
        self.fields.removeAll(keepingCapacity: true)
    }

    /// Small enough to go back to `RequestFieldsPool`: a large head's memory is let go.
    var isReusable: Bool { self.lines.capacity <= Self.keptCapacity }

    private static let keptCapacity = 4096

    mutating func append(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        // One allocation for a usual head instead of one per doubling from one field.
        if self.fields.capacity == 0 { self.fields.reserveCapacity(16) }
        let start = self.lines.writerIndex
        let length = name.count + 2 + value.count + 2
        // One write per line: four ByteBuffer writes cost four uniqueness and capacity checks.
        self.lines.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { memory in
            var line = ReservedBytesWriter(memory)
            line.write(name)
            line.write(": " as StaticString)
            line.write(value)
            line.write("\r\n" as StaticString)
            return length
        }
        let nameEnd = start + name.count
        self.fields.append(Field(start: Int32(start), nameEnd: Int32(nameEnd), end: Int32(start + length)))
    }

    /// Calls `body` with the bytes of every line (`lines` from its start) and the fields.
    @inline(__always)
    func withLines<Result>(_ body: (UnsafeRawBufferPointer, [Field]) throws -> Result) rethrows -> Result {
        try self.lines.withUnsafeReadableBytes { try body($0, self.fields) }
    }

    /// The values of the fields named `name` (ASCII case ignored), in order.
    func values(_ name: String) -> [String] {
        let lowercased = Array(name.lowercased().utf8)
        return self.withLines { p, fields in
            fields.compactMap { field in
                let fieldName = UnsafeRawBufferPointer(rebasing: p[Int(field.start)..<Int(field.nameEnd)])
                guard HeaderName.equals(fieldName, lowercased: lowercased) else { return nil }
                return String(decoding: UnsafeRawBufferPointer(rebasing: p[field.valueStart..<field.valueEnd]), as: UTF8.self)
            }
        }
    }

    /// Every field as a name-value pair of strings, in order.
    var pairs: [(name: String, value: String)] {
        self.withLines { p, fields in
            fields.map { field in
                (
                    String(decoding: UnsafeRawBufferPointer(rebasing: p[Int(field.start)..<Int(field.nameEnd)]), as: UTF8.self),
                    String(decoding: UnsafeRawBufferPointer(rebasing: p[field.valueStart..<field.valueEnd]), as: UTF8.self)
                )
            }
        }
    }
}

/// The field memory of the request heads being read on one event loop (`LoopContext`), shared
/// by its connections: a head takes storage when its request line comes and the parser gives it
/// back when the request has ended, so an idle keep-alive connection holds none (it held
/// about 1.3 KiB per connection, `Benchmarks/idle-memory`), and a busy one still allocates
/// nothing per request.
final class RequestFieldsPool {
    private var free: [RequestFields] = []

    /// More are freed: as many as heads a loop reads at one time, not one per connection.
    static let maxKept = 64

    /// Emptied storage: one given back, or a new one.
    func take() -> RequestFields {
        guard var fields = self.free.popLast() else { return RequestFields() }
        // Memory still shared with a head someone holds is copied, not overwritten.
        fields.removeAll()
        return fields
    }

    func give(_ fields: RequestFields) {
        guard fields.isReusable, self.free.count < Self.maxKept else { return }
        if self.free.capacity == 0 { self.free.reserveCapacity(Self.maxKept) }
        self.free.append(fields)
    }

    var count: Int { self.free.count }
}

@available(*, unavailable)
extension RequestFieldsPool: Sendable {}
