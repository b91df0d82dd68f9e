import Foundation
import Testing
import EvtCore
import EvtTestSupport

/// Kafka over TLS and SASL, kcat's way (`-X security.protocol=…`, `-F FILE`), against
/// librdkafka's mock cluster behind a TLS front (socat) or a SASL front (the Python fixture),
/// each in the client's own network namespace (KafkaSecureMock). What evt wrote is read back
/// by kcat outside the namespace, where the mock is plain Kafka.
///
/// The failures: a refused authentication or TLS handshake ends every command within
/// seconds (exit 1, librdkafka's reason and what to check, never the password); what
/// librdkafka reports only as a transport failure (a plaintext client at a TLS port, a client
/// certificate the broker wants) fails within --timeout, naming librdkafka's reason; a stop
/// signal while the handshake fails ends with 143 within about 2 s.
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

    @Test("a wrong password ends every Kafka command within seconds: exit 1, librdkafka's reason, sasl.username and sasl.password named, the password never", arguments: [
        ["publish", "TOPIC"], ["tail", "TOPIC"], ["subscribe", "TOPIC", "--group", "g"], ["subscribe", "TOPIC"],
        ["group-create", "TOPIC", "g2"], ["replay-from-offset", "TOPIC", "beginning"],
        ["copy-between", "TOPIC", "kafka://BROKERS/copy", "--checkpoint", "c"],
    ])
    func wrongPassword(command: [String]) throws {
        let mock = try KafkaSecureMock(topics: [("secure", 2)])
        let wrong = "Not-The-Pa55word"
        let arguments = command.map {
            $0.replacingOccurrences(of: "TOPIC", with: "kafka://\(mock.brokers)/secure").replacingOccurrences(of: "BROKERS", with: mock.brokers)
        } + ["-X", "security.protocol=sasl_plaintext", "-X", "sasl.mechanisms=SCRAM-SHA-256",
             "-X", "sasl.username=alice", "-X", "sasl.password=\(wrong)"]
        let result = try mock.evt(.sasl(tls: false, users: Self.users), arguments, stdin: Data("1\n2\n3\n".utf8), timeout: 30)
        let took = mock.secondsSinceCommandStarted()
        #expect(result.status == 1, "\(command): \(result.stderr)")
        #expect(took < 8, "\(command) took \(took) s (not the 30 s --timeout)")
        #expect(result.stderr.contains("Kafka refused the authentication: ") && result.stderr.contains("invalid credentials"),
                "\(command): \(result.stderr)")
        #expect(result.stderr.contains("sasl.username") && result.stderr.contains("sasl.password"), "\(result.stderr)")
        #expect(!result.stderr.contains(wrong), "the password was shown: \(result.stderr)")
        #expect(mock.saslLog.contains("refused alice SCRAM-SHA-256"), "front: \(mock.saslLog)")
        if command[0] == "publish" {
            #expect(reportedLines(in: result.stderr, marker: "not delivered") == [1, 2, 3], "\(result.stderr)")
            #expect(try kcatConsume(brokers: mock.brokers, topic: "secure").isEmpty)
        }
    }

    @Test("-v with librdkafka's debug log on a wrong PLAIN password: its lines are shown, the password is not")
    func verboseKeepsThePassword() throws {
        let mock = try KafkaSecureMock()
        let wrong = "Verbose-Wr0ng-Secret"
        let result = try mock.evt(.sasl(tls: false, users: Self.users, mechanisms: ["PLAIN"]),
                                  ["publish", "kafka://\(mock.brokers)/t", "-v", "-X", "debug=all",
                                   "-X", "security.protocol=sasl_plaintext", "-X", "sasl.mechanisms=PLAIN",
                                   "-X", "sasl.username=alice", "-X", "sasl.password=\(wrong)", "-X", "ssl.key.password=\(wrong)"],
                                  stdin: Data("1\n".utf8), timeout: 30)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("evt: kafka: ") && result.stderr.contains("Invalid username or password"), "\(result.stderr.suffix(2000))")
        #expect(!result.stderr.contains(wrong), "the password was shown")
    }

    @Test("a CA that did not sign the broker's certificate: publish, tail and subscribe --group end within seconds naming ssl.ca.location", arguments: [
        ["publish"], ["tail"], ["subscribe", "--group", "g"],
    ])
    func wrongCA(command: [String]) throws {
        let mock = try KafkaSecureMock()
        let result = try mock.evt(.tls(clientCertificate: false),
                                  [command[0], "kafka://\(mock.brokers)/t"] + command.dropFirst()
                                    + ["-X", "security.protocol=ssl", "-X", "ssl.ca.location=\(Self.certificates.strangerCertificate)"],
                                  stdin: Data("1\n2\n".utf8), timeout: 30)
        let took = mock.secondsSinceCommandStarted()
        #expect(result.status == 1, "\(command): \(result.stderr)")
        #expect(took < 8, "\(command) took \(took) s (not the 30 s --timeout)")
        #expect(result.stderr.contains("the TLS handshake with Kafka failed: ") && result.stderr.contains("certificate verify failed"),
                "\(result.stderr)")
        #expect(result.stderr.contains("ssl.ca.location (now \(Self.certificates.strangerCertificate))"), "\(result.stderr)")
        if command[0] == "publish" {
            #expect(reportedLines(in: result.stderr, marker: "not delivered") == [1, 2], "\(result.stderr)")
        }
    }

    /// The line of evt's final explanation of a delivery timeout.
    static func timeoutLine(_ stderr: String) -> String {
        stderr.split(separator: "\n").first { $0.contains("did not acknowledge events within --timeout") }.map(String.init) ?? ""
    }

    @Test("a plaintext client at a TLS port fails within --timeout, naming librdkafka's reason and security.protocol")
    func plaintextAtTLSPort() throws {
        let mock = try KafkaSecureMock()
        let result = try mock.evt(.tls(clientCertificate: false), ["publish", "kafka://\(mock.brokers)/t", "--timeout", "2s"],
                                  stdin: Data("1\n".utf8), timeout: 30)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(mock.secondsSinceCommandStarted() < 8, "within --timeout 2s and the stop")
        let explanation = Self.timeoutLine(result.stderr)
        // librdkafka's reason ("Disconnected while requesting ApiVersion: might be caused by
        // incorrect security.protocol configuration …"), and evt's hint with the setting now.
        #expect(explanation.contains("ApiVersion") && explanation.contains("security.protocol (now plaintext)"), "\(result.stderr)")
        #expect(reportedLines(in: result.stderr, marker: "not delivered") == [1], "\(result.stderr)")
    }

    @Test("a broker that wants a client certificate and gets none: within --timeout, naming ssl.certificate.location")
    func clientCertificateWanted() throws {
        let mock = try KafkaSecureMock()
        let result = try mock.evt(.tls(clientCertificate: true),
                                  ["publish", "kafka://\(mock.brokers)/t", "--timeout", "2s", "-X", "security.protocol=ssl",
                                   "-X", "ssl.ca.location=\(Self.certificates.ca)"], stdin: Data("1\n".utf8), timeout: 30)
        #expect(result.status == 1, "\(result.stderr)")
        let explanation = Self.timeoutLine(result.stderr)
        #expect(explanation.contains("certificate required") && explanation.contains("ssl.certificate.location"), "\(result.stderr)")
    }

    @Test("SIGTERM while the TLS handshake fails ends publish (naming every line), tail and subscribe --group with 143 within ~2 s", arguments: [
        ["publish"], ["tail", "-f"], ["subscribe", "--group", "g"],
    ])
    func stopWhileHandshakeFails(command: [String]) throws {
        let mock = try KafkaSecureMock()
        // A broker that wants a client certificate evt does not give: librdkafka retries until
        // a timeout (it is a transport failure to it, not a refusal).
        let process = try mock.startEvt(.tls(clientCertificate: true),
                                        [command[0], "kafka://\(mock.brokers)/t"] + command.dropFirst()
                                            + ["-X", "security.protocol=ssl", "-X", "ssl.ca.location=\(Self.certificates.ca)"])
        process.write(Data("1\n2\n3\n".utf8))   // publish's stdin stays open
        usleep(1_500_000)
        #expect(!process.hasExited(), "\(command) ended before the signal: \(process.stderrSoFar)")
        let (result, took) = process.stop()
        #expect(took < 5, "\(command) took \(took) s after SIGTERM")
        #expect(result.status == 143, "\(command): \(result.stderr)")
        if command[0] == "publish" {
            #expect(reportedLines(in: result.stderr, marker: "not delivered") == [1, 2, 3], "\(result.stderr)")
        }
    }

    @Test("sasl.oauthbearer.method=oidc, which Debian's librdkafka lacks, is a usage error that says what to use instead")
    func oidc() throws {
        let result = try Evt.run(["publish", "topic:t", "--timeout", "1s", "-X", "sasl.mechanisms=OAUTHBEARER",
                                  "-X", "sasl.oauthbearer.method=oidc"], stdin: "1\n", timeout: 30)
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("no OIDC support") && result.stderr.contains("SCRAM-SHA-512"), "\(result.stderr)")
    }

    @Test("a CA file that cannot be read is a usage error that names it")
    func unreadableCAFile() throws {
        let result = try Evt.run(["tail", "topic:t", "-X", "security.protocol=ssl", "-X", "ssl.ca.location=/nonexistent/ca.pem"],
                                 timeout: 30)
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("ssl.ca.location=/nonexistent/ca.pem: cannot read it: No such file or directory"), "\(result.stderr)")
    }

    @Test("a refused property is a usage error that names it and never shows its value, from -X or -F, in any case", arguments: [
        "sasl.passwrd", "SASL.PASSWORD", "Sasl.Password", "ssl.key.passwrd", "sasl.oauthbearer.client.secrett",
        "SSL.KEY.PEM", "my.api.token", "compression.codec",
    ])
    func refusedPropertyValueHidden(_ key: String) throws {
        let scratch = Scratch()
        let secret = "Hunter2-Typo-Secret"
        let file = scratch.write("client.properties", Data("# typo\n\(key) = \(secret)\n".utf8))
        chmod(file, 0o600)
        for arguments in [["-X", "\(key)=\(secret)"], ["-F", file]] {
            let result = try Evt.run(["publish", "topic:t"] + arguments, stdin: "1\n", timeout: 30)
            #expect(result.status == 2, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("Kafka property \(key) was refused"), "\(arguments): \(result.stderr)")
            #expect(!result.stderr.contains(secret), "\(arguments): \(result.stderr)")
        }
        // A word that is no KEY=VALUE at all is not shown either when it may hold a secret.
        for word in ["\(key):\(secret)", "=\(secret)"] where key != "compression.codec" {
            let result = try Evt.run(["publish", "topic:t", "-X", word], stdin: "1\n", timeout: 30)
            #expect(result.status == 2 && result.stderr.contains("expected KEY=VALUE"), "\(word): \(result.stderr)")
            #expect(!result.stderr.contains(secret), "\(word): \(result.stderr)")
        }
    }

    @Test("-F FILE with a password that group or others may read gets a warning that names the key, never the value")
    func exposedPropertiesFile() throws {
        let scratch = Scratch()
        let secret = "Pr0perties-Secret"
        let withSecret = scratch.write("client.properties", Data("security.protocol=sasl_ssl\nsasl.password=\(secret)\n".utf8))
        let harmless = scratch.write("tuning.properties", Data("linger.ms=5\n".utf8))
        // An unknown property makes each run end at once (exit 2), after the file was read.
        func run(_ file: String, mode: mode_t) throws -> ProcessResult {
            chmod(file, mode)
            return try Evt.run(["publish", "topic:t", "-F", file, "-X", "no.such.property=1"], stdin: "1\n", timeout: 30)
        }
        let exposed = try run(withSecret, mode: 0o644)
        #expect(exposed.status == 2)
        #expect(exposed.stderr.contains("holds sasl.password") && exposed.stderr.contains("chmod 600"), "\(exposed.stderr)")
        #expect(!exposed.stderr.contains(secret))
        let groupReadable = try run(withSecret, mode: 0o640)
        #expect(groupReadable.stderr.contains("its group can read it"), "\(groupReadable.stderr)")
        for quiet in [try run(withSecret, mode: 0o600), try run(harmless, mode: 0o644)] {
            #expect(quiet.status == 2 && !quiet.stderr.contains("warning"), "\(quiet.stderr)")
        }
    }
}
