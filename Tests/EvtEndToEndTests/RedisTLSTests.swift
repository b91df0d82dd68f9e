import Foundation
import Testing
import EvtTestSupport

/// rediss:// against Debian's redis-server with a TLS port, certificates made with openssl
/// (TestCertificates), and what evt wrote checked with `redis-cli --tls`.
@Suite("Redis over TLS")
struct RedisTLSTests {
    static func seq(_ range: ClosedRange<Int>) -> String { range.map(String.init).joined(separator: "\n") + "\n" }

    static func count(_ redis: RedisServer, _ command: [String]) throws -> Int {
        Int(try redis.cli(command).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    @Test("every command works over mutual TLS: publish, tail, subscribe (stream group, list, channel), group-create, claim-pending, replay --to, copy-between, --dead-letter")
    func everyCommand() throws {
        let redis = try RedisServer(transport: .mutualTLS)
        let cluster = try mockCluster(topics: [("src", 2), ("out", 2)])
        var env = redis.environment
        env["EVT_KAFKA_BROKERS"] = cluster.bootstrapServers

        let published = try Evt.run(["publish", "stream:s"], stdin: Self.seq(1...200), environment: env)
        #expect(published.status == 0, "\(published.stderr)")
        #expect(try Self.count(redis, ["XLEN", "s"]) == 200)

        let tail = try Evt.run(["tail", "stream:s", "-n", "3"], environment: env)
        #expect(tail.stdoutLines.count == 3 && tail.stdoutText.contains(#""value":{"value":"200"}"#), "\(tail.stderr)")

        #expect(try Evt.run(["group-create", "stream:s", "g", "--from", "beginning"], environment: env).status == 0)
        let group = try Evt.run(["subscribe", "stream:s", "--group", "g", "-c", "50"], environment: env)
        #expect(group.status == 0 && group.stdoutLines.count == 50, "\(group.stderr)")
        #expect(try redis.cli(["XPENDING", "s", "g"]).hasPrefix("0"))

        try redis.cli(["XREADGROUP", "GROUP", "g", "stuck", "COUNT", "3", "STREAMS", "s", ">"])
        usleep(150_000)
        let claimed = try Evt.run(["claim-pending", "stream:s", "g", "--min-idle", "100ms"], environment: env)
        #expect(claimed.status == 0 && claimed.stdoutLines.count == 3, "\(claimed.stderr)")

        #expect(try Evt.run(["publish", "list:jobs"], stdin: Self.seq(1...5), environment: env).status == 0)
        let jobs = try Evt.run(["subscribe", "list:jobs", "-c", "5"], environment: env)
        #expect(jobs.stdoutLines.count == 5 && jobs.stdoutLines.first == #"{"list":"jobs","value":1}"#, "\(jobs.stderr)")
        #expect(try Self.count(redis, ["LLEN", "jobs"]) == 0)

        let listener = try Evt.start(["subscribe", "channel:news", "-c", "2"], environment: env)
        _ = try waitUntil {
            try redis.cli(["PUBLISH", "news", "hello"])
            return listener.hasExited()
        }
        let news = listener.wait(timeout: 10)
        #expect(news.status == 0 && news.stdoutLines == [#"{"channel":"news","value":"hello"}"#, #"{"channel":"news","value":"hello"}"#], "\(news.stderr)")

        let replayed = try Evt.run(["replay-from-offset", "stream:s", "beginning", "--to", "stream:again"], environment: env)
        #expect(replayed.status == 0, "\(replayed.stderr)")
        #expect(try Self.count(redis, ["XLEN", "again"]) == 200)

        let toTopic = try Evt.run(["copy-between", "stream:s", "topic:out"], environment: env)
        #expect(toTopic.status == 0, "\(toTopic.stderr)")
        #expect(try kcatConsume(brokers: cluster.bootstrapServers, topic: "out").count == 200)
        #expect(try Evt.run(["publish", "topic:src"], stdin: Self.seq(1...30), environment: env).status == 0)
        let toStream = try Evt.run(["copy-between", "topic:src", "stream:fromkafka", "--checkpoint", "c"], environment: env)
        #expect(toStream.status == 0, "\(toStream.stderr)")
        #expect(try Self.count(redis, ["XLEN", "fromkafka"]) == 30)

        let bad = try Evt.run(["publish", "stream:s2", "--on-error", "skip", "--dead-letter", "list:dlq"],
                              stdin: "1\n{oops\n3\n", environment: env)
        #expect(bad.status == 3, "\(bad.stderr)")
        #expect(try Self.count(redis, ["XLEN", "s2"]) == 2 && Self.count(redis, ["LLEN", "dlq"]) == 1)
    }

    @Test("an endpoint's ?cacert=&cert=&key= beat EVT_REDIS_CACERT/CERT/KEY (copy between two servers with different settings)")
    func queryParametersWin() throws {
        let redis = try RedisServer(transport: .mutualTLS)
        let certificates = TestCertificates.shared
        // The environment names a CA that did not sign the server's certificate.
        let env = ["EVT_REDIS_CACERT": certificates.strangerCertificate,
                   "EVT_REDIS_CERT": certificates.clientCertificate, "EVT_REDIS_KEY": certificates.clientKey]
        let good = "\(redis.url)/stream/s?cacert=\(certificates.ca)"
        let published = try Evt.run(["publish", good], stdin: Self.seq(1...10), environment: env)
        #expect(published.status == 0, "\(published.stderr)")
        let refused = try Evt.run(["tail", "\(redis.url)/stream/s"], environment: env)
        #expect(refused.status == 1 && refused.stderr.contains("CA evt does not trust"), "\(refused.stderr)")
        let plain = try RedisServer()
        let replayed = try Evt.run(["replay-from-offset", good, "beginning", "--to", "\(plain.url)/stream/copy"], environment: env)
        #expect(replayed.status == 0, "\(replayed.stderr)")
        #expect(try Self.count(plain, ["XLEN", "copy"]) == 10)
    }

    @Test("each failed handshake is exit 1 within seconds, names its cause and what to do, and writes nothing")
    func handshakeFailures() throws {
        let certificates = TestCertificates.shared
        let serverOnly = try RedisServer(transport: .tls(certificate: certificates.serverCertificate))
        let expired = try RedisServer(transport: .tls(certificate: certificates.expiredServerCertificate))
        let mutual = try RedisServer(transport: .mutualTLS)
        let ca = ["EVT_REDIS_CACERT": certificates.ca]
        let cases: [(RedisServer, String, [String: String], String)] = [
            (serverOnly, serverOnly.url, [:], "signed by a CA evt does not trust"),
            (serverOnly, "rediss://localhost:\(serverOnly.port)", ca, "does not name the host"),
            (expired, expired.url, ca, "expired"),
            (mutual, mutual.url, ca, "wants a client certificate"),
            (mutual, mutual.url, ca.merging(["EVT_REDIS_CERT": certificates.strangerCertificate,
                                             "EVT_REDIS_KEY": certificates.strangerKey]) { $1 },
             "refused evt's client certificate"),
            (serverOnly, "redis://127.0.0.1:\(serverOnly.port)", [:], "use rediss://"),
        ]
        for (server, base, environment, hint) in cases {
            let started = Date()
            let result = try Evt.run(["publish", "\(base)/stream/s"], stdin: Self.seq(1...3), environment: environment)
            #expect(result.status == 1, "\(base): \(result.stderr)")
            #expect(result.stderr.contains(hint), "\(base): \(result.stderr)")
            #expect(Date().timeIntervalSince(started) < 10, "not the 30 s --timeout")
            #expect(try Self.count(server, ["XLEN", "s"]) == 0, "nothing written to \(base)")
        }
        // Verification off: it works, and says so on every run.
        let unverified = try Evt.run(["publish", "rediss://localhost:\(serverOnly.port)/stream/s"], stdin: Self.seq(1...3),
                                     environment: ["EVT_REDIS_TLS_VERIFY": "none"])
        #expect(unverified.status == 0 && unverified.stderr.contains("warning: EVT_REDIS_TLS_VERIFY=none"), "\(unverified.stderr)")
        #expect(try Self.count(serverOnly, ["XLEN", "s"]) == 3)
    }

    @Test("passwords and ACL users work over TLS; a refused AUTH names the user, never the password")
    func passwordsOverTLS() throws {
        let redis = try RedisServer(transport: .mutualTLS)
        try redis.cli(["ACL", "SETUSER", "alice", "on", ">s3cret-pw", "~*", "&*", "+@all"])
        let base = "rediss://alice:s3cret-pw@127.0.0.1:\(redis.port)/stream/s"
        let published = try Evt.run(["publish", base], stdin: Self.seq(1...5), environment: redis.environment)
        #expect(published.status == 0, "\(published.stderr)")
        #expect(try Self.count(redis, ["XLEN", "s"]) == 5)
        let refused = try Evt.run(["tail", "rediss://alice:wrong-pw@127.0.0.1:\(redis.port)/stream/s"], environment: redis.environment)
        #expect(refused.status == 1 && refused.stderr.contains("user alice"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("wrong-pw") && !published.stderr.contains("s3cret"))
    }

    @Test("the test CA lives in evt-test-ca-PID, and the directories of test processes that ended are removed")
    func certificateDirectories() throws {
        #expect(TestCertificates.shared.scratch.path == TestCertificates.directory(of: getpid()))
        #expect(FileManager.default.fileExists(atPath: TestCertificates.shared.ca))
        // No process can have a PID above pid_max; PID 1 is always running.
        let pidMax = try String(contentsOfFile: "/proc/sys/kernel/pid_max", encoding: .utf8)
        let ended = TestCertificates.directory(of: try #require(pid_t(pidMax.trimmingCharacters(in: .whitespacesAndNewlines))) + 1)
        let running = TestCertificates.directory(of: 1)
        for directory in [ended, running] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: directory + "/ca.key", contents: Data("key".utf8))
        }
        defer { try? FileManager.default.removeItem(atPath: running) }
        TestCertificates.removeDirectoriesOfEndedProcesses()
        #expect(!FileManager.default.fileExists(atPath: ended))
        #expect(FileManager.default.fileExists(atPath: running))
        #expect(FileManager.default.fileExists(atPath: TestCertificates.shared.ca))
    }
}
