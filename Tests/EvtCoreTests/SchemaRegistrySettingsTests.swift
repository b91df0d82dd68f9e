import Testing
@testable import EvtCore

@Suite("schema registry settings")
struct SchemaRegistrySettingsTests {
    func resolve(_ url: String?, _ environment: [String: String] = [:]) throws -> SchemaRegistrySettings? {
        try SchemaRegistrySettings.resolve(url: url, environment: environment)
    }

    func usageError(_ url: String?, _ environment: [String: String] = [:]) -> EvtError? {
        do {
            _ = try resolve(url, environment)
            return nil
        } catch {
            return error as? EvtError
        }
    }

    @Test("no --schema-registry and no EVT_SCHEMA_REGISTRY_URL: no registry")
    func none() throws {
        #expect(try resolve(nil) == nil)
        #expect(try resolve(nil, ["EVT_SCHEMA_REGISTRY_URL": ""]) == nil)
    }

    @Test("--schema-registry wins over EVT_SCHEMA_REGISTRY_URL; a trailing slash is dropped, a path kept")
    func flagWins() throws {
        let settings = try resolve("https://registry.example:8081/base/", ["EVT_SCHEMA_REGISTRY_URL": "http://other:1"])
        #expect(settings?.baseURL == "https://registry.example:8081/base")
        #expect(try resolve(nil, ["EVT_SCHEMA_REGISTRY_URL": "http://other:1"])?.baseURL == "http://other:1")
    }

    @Test("the URL's userinfo is percent-decoded, so a password may hold @ and :; it never shows in the description")
    func percentDecodedUserinfo() throws {
        let settings = try #require(try resolve("https://u%40corp:p%40ss%3Aw@host:8081"))
        #expect(settings.user == "u@corp" && settings.password == "p@ss:w")
        #expect(settings.baseURL == "https://host:8081")
        #expect(settings.redacted == "https://u%40corp:***@host:8081")
        #expect(!"\(settings)".contains("p%40ss") && !String(reflecting: settings).contains("p%40ss") && !"\(settings)".contains("p@ss"))
        #expect(settings.credentialsSource == "the user:password@ of --schema-registry")
    }

    @Test("EVT_SCHEMA_REGISTRY_USER and _PASSWORD win over the URL's userinfo, and go together")
    func environmentCredentials() throws {
        let settings = try resolve("http://a:b@host", ["EVT_SCHEMA_REGISTRY_USER": "evt", "EVT_SCHEMA_REGISTRY_PASSWORD": "p@ss:w"])
        #expect(settings?.user == "evt" && settings?.password == "p@ss:w")
        #expect(settings?.credentialsSource == "EVT_SCHEMA_REGISTRY_USER and EVT_SCHEMA_REGISTRY_PASSWORD")
        #expect(usageError("http://host", ["EVT_SCHEMA_REGISTRY_USER": "evt"])?.cause == .usage)
        #expect(try resolve("http://host")?.user == nil)
    }

    @Test("only http:// and https:// URLs with a host; a bad one is a usage error that hides its password")
    func badURLs() {
        for url in ["ftp://host", "host:8081", "", "http://", "http://:8081", "https://u:secret@/x", "http://host?x=1"] {
            let error = usageError(url)
            #expect(error?.cause == .usage, "\(url)")
            #expect(error.map { !$0.message.contains("secret") } ?? true, "\(error?.message ?? "")")
        }
        #expect(usageError(nil, ["EVT_SCHEMA_REGISTRY_URL": "redis://x"])?.message.contains("EVT_SCHEMA_REGISTRY_URL") == true)
        #expect(usageError("http://u:p%4@host")?.message.contains("two hex digits") == true)
    }

    @Test("the TLS files must be readable; a key needs its certificate")
    func tlsFiles() throws {
        #expect(usageError("https://host", ["EVT_SCHEMA_REGISTRY_CACERT": "/nonexistent/ca.pem"])?.message.contains("EVT_SCHEMA_REGISTRY_CACERT") == true)
        #expect(usageError("https://host", ["EVT_SCHEMA_REGISTRY_KEY": "/etc/hostname"])?.cause == .usage)
        let settings = try resolve("https://host", ["EVT_SCHEMA_REGISTRY_CACERT": "/etc/hostname", "EVT_SCHEMA_REGISTRY_CERT": "/etc/hostname"])
        #expect(settings?.caCertificates == "/etc/hostname" && settings?.clientCertificate == "/etc/hostname" && settings?.clientKey == nil)
    }

    @Test("a subject is percent-encoded as one path segment")
    func pathSegment() {
        #expect(SchemaRegistry.pathSegment("orders-value") == "orders-value")
        #expect(SchemaRegistry.pathSegment("a/b c:é") == "a%2Fb%20c%3A%C3%A9")
    }
}
