import PortcullisPolicy
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// GETs key sets and OpenID configurations over the manager's shared `HTTPClient`: `200 OK`
/// only, no redirects, bodies up to a size limit, each exchange under one deadline.
///
/// Every URL is checked before it is fetched: `https://`, or plain `http://` to a loopback
/// address (tests, a local IdP), and no user info (`http://localhost@elsewhere/` goes
/// elsewhere).
struct JWKSFetcher: Sendable {
    let client: HTTPClient
    let maximumBytes: Int
    let timeout: Duration

    static let discoveryPath = "/.well-known/openid-configuration"

    /// The key set document at `url`, not yet parsed.
    func keySetDocument(at url: String) async throws(KeySetError) -> [UInt8] {
        try Self.checkURL(url)
        return try await self.get(url, accept: "application/jwk-set+json, application/json")
    }

    /// The `jwks_uri` of `issuer`'s OpenID configuration, fetched from `issuer` (one trailing
    /// slash trimmed) + `/.well-known/openid-configuration`. Its `issuer` must be `issuer`
    /// exactly (OpenID Connect Discovery 1.0 §4.3). The `jwks_uri` must be `https://`, or
    /// plain `http://` to a loopback address when the configuration itself came that way.
    func keySetURL(discoveredFrom issuer: String) async throws(KeySetError) -> String {
        let base = issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer
        let url = base + Self.discoveryPath
        let discoveryIsPlainHTTP = try Self.checkURL(url)
        let body = try await self.get(url, accept: "application/json")
        guard case .object(let document)? = try? JSONValue.parse(body) else {
            throw KeySetError(.invalidDiscoveryDocument, reason: "\(url) is not a JSON object")
        }
        guard let advertised = document["issuer"]?.stringValue else {
            throw KeySetError(.invalidDiscoveryDocument, reason: "\(url) has no string \"issuer\"")
        }
        guard advertised == issuer else {
            throw KeySetError(
                .issuerMismatch,
                reason: "\(url) names issuer \"\(advertised)\", not the configured \"\(issuer)\""
            )
        }
        guard let keySetURL = document["jwks_uri"]?.stringValue else {
            throw KeySetError(.invalidDiscoveryDocument, reason: "\(url) has no string \"jwks_uri\"")
        }
        let keySetIsPlainHTTP: Bool
        do throws(KeySetError) {
            keySetIsPlainHTTP = try Self.checkURL(keySetURL)
        } catch {
            throw KeySetError(.insecureURL, reason: "\(url) gives jwks_uri \(keySetURL): \(error.reason)")
        }
        if keySetIsPlainHTTP && !discoveryIsPlainHTTP {
            throw KeySetError(
                .insecureURL,
                reason: "\(url) gives a plain http jwks_uri \(keySetURL); only https is accepted from an https configuration"
            )
        }
        return keySetURL
    }

    private func get(_ url: String, accept: String) async throws(KeySetError) -> [UInt8] {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "accept", value: accept)
        request.headers.add(name: "user-agent", value: "portcullis")
        let response: HTTPClientResponse
        do {
            response = try await self.client.execute(request, deadline: .now() + TimeAmount(self.timeout))
        } catch {
            throw KeySetError(.unreachable, reason: "GET \(url) failed: \(error)")
        }
        guard response.status == .ok else {
            // Read a little so the connection can be reused; the body is not logged.
            _ = try? await response.body.collect(upTo: 4096)
            throw KeySetError(.httpStatus, reason: "GET \(url) answered \(response.status.code) \(response.status.reasonPhrase)")
        }
        do {
            let body = try await response.body.collect(upTo: self.maximumBytes)
            return Array(body.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw KeySetError(.tooLarge, reason: "GET \(url): body is larger than \(self.maximumBytes) bytes")
        } catch {
            throw KeySetError(.unreachable, reason: "GET \(url) failed while reading the body: \(error)")
        }
    }

    /// Throws unless `url` may be fetched; returns whether it is plain `http://` (to loopback).
    @discardableResult
    static func checkURL(_ url: String) throws(KeySetError) -> Bool {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), let host = parsed.host, !host.isEmpty else {
            throw KeySetError(.insecureURL, reason: "\(url) is not an absolute URL")
        }
        guard parsed.user == nil, parsed.password == nil else {
            throw KeySetError(.insecureURL, reason: "\(url) carries user info; key sets are fetched without credentials")
        }
        switch scheme {
        case "https":
            return false
        case "http":
            guard Self.isLoopback(host) else {
                throw KeySetError(
                    .insecureURL,
                    reason: "\(url): keys must be fetched over https (plain http only from a loopback address)"
                )
            }
            return true
        default:
            throw KeySetError(.insecureURL, reason: "\(url): keys must be fetched over https")
        }
    }

    /// `localhost`, `127.0.0.0/8` in strict dotted decimal, or `::1`.
    static func isLoopback(_ host: String) -> Bool {
        var host = Substring(host)
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = host.dropFirst().dropLast()
        }
        if host.lowercased() == "localhost" {
            return true
        }
        if host == "::1" || host == "0:0:0:0:0:0:0:1" {
            return true
        }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return false }
        for octet in octets {
            guard !octet.isEmpty, octet.count <= 3, octet.allSatisfy(\.isASCII), octet.allSatisfy(\.isNumber),
                octet.count == 1 || octet.first != "0", let value = Int(octet), value <= 255
            else {
                return false
            }
        }
        return octets[0] == "127"
    }
}
