import Foundation
import Testing
import EvtTestSupport

/// `evt lag` on a real redis-server and the librdkafka mock, checked against the numbers
/// the test made and against redis-cli / kcat.
@Suite("evt lag")
struct LagTests {
    static func objects(_ result: ProcessResult) -> [[String: Any]] {
        result.stdoutLines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    static func seq(_ range: ClosedRange<Int>) -> String { range.map(String.init).joined(separator: "\n") + "\n" }

    /// The value after `field` in redis-cli's flat listing of XINFO GROUPS for `group`.
    static func xinfo(_ redis: RedisServer, _ stream: String, _ group: String, _ field: String) throws -> String {
        let lines = try redis.cli(["XINFO", "GROUPS", stream]).split(separator: "\n").map(String.init)
        var index = 0
        while index + 1 < lines.count {
            if lines[index] == "name" && lines[index + 1] == group {
                var look = index
                while look + 1 < lines.count && !(lines[look] == "name" && look != index) {
                    if lines[look] == field { return lines[look + 1] }
                    look += 1
                }
            }
            index += 1
        }
        return ""
    }

    @Test("stream groups: lag, pending, deliveries and consumers are the numbers the test made and what XINFO/XPENDING say; still exact after an XDEL past a group")
    func streamGroups() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:orders"], stdin: Self.seq(1...100), environment: env)
        _ = try Evt.run(["group-create", "stream:orders", "billing", "--from", "beginning"], environment: env)
        _ = try Evt.run(["group-create", "stream:orders", "audit", "--from", "beginning"], environment: env)
        // billing handles 60; audit's worker w1 reads 4 and dies before acknowledging them.
        #expect(try Evt.run(["subscribe", "stream:orders", "--group", "billing", "-c", "60"], environment: env).status == 0)
        try redis.cli(["XREADGROUP", "GROUP", "audit", "w1", "COUNT", "4", "STREAMS", "orders", ">"])
        // Two of them are delivered again to w2 (delivery count 2).
        try redis.cli(["XCLAIM", "orders", "audit", "w2", "0", try redis.cli(["XRANGE", "orders", "-", "+", "COUNT", "1"]).split(separator: "\n")[0].description])
        let result = try Evt.run(["lag", "stream:orders"], environment: env)
        #expect(result.status == 0, "\(result.stderr)")
        let byGroup = Dictionary(uniqueKeysWithValues: Self.objects(result).map { ($0["group"] as! String, $0) })
        let billing = try #require(byGroup["billing"]), audit = try #require(byGroup["audit"])
        #expect(billing["lag"] as? Int == 40 && billing["pending"] as? Int == 0)
        #expect(try Self.xinfo(redis, "orders", "billing", "lag") == "40")
        #expect(audit["lag"] as? Int == 96, "\(audit)")
        #expect(audit["pending"] as? Int == 4)
        #expect(try redis.cli(["XPENDING", "orders", "audit"]).split(separator: "\n").first == "4")
        #expect(audit["deliveries"] as? [String: Int] == ["1": 3, "2": 1], "\(audit)")
        let consumers = (audit["consumers"] as? [[String: Any]] ?? []).map { "\($0["name"]!)=\($0["pending"]!)" }
        #expect(Set(consumers) == ["w1=3", "w2=1"])
        #expect((audit["lag_ms"] as? Int ?? -1) >= 0 && (audit["oldest_pending_ms"] as? Int ?? -1) >= 0)

        // Delete an entry billing has not read: Redis no longer knows the lag, evt counts it.
        // --raw XRANGE: id, field, value per entry; the 71st entry's id.
        let id = try redis.cli(["XRANGE", "orders", "-", "+"]).split(separator: "\n").map(String.init)[70 * 3]
        try redis.cli(["XDEL", "orders", id])
        #expect(try Self.xinfo(redis, "orders", "billing", "lag").isEmpty, "Redis' own lag is nil after the XDEL")
        let counted = try Evt.run(["lag", "stream:orders", "--group", "billing"], environment: env)
        #expect(Self.objects(counted).first?["lag"] as? Int == 39, "\(counted.stdoutText)")
        #expect(Self.objects(counted).first?["lag_exact"] == nil)
    }

    @Test("lists, a processing list and a dead-letter depth; thresholds give exit 4 and 0; a named group that does not exist is exit 1")
    func listsAndThresholds() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "list:jobs"], stdin: Self.seq(1...12), environment: env)
        _ = try Evt.run(["publish", "list:jobs:dlq"], stdin: Self.seq(1...3), environment: env)
        try redis.cli(["LMOVE", "jobs", "jobs:processing", "RIGHT", "LEFT"])
        let result = try Evt.run(["lag", "list:jobs", "--processing", "jobs:processing", "--dead-letter", "list:jobs:dlq"], environment: env)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutLines == [#"{"list":"jobs","lag":11,"lag_ms":null,"processing":{"list":"jobs:processing","length":1}}"#,
                                       #"{"list":"jobs:dlq","dead_letter":true,"lag":3,"lag_ms":null}"#], "\(result.stdoutText)")
        let beyond = try Evt.run(["lag", "list:jobs", "--max-lag", "10"], environment: env)
        #expect(beyond.status == 4 && beyond.stderr.contains("beyond --max-lag 10"), "\(beyond.stderr)")
        #expect(try Evt.run(["lag", "list:jobs", "--max-lag", "11"], environment: env).status == 0)
        _ = try Evt.run(["publish", "stream:s"], stdin: "1\n", environment: env)
        _ = try Evt.run(["group-create", "stream:s", "g", "--from", "beginning"], environment: env)
        usleep(300_000)
        #expect(try Evt.run(["lag", "stream:s", "--max-lag-age", "100ms"], environment: env).status == 4)
        #expect(try Evt.run(["lag", "stream:s", "--max-lag-age", "1h"], environment: env).status == 0)
        let missing = try Evt.run(["lag", "stream:s", "--group", "nope"], environment: env)
        #expect(missing.status == 1 && missing.stderr.contains("no group nope"), "\(missing.stderr)")
        #expect(try Evt.run(["lag", "channel:c"], environment: env).status == 2)
    }

    @Test("several sources and several --group: each group is shown for the sources that have it, the others are named; a group none has is exit 1")
    func groupsWhereFound() throws {
        let redis = try RedisServer()
        let cluster = try mockCluster(topics: [("t", 2)])
        let env = ["EVT_REDIS_URL": redis.url, "EVT_KAFKA_BROKERS": cluster.bootstrapServers]
        _ = try Evt.run(["publish", "stream:a"], stdin: Self.seq(1...3), environment: env)
        _ = try Evt.run(["publish", "stream:b"], stdin: Self.seq(1...2), environment: env)
        _ = try Evt.run(["publish", "list:q"], stdin: Self.seq(1...4), environment: env)
        _ = try Evt.run(["publish", "topic:t"], stdin: Self.seq(1...5), environment: env)
        for (source, group) in [("stream:a", "ga"), ("stream:b", "gb"), ("topic:t", "gt")] {
            let created = try Evt.run(["group-create", source, group, "--from", "beginning"], environment: env)
            #expect(created.status == 0, "\(created.stderr)")
        }
        let result = try Evt.run(["lag", "stream:a", "stream:b", "topic:t", "list:q", "-g", "ga", "-g", "gb", "-g", "gt",
                                  "--format", "json"], environment: env)
        #expect(result.status == 0, "\(result.stderr)")
        let shown = Self.objects(result).map { "\($0["stream"] ?? $0["topic"] ?? $0["list"]!) \($0["group"] ?? "-") \($0["lag"]!)" }
        #expect(shown == ["a ga 3", "b gb 2", "t gt 5", "q - 4"], "\(result.stdoutText)")
        #expect(result.stderr.contains("stream a on \(redis.url) has no group gb or gt; each group is shown for the sources that have it."),
                "\(result.stderr)")
        #expect(result.stderr.contains("topic t on \(cluster.bootstrapServers) has no group ga or gb;"), "\(result.stderr)")
        #expect(!result.stderr.contains("list q"), "a list has no groups: \(result.stderr)")

        let nowhere = try Evt.run(["lag", "stream:a", "stream:b", "-g", "ga", "-g", "nope"], environment: env)
        #expect(nowhere.status == 1 && nowhere.stdout.isEmpty)
        #expect(nowhere.stderr.contains("none of the sources has group nope"), "\(nowhere.stderr)")
        // One source: every --group is its own, and one it lacks is an error with a hint for that server.
        let single = try Evt.run(["lag", "stream:a", "-g", "gb"], environment: env)
        #expect(single.status == 1)
        #expect(single.stderr.contains("stream a has no group gb (groups: ga). Check the name, or create it with evt group-create \(redis.url)/stream/a gb."),
                "\(single.stderr)")
        withExtendedLifetime(cluster) {}
    }

    @Test("subscribe --group --stats reports the group's lag through evt lag's reader while it consumes")
    func subscribeStats() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:orders"], stdin: Self.seq(1...10), environment: env)
        _ = try Evt.run(["group-create", "stream:orders", "billing", "--from", "beginning"], environment: env)
        let subscriber = try Evt.start(["subscribe", "stream:orders", "--group", "billing", "--stats", "300ms"], environment: env)
        #expect(waitUntil { subscriber.stderrSoFar.contains("lag 0 events, 0 pending") }, "\(subscriber.stderrSoFar)")
        subscriber.signal(SIGTERM)
        let result = subscriber.wait(timeout: 10)
        #expect(result.status == 143, "\(result.stderr)")
        #expect(result.stderr.contains("consumed 10 events"), "\(result.stderr)")
        #expect(result.stderr.contains("group billing of stream orders: lag 0 events, 0 pending"), "\(result.stderr)")
        #expect(try Evt.run(["subscribe", "channel:c", "--stats", "1s"], environment: env).status == 2)
    }

    @Test("a table on a terminal, Prometheus text that promtool accepts, and --watch | head -n 3 ending promptly")
    func formats() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:orders"], stdin: Self.seq(1...10), environment: env)
        _ = try Evt.run(["group-create", "stream:orders", "billing", "--from", "beginning"], environment: env)
        try redis.cli(["XREADGROUP", "GROUP", "billing", "w1", "COUNT", "4", "STREAMS", "orders", ">"])

        // script(1) gives evt a pseudo-terminal as stdout.
        let table = try runProcess(["script", "-qec", "\(Evt.binary) lag stream:orders", "/dev/null"],
                                   environment: Evt.environment(env), timeout: 30)
        let lines = table.stdoutText.replacingOccurrences(of: "\r", with: "").split(separator: "\n").map(String.init)
        #expect(lines.first?.split(separator: " ", omittingEmptySubsequences: true) ==
                ["GROUP", "SOURCE", "PARTITION", "COMMITTED", "LOG-END", "LAG", "AGE", "PENDING"], "\(table.stdoutText)")
        #expect(lines.count == 2 && lines[1].hasPrefix("billing  stream:orders") && lines[1].hasSuffix(" 4"), "\(lines)")

        let metrics = try Evt.run(["lag", "stream:orders", "--format", "prometheus"], environment: env)
        #expect(metrics.stdoutText.contains(#"evt_lag_events{system="redis",kind="stream",source="orders",group="billing"} 6"#), "\(metrics.stdoutText)")
        #expect(metrics.stdoutText.contains(#"evt_pending_deliveries{system="redis",kind="stream",source="orders",group="billing",deliveries="1"} 4"#))
        let checked = try runProcess(["promtool", "check", "metrics"], stdin: metrics.stdout, timeout: 30)
        #expect(checked.status == 0, "\(checked.stdoutText)\(checked.stderr)")

        let started = Date()
        let watched = try runProcess(["sh", "-c", "\(Evt.binary) lag stream:orders --watch 200ms | head -n 3"],
                                     environment: Evt.environment(env), timeout: 60)
        // Without noticing the closed pipe it would watch until the timeout.
        #expect(watched.stdoutLines.count == 3 && Date().timeIntervalSince(started) < 15, "\(watched.stderr)")
    }
}
