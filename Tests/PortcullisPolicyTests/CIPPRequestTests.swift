import Testing

@testable import PortcullisPolicy

@Suite struct CIPPRequestTests {
    @Test(arguments: [
        (nil, CIPPRequest.Tenant.none),
        ("", .none),
        ("a=1&b=2", .none),
        ("tenantFilter=contoso.onmicrosoft.com", .named("contoso.onmicrosoft.com")),
        ("TENANTFILTER=contoso.onmicrosoft.com&x=1", .named("contoso.onmicrosoft.com")),
        ("tenant%46ilter=contoso.onmicrosoft.com", .named("contoso.onmicrosoft.com")),
        ("tenantFilter=contoso%2Eonmicrosoft%2ecom", .named("contoso.onmicrosoft.com")),
        ("tenantFilter=a.com&tenantFilter=A.COM", .named("a.com")),
        ("tenantFilter=a.com&tenantfilter=b.com", .ambiguous("the query names two different tenants")),
        ("tenantFilter=", .ambiguous("tenantFilter in the query is empty")),
        ("tenantFilter", .ambiguous("tenantFilter in the query has no readable value")),
        ("tenantFilter=%zz", .ambiguous("tenantFilter in the query has no readable value")),
        ("tenantFilterX=a.com", .none),
    ] as [(String?, CIPPRequest.Tenant)])
    func tenantInTheQuery(query: String?, expected: CIPPRequest.Tenant) {
        #expect(CIPPRequest.tenant(inQuery: query.map { Substring($0) }) == expected)
    }

    @Test(arguments: [
        (#"{"tenantFilter":"contoso.onmicrosoft.com","ID":"x"}"#, CIPPRequest.Tenant.named("contoso.onmicrosoft.com")),
        (#"{"TenantFilter":{"value":"contoso.onmicrosoft.com","label":"Contoso"}}"#, .named("contoso.onmicrosoft.com")),
        (#"{"tenantfilter":{"Value":"a.com"}}"#, .named("a.com")),
        (#"{"ID":"x"}"#, .none),
        (#"{"tenantFilter":null}"#, .none),
        ("", .none),
        (#"{"tenantFilter":42}"#, .ambiguous("tenantFilter in the body is neither a string nor {value}")),
        (#"{"tenantFilter":{"label":"x"}}"#, .ambiguous("tenantFilter in the body is an object without a string value")),
        (#"{"tenantFilter":"a.com","TENANTFILTER":"b.com"}"#, .ambiguous("the body names two different tenants")),
        (#"[{"tenantFilter":"a.com"}]"#, .ambiguous("the request body is not a JSON object")),
        (#"{"tenantFilter":"a.com"} trailing"#, .ambiguous("the request body is not a JSON object")),
    ] as [(String, CIPPRequest.Tenant)])
    func tenantInTheBody(body: String, expected: CIPPRequest.Tenant) {
        #expect(CIPPRequest.tenant(inJSONBody: Array(body.utf8)) == expected)
    }

    @Test func batchSubRequestsAreReadWithTheirTenants() throws {
        let body = #"""
            {"requests":[
              {"id":"1","method":"get","url":"ListUsers?tenantFilter=a.com"},
              {"id":"2","method":"POST","url":"ExecResetPass","body":{"tenantFilter":"b.com","ID":"u"}}
            ]}
            """#
        let items = try CIPPRequest.batch(inJSONBody: Array(body.utf8)).get()
        #expect(items.map(\.method) == ["GET", "POST"])
        #expect(items.map(\.target) == ["/api/ListUsers?tenantFilter=a.com", "/api/ExecResetPass"])
        #expect(items.map(\.bodyTenant) == [.none, .named("b.com")])
    }

    @Test(arguments: [
        #"{"requests":[{"method":"GET","url":"/api/ListUsers"}]}"#,
        #"{"requests":[{"method":"GET","url":"https://evil.example/api/x"}]}"#,
        #"{"requests":[{"method":"GET"}]}"#,
        #"{"requests":[{"method":"G E T","url":"ListUsers"}]}"#,
        #"{"requests":{}}"#,
        #"{}"#,
        "not json",
    ])
    func malformedBatchesAreRefused(body: String) {
        #expect(throws: CIPPRequest.BatchError.self) { try CIPPRequest.batch(inJSONBody: Array(body.utf8)).get() }
    }
}
