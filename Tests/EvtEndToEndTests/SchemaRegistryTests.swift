import Foundation
import Testing
import EvtTestSupport
@testable import EvtCore

/// The registry fixture (Fixtures/schema_registry.py) checked with confluent-kafka's own
/// SchemaRegistryClient and serializers (Fixtures/schema_registry_peer.py), so that what evt's
/// client is tested against answers as Confluent's registry does.
@Suite("the schema registry fixture, checked with confluent-kafka's client")
struct SchemaRegistryFixtureTests {
    /// The peer script against `registry`; its JSON report.
    static func peer(_ registry: SchemaRegistryServer, _ options: [String]) throws -> [String: Any] {
        let result = try runProcess(["python3", SchemaRegistryServer.peerScript, "--url", registry.url] + options, timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        return (try? JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]) ?? [:]
    }

    @Test("register, get by id, latest, version, lookup, subjects and serializer round trips for Avro and JSON Schema, with basic auth whose password holds @ and :")
    func basicAuth() throws {
        let registry = try SchemaRegistryServer(user: "evt", password: "p@ss:w/rd")
        let report = try Self.peer(registry, ["--user-info", "evt:p@ss:w/rd"])
        // The bytes SWIFT-C-NOTES records for confluent-kafka 2.16.1's serializers.
        #expect(report["avro_bytes"] as? String == "00000000015408626f6f6b02086769667406", "\(report)")
        #expect(report["json_bytes"] as? String == "00000000027b226964223a377d", "\(report)")

        let refused = try runProcess(["python3", SchemaRegistryServer.peerScript, "--url", registry.url,
                                      "--user-info", "evt:p@ss:wrong"], timeout: 120)
        #expect(refused.status != 0 && refused.stderr.contains("401"), "\(refused.stderr)")
    }

    @Test("the same checks over https with the test CA and a client certificate; none without one")
    func mutualTLS() throws {
        let registry = try SchemaRegistryServer(transport: .mutualTLS)
        let certificates = TestCertificates.shared
        let report = try Self.peer(registry, ["--ca", certificates.ca, "--cert", certificates.clientCertificate,
                                              "--key", certificates.clientKey])
        #expect(report["avro_id"] as? Int == 1 && report["json_id"] as? Int == 2, "\(report)")

        let before = try registry.stats().requests
        let stranger = try runProcess(["python3", SchemaRegistryServer.peerScript, "--url", registry.url, "--ca", certificates.ca,
                                       "--cert", certificates.strangerCertificate, "--key", certificates.strangerKey], timeout: 120)
        #expect(stranger.status != 0, "\(stranger.stdoutText)")
        #expect(try registry.stats().requests == before, "a client without a certificate the registry trusts got an answer")
    }
}

/// evt's registry client (libcurl) against the fixture.
@Suite("the schema registry client")
struct SchemaRegistryClientTests {
    static let order = #"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}"#
    static let event = #"{"type":"object","properties":{"id":{"type":"integer"}}}"#

    static func client(_ url: String, _ environment: [String: String] = [:], timeout: Double = 30) throws -> SchemaRegistry {
        let settings = try #require(try SchemaRegistrySettings.resolve(url: url, environment: environment))
        return try SchemaRegistry(settings, timeout: timeout)
    }

    /// The error `body` throws (nil if none).
    static func error(_ body: () throws -> Void) -> EvtError? {
        do {
            try body()
            return nil
        } catch {
            return error as? EvtError
        }
    }

    @Test("a schema by id is fetched once and cached; every request of a run shares one connection")
    func byIdCached() throws {
        let registry = try SchemaRegistryServer()
        let id = try registry.register(subject: "orders-value", schema: Self.order)
        let jsonID = try registry.register(subject: "events-value", schema: Self.event, type: "JSON")
        let before = try registry.stats()
        let client = try Self.client(registry.url)
        #expect(try client.schema(id: Int32(id)) == RegisteredSchema(id: Int32(id), type: .avro, text: Self.order))
        #expect(try client.schema(id: Int32(id)).text == Self.order)
        #expect(try client.schema(id: Int32(jsonID)) == RegisteredSchema(id: Int32(jsonID), type: .json, text: Self.event))
        let stats = try registry.stats()
        #expect(stats.paths["GET /schemas/ids/\(id)"] == 1 && stats.requests == before.requests + 2, "\(stats)")
        // One connection for the client; one more for the curl that asked for these stats.
        #expect(stats.connections == before.connections + 2, "\(stats)")
    }

    @Test("latest, version, register and lookup; what they return is cached by id")
    func subjects() throws {
        let registry = try SchemaRegistryServer()
        let client = try Self.client(registry.url)
        let first = try client.register(subject: "orders-value", schema: Self.order, type: .avro)
        #expect(first == 1)
        #expect(try client.register(subject: "archive-value", schema: Self.order, type: .avro) == first)
        let second = #"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"n","type":"int","default":0}]}"#
        let secondID = try client.register(subject: "orders-value", schema: second, type: .avro)
        #expect(secondID == 2)
        let jsonID = try client.register(subject: "events-value", schema: Self.event, type: .json)

        #expect(try client.latest(subject: "orders-value") == RegisteredSchema(id: secondID, type: .avro, text: second))
        #expect(try client.version(subject: "orders-value", version: 1) == RegisteredSchema(id: first, type: .avro, text: Self.order))
        #expect(try client.latest(subject: "events-value") == RegisteredSchema(id: jsonID, type: .json, text: Self.event))
        #expect(try client.lookup(subject: "archive-value", schema: Self.order, type: .avro) == first)
        #expect(try client.lookup(subject: "archive-value", schema: second, type: .avro) == nil)
        #expect(try client.lookup(subject: "nobody-value", schema: Self.order, type: .avro) == nil)
        let before = try registry.stats().requests
        #expect(try client.schema(id: secondID).text == second && client.schema(id: jsonID).type == .json)
        #expect(try registry.stats().requests == before, "a schema seen through a subject was fetched again")

        let unknownSubject = Self.error { _ = try client.latest(subject: "nobody-value") }
        #expect(unknownSubject?.cause == .refused(code: "40401") && unknownSubject?.message.contains("subject nobody-value is not in the schema registry") == true,
                "\(unknownSubject?.message ?? "")")
        let unknownVersion = Self.error { _ = try client.version(subject: "orders-value", version: 9) }
        #expect(unknownVersion?.cause == .refused(code: "40402") && unknownVersion?.message.contains("has no version 9") == true,
                "\(unknownVersion?.message ?? "")")
        let unknownID = Self.error { _ = try client.schema(id: 77) }
        #expect(unknownID?.cause == .refused(code: "40403") && unknownID?.message.contains("schema id 77 is not in the schema registry") == true,
                "\(unknownID?.message ?? "")")
        let invalid = Self.error { _ = try client.register(subject: "bad-value", schema: "{not json", type: .avro) }
        #expect(invalid?.cause == .refused(code: "42201") && invalid?.message.contains("would not register") == true, "\(invalid?.message ?? "")")
    }

    @Test("basic auth with @ and : in the password, from the environment and from the percent-encoded URL")
    func basicAuth() throws {
        let registry = try SchemaRegistryServer(user: "evt", password: "p@ss:w")
        let id = try registry.register(subject: "orders-value", schema: Self.order)
        let fromEnvironment = try Self.client(registry.url, ["EVT_SCHEMA_REGISTRY_USER": "evt", "EVT_SCHEMA_REGISTRY_PASSWORD": "p@ss:w"])
        #expect(try fromEnvironment.schema(id: Int32(id)).text == Self.order)
        let fromURL = try Self.client(registry.url.replacingOccurrences(of: "://", with: "://evt:p%40ss%3Aw@"))
        #expect(try fromURL.latest(subject: "orders-value").id == Int32(id))
    }

    @Test("a wrong password or none is refused with a message that names where the credentials come from, never the password")
    func refusedCredentials() throws {
        let registry = try SchemaRegistryServer(user: "evt", password: "right")
        let url = registry.url.replacingOccurrences(of: "://", with: "://evt:wr%40ng@")
        let wrong = Self.error { _ = try Self.client(url).schema(id: 1) }
        #expect(wrong?.cause == .refused(code: "401"), "\(wrong?.message ?? "")")
        let message = wrong?.message ?? ""
        #expect(message.contains("refused the password of user evt") && message.contains("user:password@ of --schema-registry"), "\(message)")
        #expect(!message.contains("wr@ng") && !message.contains("wr%40ng") && message.contains("evt:***@"), "\(message)")

        let fromEnvironment = Self.error {
            _ = try Self.client(registry.url, ["EVT_SCHEMA_REGISTRY_USER": "evt", "EVT_SCHEMA_REGISTRY_PASSWORD": "s3cret"]).schema(id: 1)
        }
        #expect(fromEnvironment?.message.contains("EVT_SCHEMA_REGISTRY_USER and EVT_SCHEMA_REGISTRY_PASSWORD") == true
                && fromEnvironment?.message.contains("s3cret") == false, "\(fromEnvironment?.message ?? "")")

        let none = Self.error { _ = try Self.client(registry.url).schema(id: 1) }
        #expect(none?.cause == .refused(code: "401") && none?.message.contains("wants credentials") == true, "\(none?.message ?? "")")
    }

    @Test("https with the test CA and a client certificate; without the CA or the certificate, a refusal that says which to give")
    func mutualTLS() throws {
        let registry = try SchemaRegistryServer(transport: .mutualTLS)
        let id = try registry.register(subject: "orders-value", schema: Self.order)
        let certificates = TestCertificates.shared
        let environment = ["EVT_SCHEMA_REGISTRY_CACERT": certificates.ca, "EVT_SCHEMA_REGISTRY_CERT": certificates.clientCertificate,
                           "EVT_SCHEMA_REGISTRY_KEY": certificates.clientKey]
        #expect(try Self.client(registry.url, environment).schema(id: Int32(id)).text == Self.order)

        let untrusted = Self.error { _ = try Self.client(registry.url).schema(id: Int32(id)) }
        #expect(untrusted.map { !$0.isRetriable } == true && untrusted?.message.contains("EVT_SCHEMA_REGISTRY_CACERT") == true,
                "\(untrusted.map { "\($0.cause): \($0.message)" } ?? "")")
        let anonymous = Self.error { _ = try Self.client(registry.url, ["EVT_SCHEMA_REGISTRY_CACERT": certificates.ca]).schema(id: Int32(id)) }
        // TLS 1.3: the registry's alert arrives after the handshake, as a failed read.
        #expect(anonymous?.message.contains("if it wants a client certificate, give it with EVT_SCHEMA_REGISTRY_CERT") == true, "\(anonymous.map { "\($0.cause): \($0.message)" } ?? "")")
    }

    @Test("a port where nothing listens, or a registry that never answers, is a lost connection; a 5xx answer is transient, and the next request goes through")
    func unreachableAndTransient() throws {
        let refusing = try refusingPort()
        let unreachable = Self.error { _ = try Self.client("http://127.0.0.1:\(refusing.port)").schema(id: 1) }
        #expect(unreachable?.cause == .connectionLost && unreachable?.message.contains("cannot reach the schema registry http://127.0.0.1:\(refusing.port)") == true,
                "\(unreachable?.message ?? "")")
        let silent = try SilentListener()
        let unanswered = Self.error { _ = try Self.client("http://127.0.0.1:\(silent.port)", timeout: 1).schema(id: 1) }
        #expect(unanswered?.cause == .connectionLost && unanswered?.message.contains("did not answer within 1 s") == true,
                "\(unanswered?.message ?? "")")

        let registry = try SchemaRegistryServer()
        let id = try registry.register(subject: "orders-value", schema: Self.order)
        let client = try Self.client(registry.url)
        try registry.failNext(1, status: 503)
        let failed = Self.error { _ = try client.schema(id: Int32(id)) }
        #expect(failed?.cause == .transient(code: "50301"), "\(failed.map { "\($0.cause): \($0.message)" } ?? "")")
        #expect(try client.schema(id: Int32(id)).text == Self.order)
    }
}
