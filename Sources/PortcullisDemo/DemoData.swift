/// The fixed directory the demo backend serves: three tenants, their users and mailboxes, and a
/// few log entries, shaped like CIPP's answers (CIPP passes Microsoft Graph objects through).
enum DemoData {
    struct Tenant {
        var customerId: String
        var defaultDomainName: String
        var displayName: String
    }

    struct User {
        var id: String
        var displayName: String
        var givenName: String
        var surname: String
        var localPart: String
        var jobTitle: String
        var department: String
        var accountEnabled: Bool
    }

    static let tenants: [Tenant] = [
        Tenant(
            customerId: "3b2e6f0a-6c1d-4a57-9a3e-0c4b8f1d2e01",
            defaultDomainName: "contoso.onmicrosoft.com",
            displayName: "Contoso Ltd"
        ),
        Tenant(
            customerId: "7d41c9b5-2f8e-4d06-b1a7-5e9c3a2f4b02",
            defaultDomainName: "fabrikam.onmicrosoft.com",
            displayName: "Fabrikam Inc"
        ),
        Tenant(
            customerId: "c8a05e3d-91b4-47f2-8d6c-2a7e1f9b5c03",
            defaultDomainName: "northwind.onmicrosoft.com",
            displayName: "Northwind Traders"
        ),
    ]

    private static let usersByTenant: [String: [User]] = [
        "contoso.onmicrosoft.com": [
            User(
                id: "a1f3c2e4-0b6d-4e8f-9a1b-2c3d4e5f6a01", displayName: "Adele Vance", givenName: "Adele",
                surname: "Vance", localPart: "adele.vance", jobTitle: "Retail Manager", department: "Retail",
                accountEnabled: true),
            User(
                id: "a1f3c2e4-0b6d-4e8f-9a1b-2c3d4e5f6a02", displayName: "Alex Wilber", givenName: "Alex",
                surname: "Wilber", localPart: "alex.wilber", jobTitle: "Marketing Assistant",
                department: "Marketing", accountEnabled: true),
            User(
                id: "a1f3c2e4-0b6d-4e8f-9a1b-2c3d4e5f6a03", displayName: "Megan Bowen", givenName: "Megan",
                surname: "Bowen", localPart: "megan.bowen", jobTitle: "Marketing Manager",
                department: "Marketing", accountEnabled: true),
            User(
                id: "a1f3c2e4-0b6d-4e8f-9a1b-2c3d4e5f6a04", displayName: "Lee Gu", givenName: "Lee", surname: "Gu",
                localPart: "lee.gu", jobTitle: "Director", department: "Manufacturing", accountEnabled: false),
        ],
        "fabrikam.onmicrosoft.com": [
            User(
                id: "b2e4d3f5-1c7e-4f90-8b2c-3d4e5f6a7b01", displayName: "Diego Siciliani", givenName: "Diego",
                surname: "Siciliani", localPart: "diego.siciliani", jobTitle: "HR Manager", department: "HR",
                accountEnabled: true),
            User(
                id: "b2e4d3f5-1c7e-4f90-8b2c-3d4e5f6a7b02", displayName: "Isaiah Langer", givenName: "Isaiah",
                surname: "Langer", localPart: "isaiah.langer", jobTitle: "Sales Rep", department: "Sales",
                accountEnabled: true),
            User(
                id: "b2e4d3f5-1c7e-4f90-8b2c-3d4e5f6a7b03", displayName: "Johanna Lorenz", givenName: "Johanna",
                surname: "Lorenz", localPart: "johanna.lorenz", jobTitle: "Senior Engineer",
                department: "Engineering", accountEnabled: true),
        ],
        "northwind.onmicrosoft.com": [
            User(
                id: "c3f5e4a6-2d8f-4a01-9c3d-4e5f6a7b8c01", displayName: "Nestor Wilke", givenName: "Nestor",
                surname: "Wilke", localPart: "nestor.wilke", jobTitle: "Director", department: "Operations",
                accountEnabled: true),
            User(
                id: "c3f5e4a6-2d8f-4a01-9c3d-4e5f6a7b8c02", displayName: "Pradeep Gupta", givenName: "Pradeep",
                surname: "Gupta", localPart: "pradeep.gupta", jobTitle: "Accountant", department: "Finance",
                accountEnabled: true),
            User(
                id: "c3f5e4a6-2d8f-4a01-9c3d-4e5f6a7b8c03", displayName: "Lynne Robbins", givenName: "Lynne",
                surname: "Robbins", localPart: "lynne.robbins", jobTitle: "Planner", department: "Retail",
                accountEnabled: true),
        ],
    ]

    /// The tenant whose default domain, customer id or display name matches, ignoring case.
    static func tenant(matching filter: String) -> Tenant? {
        let wanted = filter.lowercased()
        return self.tenants.first {
            $0.defaultDomainName == wanted || $0.customerId == wanted || $0.displayName.lowercased() == wanted
        }
    }

    static func users(of tenant: Tenant) -> [User] {
        self.usersByTenant[tenant.defaultDomainName] ?? []
    }

    /// The user of `tenant` named by UPN or object id, ignoring case.
    static func user(_ identifier: String, in tenant: Tenant) -> User? {
        let wanted = identifier.lowercased()
        return self.users(of: tenant).first {
            $0.id == wanted || self.userPrincipalName($0, tenant) == wanted
        }
    }

    static func userPrincipalName(_ user: User, _ tenant: Tenant) -> String {
        "\(user.localPart)@\(tenant.defaultDomainName)"
    }

    static func tenantJSON(_ tenant: Tenant) -> [String: Any] {
        [
            "customerId": tenant.customerId,
            "defaultDomainName": tenant.defaultDomainName,
            "displayName": tenant.displayName,
            "delegatedPrivilegeStatus": "granularDelegatedAdminPrivileges",
            "domains": [tenant.defaultDomainName],
        ]
    }

    static func userJSON(_ user: User, _ tenant: Tenant) -> [String: Any] {
        let upn = self.userPrincipalName(user, tenant)
        return [
            "id": user.id,
            "displayName": user.displayName,
            "givenName": user.givenName,
            "surname": user.surname,
            "userPrincipalName": upn,
            "mail": upn,
            "jobTitle": user.jobTitle,
            "department": user.department,
            "accountEnabled": user.accountEnabled,
            "Tenant": tenant.defaultDomainName,
        ]
    }

    static func mailboxJSON(_ user: User, _ tenant: Tenant) -> [String: Any] {
        let upn = self.userPrincipalName(user, tenant)
        return [
            "Id": user.id,
            "ExchangeGuid": user.id,
            "UPN": upn,
            "displayName": user.displayName,
            "primarySmtpAddress": upn,
            "recipientType": "UserMailbox",
            "recipientTypeDetails": "UserMailbox",
            "AdditionalEmailAddresses": "",
        ]
    }

    static let logs: [[String: Any]] = [
        [
            "DateTime": "2025-01-14T08:02:11Z", "Tenant": "contoso.onmicrosoft.com", "API": "ExecResetPass",
            "Message": "Reset password for adele.vance@contoso.onmicrosoft.com", "User": "helpdesk@msp.example",
            "Severity": "Info",
        ],
        [
            "DateTime": "2025-01-14T08:15:40Z", "Tenant": "fabrikam.onmicrosoft.com", "API": "ListUsers",
            "Message": "Listed 3 users", "User": "reporting@msp.example", "Severity": "Debug",
        ],
        [
            "DateTime": "2025-01-14T09:30:02Z", "Tenant": "northwind.onmicrosoft.com", "API": "ExecResetMFA",
            "Message": "Reset MFA for nestor.wilke@northwind.onmicrosoft.com", "User": "helpdesk@msp.example",
            "Severity": "Info",
        ],
        [
            "DateTime": "2025-01-14T10:01:57Z", "Tenant": "None", "API": "Scheduler",
            "Message": "Standards run finished", "User": "CIPP", "Severity": "Warning",
        ],
    ]
}
