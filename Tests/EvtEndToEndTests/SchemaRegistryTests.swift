import Foundation
import Testing
import EvtTestSupport

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
