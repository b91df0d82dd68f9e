import Foundation
import Testing
import EvtCore
import EvtTestSupport

/// Kafka over TLS and SASL, kcat's way (`-X security.protocol=…`, `-F FILE`), against
/// librdkafka's mock cluster behind a TLS front (socat) or a SASL front (the Python fixture),
/// each in the client's own network namespace (KafkaSecureMock). What evt wrote is read back
/// by kcat outside the namespace, where the mock is plain Kafka.
@Suite("Kafka TLS and SASL")
struct KafkaSecurityTests {
    static let certificates = TestCertificates.shared
    static let tlsClient = ["-X", "security.protocol=ssl", "-X", "ssl.ca.location=\(certificates.ca)",
                            "-X", "ssl.certificate.location=\(certificates.clientCertificate)",
                            "-X", "ssl.key.location=\(certificates.clientKey)"]
    static let password = "s3cret-Pa55"
    static let users = ["alice": password]
    /// The mock's first group join waits ~3 s; a member leaves quickly with these.
    static let groupTimeouts = ["-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"]

    /// Publishes 12 keyed lines through `listener`, checks with kcat outside that the topic
    /// holds exactly them, then reads them back through the front with tail and with a
    /// group read (both at once: the group join takes seconds).
    func roundTrip(_ mock: KafkaSecureMock, _ listener: KafkaSecureMock.Listener, _ security: [String]) throws {
        let lines = sampleLines(12)
        let topic = "kafka://\(mock.brokers)/secure"
        let published = try mock.evt(listener, ["publish", topic, "--key", "user.id"] + security, stdin: ndjson(lines))
        #expect(published.status == 0, "publish: \(published.stderr) \(mock.frontLog)")
        let stored = try kcatConsume(brokers: mock.brokers, topic: "secure")
        #expect(stored.compactMap(\.payload).sorted() == lines.sorted(), "kcat read: \(stored.compactMap(\.payload))")

        let tail = try mock.startEvt(listener, ["tail", topic, "-n", "100"] + security)
        let group = try mock.startEvt(listener, ["subscribe", topic, "--group", "readers", "--from", "beginning",
                                                 "-c", "12"] + Self.groupTimeouts + security)
        for (name, process) in [("tail", tail), ("subscribe --group", group)] {
            let result = process.wait(timeout: 60)
            #expect(result.status == 0, "\(name): \(result.stderr)")
            #expect(Self.sequenceNumbers(result.stdoutLines) == Array(1...12), "\(name): \(result.stdoutText)")
        }
    }

    /// The `n` of each record's value, sorted.
    static func sequenceNumbers(_ records: [String]) -> [Int] {
        records.compactMap { line -> Int? in
            guard let record = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let value = record["value"] as? [String: Any] else { return nil }
            return value["n"] as? Int
        }.sorted()
    }

    @Test("ssl with a client certificate: publish, tail and subscribe --group go through a TLS front that wants one")
    func tls() throws {
        let mock = try KafkaSecureMock(topics: [("secure", 2)])
        try roundTrip(mock, .tls(clientCertificate: true), Self.tlsClient)
    }

    @Test("SASL: publish, tail and subscribe --group authenticate at a SASL front", arguments: [
        ("sasl_plaintext", "PLAIN"), ("sasl_plaintext", "SCRAM-SHA-256"), ("sasl_ssl", "SCRAM-SHA-512"),
    ])
    func sasl(securityProtocol: String, mechanism: String) throws {
        let mock = try KafkaSecureMock(topics: [("secure", 2)])
        let overTLS = securityProtocol == "sasl_ssl"
        // The secrets in a private properties file (-F), as the man page advises.
        var properties = "security.protocol=\(securityProtocol)\nsasl.mechanisms=\(mechanism)\n"
            + "sasl.username=alice\nsasl.password=\(Self.password)\n"
        if overTLS { properties += "ssl.ca.location=\(Self.certificates.ca)\n" }
        let file = mock.scratch.write("client.properties", Data(properties.utf8))
        chmod(file, 0o600)
        try roundTrip(mock, .sasl(tls: overTLS, users: Self.users), ["-F", file])
        let log = mock.saslLog
        #expect(log.contains("ok alice \(mechanism)") && !log.contains("refused"), "front: \(log)")
    }
}
