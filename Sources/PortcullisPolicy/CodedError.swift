/// The error convention (a code over a private enum, a reason for the reader, the throw site):
/// errors are equal, and hash, by their code alone; `debugDescription` adds the code and the
/// throw site to what a user reads.
public protocol CodedError: Error, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    associatedtype Code: Hashable
    var code: Code { get }
    var file: String { get }
    var line: UInt { get }
}

extension CodedError {
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }

    public func hash(into hasher: inout Hasher) { hasher.combine(self.code) }

    public var debugDescription: String { "\(self.code): \(self.description) (\(self.file):\(self.line))" }
}
