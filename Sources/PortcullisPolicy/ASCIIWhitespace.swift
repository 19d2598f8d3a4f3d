extension Substring {
    /// Without leading and trailing spaces and tabs (HTTP's OWS), the only whitespace header
    /// values and form fields may carry around a token.
    @inlinable
    public func trimmingASCIIWhitespace() -> Substring {
        var s = self
        while let first = s.utf8.first, first == 0x20 || first == 0x09 { s = s.dropFirst() }
        while let last = s.utf8.last, last == 0x20 || last == 0x09 { s = s.dropLast() }
        return s
    }
}
