import Testing
@testable import EvtCore

@Suite("endpoint grammar")
struct EndpointTests {
    let noEnvironment: [String: String] = [:]

    func parse(_ text: String, _ environment: [String: String] = [:]) throws -> Endpoint {
        try Endpoint.parse(text, environment: environment)
    }

    func usageError(_ text: String, _ environment: [String: String] = [:]) -> EvtError? {
        do {
            _ = try parse(text, environment)
            return nil
        } catch let error as EvtError {
            return error
        } catch {
            return nil
        }
    }

    @Test("a redis:// stream URL gives host, port, database, user and password, percent-decoded")
    func redisURLWithEverything() throws {
        let endpoint = try parse("redis://alice:p%40ss@cache.local:6380/2/stream/orders%2Fv2")
        #expect(endpoint == .redis(RedisServerAddress(host: "cache.local", port: 6380, database: 2,
                                                      user: "alice", password: "p@ss"),
                                   .stream, name: "orders/v2"))
    }

    @Test("a single userinfo word is the password, as in redis-cli")
    func singleWordIsPassword() throws {
        guard case .redis(let server, .list, let name) = try parse("redis://secret@127.0.0.1/list/jobs") else {
            Issue.record("not a list endpoint"); return
        }
        #expect(server.password == "secret" && server.user == nil && server.port == 6379 && name == "jobs")
    }

    @Test("every Redis kind and a channel pattern parse", arguments: ["stream", "list", "channel"])
    func redisKinds(kind: String) throws {
        guard case .redis(_, let parsed, let name) = try parse("redis://127.0.0.1:6379/\(kind)/news.*") else {
            Issue.record("not redis"); return
        }
        #expect(parsed.rawValue == kind && name == "news.*")
    }

    @Test("a kafka:// URL takes several brokers, default port 9092, and a partition")
    func kafkaURL() throws {
        #expect(try parse("kafka://b1:9093,b2/orders/3") == .kafka(brokers: "b1:9093,b2:9092", topic: "orders", partition: 3))
        #expect(try parse("kafka://127.0.0.1:9092/orders") == .kafka(brokers: "127.0.0.1:9092", topic: "orders", partition: nil))
    }

    @Test("short forms take the server from EVT_REDIS_URL and EVT_KAFKA_BROKERS, or the defaults")
    func shortForms() throws {
        #expect(try parse("topic:orders/1") == .kafka(brokers: "127.0.0.1:9092", topic: "orders", partition: 1))
        #expect(try parse("topic:orders", ["EVT_KAFKA_BROKERS": "k:1"]) == .kafka(brokers: "k:1", topic: "orders", partition: nil))
        #expect(try parse("stream:a b") == .redis(RedisServerAddress(host: "127.0.0.1", port: 6379, database: 0), .stream, name: "a b"))
        let environment = ["EVT_REDIS_URL": "redis://10.0.0.9:7000/4", "EVT_REDIS_PASSWORD": "pw"]
        #expect(try parse("list:jobs", environment) == .redis(RedisServerAddress(host: "10.0.0.9", port: 7000, database: 4, password: "pw"), .list, name: "jobs"))
    }

    @Test("a password in the endpoint beats EVT_REDIS_PASSWORD, which beats REDISCLI_AUTH")
    func passwordPrecedence() throws {
        let environment = ["EVT_REDIS_PASSWORD": "env", "REDISCLI_AUTH": "cli"]
        guard case .redis(let fromURL, _, _) = try parse("redis://url@h/stream/s", environment),
              case .redis(let fromEnvironment, _, _) = try parse("stream:s", environment),
              case .redis(let fromCLI, _, _) = try parse("stream:s", ["REDISCLI_AUTH": "cli"]) else {
            Issue.record("not redis"); return
        }
        #expect(fromURL.password == "url" && fromEnvironment.password == "env" && fromCLI.password == "cli")
    }

    @Test("rediss:// takes its TLS files from the URL's parameters, which beat EVT_REDIS_CACERT/CERT/KEY")
    func tlsSettings() throws {
        let environment = ["EVT_REDIS_CACERT": "/env/ca.pem", "EVT_REDIS_CERT": "/env/c.pem", "EVT_REDIS_KEY": "/env/c.key"]
        guard case .redis(let fromURL, .stream, let name) = try parse("rediss://h:6380/stream/s?cacert=%2Fu%2Fca.pem&cert=/u/c.pem", environment),
              case .redis(let fromEnvironment, .list, _) = try parse("list:l", environment.merging(["EVT_REDIS_URL": "rediss://h"]) { $1 }),
              case .redis(let plain, _, _) = try parse("redis://h/stream/s", environment) else {
            Issue.record("not redis"); return
        }
        #expect(name == "s" && fromURL.port == 6380 && fromURL.description == "rediss://h:6380")
        #expect(fromURL.tls == RedisTLSSettings(caCertificates: "/u/ca.pem", clientCertificate: "/u/c.pem", clientKey: "/env/c.key"))
        #expect(fromEnvironment.tls == RedisTLSSettings(caCertificates: "/env/ca.pem", clientCertificate: "/env/c.pem", clientKey: "/env/c.key"))
        #expect(plain.tls == nil)
        guard case .redis(let unverified, _, _) = try parse("rediss://h/stream/s", ["EVT_REDIS_TLS_VERIFY": "none"]) else { return }
        #expect(unverified.tls?.verifiesServer == false && unverified.tls?.caCertificates == nil)
    }

    @Test("a ? in a channel pattern stays in the name; only name=value pairs are a query")
    func questionMarkInPattern() throws {
        guard case .redis(_, .channel, let name) = try parse("rediss://h/channel/news.?") else { Issue.record("not a channel"); return }
        #expect(name == "news.?")
    }

    @Test("TLS settings that cannot work are usage errors that say what to write", arguments: [
        ("redis://h/stream/s?cacert=ca.pem", [:], "rediss://"),
        ("rediss://h/stream/s?verify=none", [:], "cacert="),
        ("rediss://h/stream/s?key=k.pem", [:], "EVT_REDIS_CERT"),
        ("rediss://h/stream/s?cacert=a&cacert=b", [:], "twice"),
        ("rediss://h/stream/s", ["EVT_REDIS_TLS_VERIFY": "off"], "none"),
    ])
    func badTLSSettings(text: String, environment: [String: String], hint: String) {
        let error = usageError(text, environment)
        #expect(error?.status == .usage)
        #expect(error?.message.contains(hint) == true, "\(error?.message ?? "no error")")
    }

    @Test("bad endpoints are usage errors that name the problem", arguments: [
        ("redis://h/queue/s", "stream|list|channel"),
        ("redis://h:99999/stream/s", "port"),
        ("kafka://h", "TOPIC"),
        ("topic:bad name!", "topic name"),
        ("topic:orders/x", "partition"),
        ("strem:orders", "did you mean stream:"),
        ("orders", "expected"),
        ("stream:", "empty"),
    ])
    func badEndpoints(text: String, hint: String) {
        let error = usageError(text)
        #expect(error?.status == .usage)
        #expect(error?.message.contains(hint) == true, "\(error?.message ?? "no error")")
    }

    @Test("no error message and no description ever shows a password")
    func passwordNeverShown() throws {
        let error = usageError("redis://bob:hunter2@h/queue/s")
        #expect(error?.message.contains("hunter2") == false)
        #expect(error?.message.contains("***") == true)
        let endpoint = try parse("redis://bob:hunter2@h/stream/s")
        #expect(!endpoint.description.contains("hunter2"))
        #expect(Endpoint.redactingPassword("redis://hunter2@h/list/x") == "redis://***@h/list/x")
    }
}

@Suite("durations")
struct DurationTests {
    @Test("250ms, 30s, 5m and 1h are milliseconds")
    func units() throws {
        #expect(try DurationParser.milliseconds("250ms", option: "--timeout") == 250)
        #expect(try DurationParser.milliseconds("30s", option: "--timeout") == 30_000)
        #expect(try DurationParser.milliseconds("5m", option: "--timeout") == 300_000)
        #expect(try DurationParser.milliseconds("1h", option: "--timeout") == 3_600_000)
    }

    @Test("a bare number is a usage error with a hint")
    func bareNumber() {
        #expect {
            try DurationParser.milliseconds("30", option: "--timeout")
        } throws: { error in
            guard let error = error as? EvtError else { return false }
            return error.status == .usage && error.message.contains("30s")
        }
    }
}
