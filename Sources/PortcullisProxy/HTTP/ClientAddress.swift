import PortcullisPolicy

/// The client address of a request and the `X-Forwarded-For` value sent upstream.
///
/// The client is the peer, or, only when the peer is a trusted proxy, the rightmost
/// `X-Forwarded-For` entry that is not itself trusted. Upstream sees the resolved client
/// first (backends such as CIPP take the first entry as the caller), then the trusted hops
/// that relayed it, then the peer; entries an untrusted party could have written are dropped.
struct ClientAddress {
    var address: IPAddress
    var forwardedFor: String

    static func resolve(peer: IPAddress, peerText: String, fields: RequestFields, trusted: CIDRSet) -> ClientAddress {
        guard !trusted.isEmpty, trusted.contains(peer) else {
            return ClientAddress(address: peer, forwardedFor: peerText)
        }
        // Every X-Forwarded-For field, in order, as one list (RFC 9110 5.3).
        let entries = fields.values("x-forwarded-for").flatMap { $0.split(separator: ",") }
        guard !entries.isEmpty else { return ClientAddress(address: peer, forwardedFor: peerText) }
        // Walk right to left through the hops the trusted proxies vouch for.
        var client = peer
        var chain: [String] = [peerText]
        for entry in entries.reversed() {
            let text = entry.trimmingASCIIWhitespace()
            guard let address = Self.parseEntry(text) else { break }
            client = address
            chain.append(address.description)
            if !trusted.contains(address) { break }
        }
        return ClientAddress(address: client, forwardedFor: chain.reversed().joined(separator: ", "))
    }

    /// An `X-Forwarded-For` entry: an address, or `a.b.c.d:port` / `[v6]:port` as some load
    /// balancers write it. Anything else ends the walk: it is not believed.
    static func parseEntry(_ text: Substring) -> IPAddress? {
        if let address = IPAddress(utf8: text.utf8) { return address.unmappedIPv4 }
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            let inner = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy(\.isASCIIDigit) && rest.count > 1)
            else { return nil }
            return IPAddress(utf8: inner.utf8)?.unmappedIPv4
        }
        if let colon = text.lastIndex(of: ":"), text.firstIndex(of: ":") == colon {
            let port = text[text.index(after: colon)...]
            guard !port.isEmpty, port.allSatisfy(\.isASCIIDigit) else { return nil }
            if case .v4 = IPAddress(utf8: text[..<colon].utf8) { return IPAddress(utf8: text[..<colon].utf8) }
        }
        return nil
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { self.isASCII && self.isNumber }
}
