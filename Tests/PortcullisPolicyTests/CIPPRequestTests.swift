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
        ("tenantId=a.com", .named("a.com")),
        ("TENANTID=a.com&tenantfilter=A.com", .named("a.com")),
        ("tenantFilter=a.com&tenantfilter=b.com", .several(["a.com", "b.com"])),
        ("tenantFilter=a.com&tenantID=b.com", .several(["a.com", "b.com"])),
        ("tenantFilter=", .ambiguous("tenantFilter in the query is empty")),
        ("tenantFilter", .ambiguous("tenantFilter in the query has no readable value")),
        ("tenantFilter=%zz", .ambiguous("tenantFilter in the query has no readable value")),
        ("%zz=1", .ambiguous("a query parameter name is not readable")),
        ("tenantFilterX=a.com", .none),
        ("tenant=a.com", .none),
    ] as [(String?, CIPPRequest.Tenant)])
    func tenantInTheQuery(query: String?, expected: CIPPRequest.Tenant) {
        #expect(CIPPRequest.tenant(inQuery: query.map { Substring($0) }) == expected)
    }

    @Test(arguments: [
        (#"{"tenantFilter":"contoso.onmicrosoft.com","ID":"x"}"#, CIPPRequest.Tenant.named("contoso.onmicrosoft.com")),
        (#"{"TenantFilter":{"value":"contoso.onmicrosoft.com","label":"Contoso"}}"#, .named("contoso.onmicrosoft.com")),
        (#"{"tenantfilter":{"Value":"a.com"}}"#, .named("a.com")),
        (#"{"tenantID":"a.com"}"#, .named("a.com")),
        (#"{"TenantId":{"value":"a.com"},"tenantFilter":"A.COM"}"#, .named("a.com")),
        (#"{"tenantFilter":"a.com","tenantID":"b.com"}"#, .several(["a.com", "b.com"])),
        (#"{"ID":"x"}"#, .none),
        (#"{"tenantFilter":null}"#, .none),
        ("", .none),
        (#"{"tenantFilter":42}"#, .ambiguous("tenantFilter in the body is neither a string nor {value}")),
        (#"{"tenantId":["a.com"]}"#, .ambiguous("tenantId in the body is neither a string nor {value}")),
        (#"{"tenantFilter":{"label":"x"}}"#, .ambiguous("tenantFilter in the body is an object without one string value")),
        (#"{"tenantFilter":{"value":"a","VALUE":"b"}}"#, .ambiguous("tenantFilter in the body is an object without one string value")),
        (#"{"tenantFilter":"a.com","TENANTFILTER":"b.com"}"#, .several(["a.com", "b.com"])),
        (#"[{"tenantFilter":"a.com"}]"#, .ambiguous("the request body is not a JSON object")),
        (#"{"tenantFilter":"a.com"} trailing"#, .ambiguous("the request body is not a JSON object")),
        ("tenantFilter=a.com", .ambiguous("the request body is not a JSON object")),
    ] as [(String, CIPPRequest.Tenant)])
    func tenantInTheBody(body: String, expected: CIPPRequest.Tenant) {
        #expect(CIPPRequest.tenant(inJSONBody: Array(body.utf8)) == expected)
    }

    @Test func theQueryAndTheBodyMergeByTheEveryFieldRule() {
        #expect(CIPPRequest.Tenant.named("a.com").merged(with: .named("A.com")) == .named("a.com"))
        #expect(CIPPRequest.Tenant.named("a.com").merged(with: .named("b.com")) == .several(["a.com", "b.com"]))
        #expect(CIPPRequest.Tenant.none.merged(with: .named("b.com")) == .named("b.com"))
        #expect(CIPPRequest.Tenant.named("a.com").merged(with: .ambiguous("x")) == .ambiguous("x"))
    }

    @Test(arguments: [
        ("/api/ListUsers", false),
        ("/api/Exec*", true),
        ("/api/Exec%3F", true),
        ("/api/Exec%3f", true),
        ("/api/List%2AUsers", true),
        ("/api/List%5bUsers%5D", true),
        ("/api/List[Users]", true),
        ("/api/List%20Users", false),
        ("/api/List%2", false),
    ])
    func wildcardsInEndpointNamesAreFound(path: String, expected: Bool) {
        #expect(CIPPRequest.hasWildcard(path.utf8) == expected)
    }

    @Test func batchItemsAreReadWithTheirQueryObjectBeforeTheirBody() throws {
        let body = #"""
            {"requests":[
              {"id":"1","method":"get","url":"ListUsers","query":{"tenantFilter":"a.com"}},
              {"id":"2","method":"POST","url":"ExecResetPass","body":{"tenantFilter":"b.com","ID":"u"}},
              {"id":"3","method":"POST","url":"EditContact","query":{"TenantFilter":"a.com"},"body":{"tenantID":"c.com"}}
            ]}
            """#
        let items = try CIPPRequest.batch(inJSONBody: Array(body.utf8), maximumItems: 20).get()
        #expect(items.map(\.method) == ["GET", "POST", "POST"])
        #expect(items.map(\.path) == ["/api/ListUsers", "/api/ExecResetPass", "/api/EditContact"])
        #expect(items.map(\.tenant) == [.named("a.com"), .named("b.com"), .several(["a.com", "c.com"])])
    }

    @Test(arguments: [
        #"{"requests":[{"method":"GET","url":"/api/ListUsers"}]}"#,
        #"{"requests":[{"method":"GET","url":"https://evil.example/api/x"}]}"#,
        #"{"requests":[{"method":"GET","url":"ListUsers?tenantFilter=a.com"}]}"#,
        #"{"requests":[{"method":"GET","url":"Exec*"}]}"#,
        #"{"requests":[{"method":"GET","url":"List[U]sers"}]}"#,
        #"{"requests":[{"method":"GET","url":"../ListUsers"}]}"#,
        #"{"requests":[{"method":"GET"}]}"#,
        #"{"requests":[{"method":"G E T","url":"ListUsers"}]}"#,
        #"{"requests":[{"method":"GET","url":"ListUsers","query":"tenantFilter=a.com"}]}"#,
        #"{"requests":[{"method":"GET","url":"ListUsers","query":{"tenantFilter":7}}]}"#,
        #"{"requests":[{"method":"GET","url":"ListUsers","body":[{"tenantFilter":"a.com"}]}]}"#,
        #"{"requests":[{"method":"GET","url":"ListUsers","body":"x"}]}"#,
        #"{"requests":[{"method":"GET","url":"ListUsers","URL":"ExecOffboardUser"}]}"#,
        #"{"requests":[1]}"#,
        #"{"requests":{}}"#,
        #"{"requests":[],"REQUESTS":[]}"#,
        #"{}"#,
        "not json",
    ])
    func malformedBatchesAreRefused(body: String) {
        #expect(throws: CIPPRequest.BatchError.self) { try CIPPRequest.batch(inJSONBody: Array(body.utf8), maximumItems: 20).get() }
    }

    @Test func aBatchOverTheItemLimitIsRefused() throws {
        let item = #"{"id":"1","method":"GET","url":"ListLogs"}"#
        let three = #"{"requests":["# + [item, item, item].joined(separator: ",") + "]}"
        #expect(try CIPPRequest.batch(inJSONBody: Array(three.utf8), maximumItems: 3).get().count == 3)
        let error = #expect(throws: CIPPRequest.BatchError.self) { try CIPPRequest.batch(inJSONBody: Array(three.utf8), maximumItems: 2).get() }
        #expect(error?.description == "the $batch has 3 requests; at most 2 are allowed")
    }
}

@Suite struct TenantDirectoryTests {
    static let listTenants = #"""
        [
          {"customerId":"3B2E6F0A-6C1D-4A57-9A3E-0C4B8F1D2E01","defaultDomainName":"contoso.onmicrosoft.com","displayName":"Contoso"},
          {"customerId":"7d41c9b5-2f8e-4d06-b1a7-5e9c3a2f4b02","defaultDomainName":"fabrikam.onmicrosoft.com","displayName":"Fabrikam"},
          {"displayName":"*All Tenants","defaultDomainName":"AllTenants"}
        ]
        """#

    @Test func tenantsResolveByIdOrDomainInAnyCase() throws {
        let directory = try TenantDirectory.parse(Array(Self.listTenants.utf8), source: "t.json").get()
        #expect(directory.tenants.count == 2)
        let contoso = try #require(directory.resolve("CONTOSO.onmicrosoft.com"))
        #expect(contoso.id == "3b2e6f0a-6c1d-4a57-9a3e-0c4b8f1d2e01")
        #expect(directory.resolve("3b2e6f0a-6c1d-4a57-9a3e-0c4b8f1d2e01") == contoso)
        #expect(directory.resolve("AllTenants") == nil)
        #expect(directory.resolve("northwind.onmicrosoft.com") == nil)
    }

    @Test func cippsWrappedAnswerIsReadToo() throws {
        let wrapped = #"{"Results":"# + Self.listTenants + "}"
        #expect(try TenantDirectory.parse(Array(wrapped.utf8), source: "t.json").get().tenants.count == 2)
    }

    @Test(arguments: ["[]", "{}", "not json", #"[{"customerId":"x"}]"#, "[1]"])
    func whatIsNotATenantListIsRefused(text: String) {
        #expect(throws: TenantDirectoryError.self) { try TenantDirectory.parse(Array(text.utf8), source: "t.json").get() }
    }

    @Test func aNameTwoTenantsClaimResolvesToNeither() {
        let directory = TenantDirectory(tenants: [("id-1", "a.com"), ("id-2", "a.com")], source: "t")
        #expect(directory.resolve("a.com") == nil)
        #expect(directory.resolve("id-1")?.domain == "a.com")
    }

    @Test func aBlockListCannotBeSidesteppedWithTheOtherForm() throws {
        let directory = try TenantDirectory.parse(Array(Self.listTenants.utf8), source: "t.json").get()
        let blockByDomain = TenantRules(allow: nil, block: ["contoso.onmicrosoft.com"])
        #expect(!blockByDomain.permits("3b2e6f0a-6c1d-4a57-9a3e-0c4b8f1d2e01", directory: directory))
        #expect(!blockByDomain.permits("Contoso.OnMicrosoft.com", directory: directory))
        #expect(blockByDomain.permits("7d41c9b5-2f8e-4d06-b1a7-5e9c3a2f4b02", directory: directory))
        // What the directory cannot resolve is refused: it could be anything, AllTenants included.
        #expect(!blockByDomain.permits("AllTenants", directory: directory))
        #expect(!blockByDomain.permits("northwind.onmicrosoft.com", directory: directory))
        let blockById = TenantRules(allow: nil, block: ["3B2E6F0A-6C1D-4A57-9A3E-0C4B8F1D2E01"])
        #expect(!blockById.permits("contoso.onmicrosoft.com", directory: directory))
        let allowByDomain = TenantRules(allow: ["fabrikam.onmicrosoft.com"])
        #expect(allowByDomain.permits("7D41C9B5-2F8E-4D06-B1A7-5E9C3A2F4B02", directory: directory))
        #expect(!allowByDomain.permits("contoso.onmicrosoft.com", directory: directory))
    }
}
