import NIOCore
import PortcullisPolicy
import PortcullisStore
import Testing

@testable import PortcullisProxy

/// STYLE.md "Errors": a struct over a private code, a reason and the throw site, compared on the
/// code alone; what users read (`description`) is the reason as it always was, and the throw
/// site shows in `debugDescription`.
@Suite struct ErrorConventionTests {
    @Test func storeErrorsCompareOnTheirCodeAlone() {
        let one = StoreError(.unknownClient, reason: "no client 'a'")
        let other = StoreError(.unknownClient, reason: "no client 'b'")
        #expect(one == other)
        #expect(one.line != other.line)
        #expect(Set([one, other]).count == 1)
        #expect(one != StoreError(.duplicateClient, reason: "no client 'a'"))
    }

    @Test func storeErrorsReadAsTheirReasonAndRecordTheThrowSite() {
        let line: UInt = #line + 1
        let error = StoreError(.io, reason: "cannot write the audit trail /x: EACCES")
        #expect(error.description == "cannot write the audit trail /x: EACCES")
        #expect("\(error)" == "cannot write the audit trail /x: EACCES")
        #expect(error.file == #fileID && error.line == line)
        #expect(error.debugDescription == "io: cannot write the audit trail /x: EACCES (\(#fileID):\(line))")
    }

    @Test func gatewayErrorsReadAsTheirReason() {
        let line: UInt = #line + 1
        let error = GatewayError(.cannotListen, reason: "cannot listen: address in use")
        #expect("\(error)" == "cannot listen: address in use")
        #expect(error == GatewayError(.cannotListen, reason: "other words"))
        #expect(error != GatewayError(.drainTimeout, reason: "cannot listen: address in use"))
        #expect(error.debugDescription.hasSuffix("(\(#fileID):\(line))"))
    }

    @Test func limitsInputErrorsKeepTheirFieldInTheMessage() {
        let error = LimitsInputError(.wrongType, field: "limits.rate", reason: "expected a string")
        #expect(error.description == "limits.rate: expected a string")
        #expect(error == LimitsInputError(.wrongType, field: "limits.burst", reason: "expected a whole number"))
        #expect(error.debugDescription.contains("wrongType: limits.rate: expected a string (\(#fileID):"))
    }

    @Test func framingErrorsSpellTheirNumberOnlyWhenRead() {
        let line: UInt = #line + 1
        let error = HTTPFramingError(.tooManyFields, reason: "more than", limit: 100, unit: "header fields")
        #expect(error.description == "more than 100 header fields")
        #expect(error == HTTPFramingError(.tooManyFields, reason: "malformed header line"))
        #expect(error != HTTPFramingError(.headerField, reason: "more than", limit: 100, unit: "header fields"))
        #expect(error.debugDescription == "tooManyFields: more than 100 header fields (\(#fileID):\(line))")
    }

    /// The parser's refusals read as before (the 400 body), and name where they were made.
    @Test func parseErrorsKeepTheBadRequestTextAndTheParserThrowSite() throws {
        var parser = RequestParser(maxHeadBytes: 65_536)
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        do throws(RequestParseError) {
            _ = try parser.next(&buffer)
            Issue.record("two Host headers accepted")
        } catch {
            #expect(error.kind == .malformed)
            #expect(error.code == .malformed)
            #expect(error.description == "more than one Host header")
            #expect("\(error.file)".hasSuffix("RequestParser.swift"))
            #expect(error.debugDescription.hasPrefix("malformed: more than one Host header (PortcullisProxy/RequestParser.swift:"))
        }

        var small = RequestParser(maxHeadBytes: 64)
        var long = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + String(repeating: "a", count: 100))
        do throws(RequestParseError) {
            _ = try small.next(&long)
            Issue.record("a head over the limit accepted")
        } catch {
            #expect(error.kind == .headTooLarge)
            #expect(error.description == "request head larger than 64 bytes")
        }
    }

    @Test func upstreamProtocolErrorsReadAsBefore() {
        var parser = UpstreamResponseParser()
        parser.expectResponse(toHEAD: false)
        var buffer = ByteBuffer(string: "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n")
        do throws(UpstreamProtocolError) {
            _ = try parser.next(&buffer)
            Issue.record("a bare LF accepted")
        } catch {
            #expect(error.code == .malformedHead)
            #expect(error.description == "bare LF in the head of the response")
        }
    }
}
