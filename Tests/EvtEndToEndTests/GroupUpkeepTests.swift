import Foundation
import Testing
import EvtTestSupport

/// `group-create --reset --shift-by/--dry-run`, `group-delete` and `consumers` against a real
/// redis-server and librdkafka's mock cluster, checked with peer clients: redis-cli (XINFO
/// GROUPS, XPENDING) and confluent-kafka's committed().
@Suite("group upkeep")
struct GroupUpkeepTests {
    /// Entries `1000-1` … `1000-N` in `stream`.
    static func fill(_ redis: RedisServer, _ stream: String, _ count: Int) throws {
        try redis.cli(["EVAL", "for n = 1, tonumber(ARGV[1]) do redis.call('XADD', KEYS[1], '1000-' .. n, 'n', n) end",
                       "1", stream, String(count)])
    }

    /// XINFO GROUPS of `stream`'s group `name` via redis-cli, field by field (a nil lag is "").
    static func group(_ redis: RedisServer, _ stream: String, _ name: String) throws -> [String: String] {
        let lines = try redis.cli(["XINFO", "GROUPS", stream]).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var groups: [[String: String]] = []
        var index = 0
        while index + 1 < lines.count {
            if lines[index] == "name" { groups.append([:]) }
            if !groups.isEmpty { groups[groups.count - 1][lines[index]] = lines[index + 1] }
            index += 2
        }
        return groups.first { $0["name"] == name } ?? [:]
    }

    static func objects(_ result: ProcessResult) throws -> [[String: Any]] {
        try result.stdoutLines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    /// The lag that `evt lag` reports for the group.
    static func evtLag(_ env: [String: String], _ stream: String, _ group: String) throws -> Int? {
        let result = try Evt.run(["lag", "stream:\(stream)", "-g", group, "--format", "json"], environment: env)
        return try objects(result).first?["lag"] as? Int
    }

    @Test("--shift-by -10 on a stream group: --dry-run changes nothing; then XINFO GROUPS shows the new last-delivered id and an exact lag equal to evt lag's; beyond the ends it stops there and says so")
    func streamShift() throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let env = ["EVT_REDIS_URL": redis.url]
        try Self.fill(redis, "orders", 30)
        #expect(try Evt.run(["group-create", "stream:orders", "g", "--from", "beginning"], environment: env).status == 0)
        try redis.cli(["XREADGROUP", "GROUP", "g", "c1", "COUNT", "25", "STREAMS", "orders", ">"])
        let before = try Self.group(redis, "orders", "g")
        #expect(before["last-delivered-id"] == "1000-25" && before["lag"] == "5")

        let dryRun = try Evt.run(["group-create", "stream:orders", "g", "--reset", "--shift-by", "-10", "--dry-run"], environment: env)
        #expect(dryRun.status == 0, "\(dryRun.stderr)")
        let plan = try Self.objects(dryRun)
        #expect(plan.count == 1 && plan[0]["stream"] as? String == "orders" && plan[0]["group"] as? String == "g"
                && plan[0]["current"] as? String == "1000-25" && plan[0]["new"] as? String == "1000-15", "\(dryRun.stdout)")
        #expect(try Self.group(redis, "orders", "g") == before, "a dry run changes nothing")

        let shifted = try Evt.run(["group-create", "stream:orders", "g", "--reset", "--shift-by", "-10"], environment: env)
        #expect(shifted.status == 0 && shifted.stdout.isEmpty, "\(shifted.stderr)")
        let after = try Self.group(redis, "orders", "g")
        #expect(after["last-delivered-id"] == "1000-15" && after["entries-read"] == "15" && after["lag"] == "15", "\(after)")
        #expect(try Self.evtLag(env, "orders", "g") == 15)
        #expect(after["pending"] == "25", "moving the group leaves its pending entries alone")

        // Forward beyond the end: at the last entry, lag 0, and stderr says it stopped there.
        let forward = try Evt.run(["group-create", "stream:orders", "g", "--reset", "--shift-by", "100"], environment: env)
        #expect(forward.status == 0 && forward.stderr.contains("moved by 15 of 100"), "\(forward.stderr)")
        let atEnd = try Self.group(redis, "orders", "g")
        #expect(atEnd["last-delivered-id"] == "1000-30" && atEnd["lag"] == "0")
        // Back beyond the start: before the first entry, everything is lag.
        let back = try Evt.run(["group-create", "stream:orders", "g", "--reset", "--shift-by", "-1000"], environment: env)
        #expect(back.status == 0 && back.stderr.contains("moved by 30 of 1000"), "\(back.stderr)")
        let atStart = try Self.group(redis, "orders", "g")
        #expect(atStart["last-delivered-id"] == "0-0" && atStart["lag"] == "30")
        #expect(try Self.evtLag(env, "orders", "g") == 30)
    }

    @Test("--reset --from an id on a trimmed stream sets entries-read: XINFO's lag is exact (not nil) and equals evt lag's")
    func streamResetFrom() throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let env = ["EVT_REDIS_URL": redis.url]
        try Self.fill(redis, "orders", 30)
        try redis.cli(["XTRIM", "orders", "MINID", "1000-6"])   // entries-added 30, length 25
        #expect(try Evt.run(["group-create", "stream:orders", "g", "--from", "end"], environment: env).status == 0)
        let reset = try Evt.run(["group-create", "stream:orders", "g", "--reset", "--from", "1000-21"], environment: env)
        #expect(reset.status == 0, "\(reset.stderr)")
        let after = try Self.group(redis, "orders", "g")
        #expect(after["last-delivered-id"] == "1000-20" && after["lag"] == "10" && after["entries-read"] == "20", "\(after)")
        #expect(try Self.evtLag(env, "orders", "g") == 10)
    }

    @Test("--shift-by without --reset, with --from, or not a number, and --dry-run without --reset: usage errors (exit 2)")
    func shiftUsage() throws {
        let env = ["EVT_REDIS_URL": "redis://127.0.0.1:1"]
        for words in [["--shift-by", "-10"], ["--reset", "--shift-by", "-10", "--from", "beginning"],
                      ["--reset", "--shift-by", "ten"], ["--dry-run"]] {
            let result = try Evt.run(["group-create", "stream:orders", "g"] + words, environment: env)
            #expect(result.status == 2 && result.stderr.contains("--"), "\(words): \(result.stderr)")
        }
    }

    @Test("--shift-by -10 on a Kafka group: --dry-run prints each partition's plan and commits nothing; then confluent-kafka's committed() reads the offsets 10 back, kept at the log start")
    func kafkaShift() throws {
        let cluster = try mockCluster(topics: [("t", 2)])
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers]
        let lines = (1...40).map { #"{"id":\#($0)}"# }
        #expect(try Evt.run(["publish", "topic:t", "--key", "id"], stdin: ndjson(lines), environment: env).status == 0)
        var logEnd = [0: 0, 1: 0]
        for record in try kcatConsume(brokers: cluster.bootstrapServers, topic: "t") {
            logEnd[record.partition] = max(logEnd[record.partition] ?? 0, record.offset + 1)
        }
        #expect(logEnd.values.reduce(0, +) == 40)
        func committed() throws -> [Int] {
            let script = """
                import sys
                from confluent_kafka import Consumer, TopicPartition
                c = Consumer({'bootstrap.servers': sys.argv[1], 'group.id': 'g', 'enable.auto.commit': False})
                print(' '.join(str(p.offset) for p in c.committed([TopicPartition('t', p) for p in range(2)], timeout=10)))
                c.close()
                """
            let result = try runProcess(["python3", "-c", script, cluster.bootstrapServers], timeout: 60)
            return result.stdoutText.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        #expect(try Evt.run(["group-create", "topic:t", "g", "--from", "end"], environment: env).status == 0)
        #expect(try committed() == [logEnd[0]!, logEnd[1]!])

        let dryRun = try Evt.run(["group-create", "topic:t", "g", "--reset", "--shift-by", "-10", "--dry-run"], environment: env)
        #expect(dryRun.status == 0, "\(dryRun.stderr)")
        let plan = try Self.objects(dryRun)
        #expect(plan.count == 2)
        for line in plan {
            let partition = try #require(line["partition"] as? Int)
            #expect(line["topic"] as? String == "t" && line["group"] as? String == "g")
            #expect(line["current"] as? Int == logEnd[partition]! && line["new"] as? Int == max(0, logEnd[partition]! - 10))
        }
        #expect(try committed() == [logEnd[0]!, logEnd[1]!], "a dry run commits nothing")

        let shifted = try Evt.run(["group-create", "topic:t", "g", "--reset", "--shift-by", "-10"], environment: env)
        #expect(shifted.status == 0, "\(shifted.stderr)")
        #expect(try committed() == [max(0, logEnd[0]! - 10), max(0, logEnd[1]! - 10)])

        // Back past the log start: kept at 0, and stderr says so per partition.
        let clamped = try Evt.run(["group-create", "topic:t", "g", "--reset", "--shift-by", "-100"], environment: env)
        #expect(clamped.status == 0 && clamped.stderr.contains("as kafka-consumer-groups does"), "\(clamped.stderr)")
        #expect(try committed() == [0, 0])

        // A group without committed offsets has nothing to shift from.
        let never = try Evt.run(["group-create", "topic:t", "never", "--reset", "--shift-by", "-1"], environment: env)
        #expect(never.status == 1 && never.stderr.contains("no committed offset"), "\(never.stderr)")
    }

    @Test("group-delete on a stream: refused (exit 1, with the count) while entries are pending; --force deletes; a missing group or stream is a clear error")
    func streamDelete() throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let env = ["EVT_REDIS_URL": redis.url]
        try Self.fill(redis, "orders", 10)
        #expect(try Evt.run(["group-create", "stream:orders", "busy", "--from", "beginning"], environment: env).status == 0)
        #expect(try Evt.run(["group-create", "stream:orders", "idle"], environment: env).status == 0)
        try redis.cli(["XREADGROUP", "GROUP", "busy", "c1", "COUNT", "3", "STREAMS", "orders", ">"])

        let refused = try Evt.run(["group-delete", "stream:orders", "busy"], environment: env)
        #expect(refused.status == 1 && refused.stderr.contains("3 pending entries") && refused.stderr.contains("--force"),
                "\(refused.stderr)")
        #expect(try Self.group(redis, "orders", "busy")["pending"] == "3")

        let idle = try Evt.run(["group-delete", "stream:orders", "idle"], environment: env)
        #expect(idle.status == 0, "\(idle.stderr)")
        #expect(try Self.group(redis, "orders", "idle").isEmpty)

        let forced = try Evt.run(["group-delete", "stream:orders", "busy", "--force"], environment: env)
        #expect(forced.status == 0 && forced.stderr.contains("3 pending entries"), "\(forced.stderr)")
        #expect(try redis.cli(["XINFO", "GROUPS", "orders"]).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)

        let missingGroup = try Evt.run(["group-delete", "stream:orders", "busy"], environment: env)
        #expect(missingGroup.status == 1 && missingGroup.stderr.contains("has no group busy"), "\(missingGroup.stderr)")
        let missingStream = try Evt.run(["group-delete", "stream:nothere", "g"], environment: env)
        #expect(missingStream.status == 1 && missingStream.stderr.contains("does not exist"), "\(missingStream.stderr)")
        let list = try Evt.run(["group-delete", "list:jobs", "g"], environment: env)
        #expect(list.status == 2, "\(list.stderr)")
    }

    @Test("group-delete on the mock cluster, which has no DeleteGroups: exit 1 naming what the broker lacks; --force on a topic is a usage error")
    func kafkaDelete() throws {
        let cluster = try mockCluster(topics: [("t", 2)])
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers]
        #expect(try Evt.run(["group-create", "topic:t", "g", "--from", "beginning"], environment: env).status == 0)
        let refused = try Evt.run(["group-delete", "topic:t", "g"], environment: env, timeout: 60)
        #expect(refused.status == 1 && refused.stderr.contains("does not support DeleteGroups"), "\(refused.stderr)")
        let forced = try Evt.run(["group-delete", "topic:t", "g", "--force"], environment: env)
        #expect(forced.status == 2, "\(forced.stderr)")
    }

    /// XPENDING of `group` as [id: (consumer, deliveries)], via redis-cli.
    static func pending(_ redis: RedisServer, _ stream: String, _ group: String) throws -> [String: (String, String)] {
        let lines = try redis.cli(["XPENDING", stream, group, "-", "+", "1000"]).split(separator: "\n").map(String.init)
        var rows: [String: (String, String)] = [:]
        var index = 0
        while index + 3 < lines.count {
            rows[lines[index]] = (lines[index + 1], lines[index + 3])
            index += 4
        }
        return rows
    }

    @Test("consumers lists them; --prune-idle --to hands every pending entry of the idle one to CONSUMER with the same delivery counts, deletes it and keeps the active one; --dry-run changes nothing")
    func prune() throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let env = ["EVT_REDIS_URL": redis.url]
        try Self.fill(redis, "orders", 20)
        #expect(try Evt.run(["group-create", "stream:orders", "g", "--from", "beginning"], environment: env).status == 0)
        // idle: 5 entries, 2 of them delivered twice; heir: 1; active: 3 (after the others went idle).
        try redis.cli(["XREADGROUP", "GROUP", "g", "idle", "COUNT", "5", "STREAMS", "orders", ">"])
        try redis.cli(["XREADGROUP", "GROUP", "g", "idle", "COUNT", "2", "STREAMS", "orders", "0"])
        try redis.cli(["XREADGROUP", "GROUP", "g", "heir", "COUNT", "1", "STREAMS", "orders", ">"])
        let first = try Self.pending(redis, "orders", "g")
        #expect(first.count == 6 && first["1000-1"]! == ("idle", "2") && first["1000-3"]! == ("idle", "1"))
        // Idle for over 6 s by the server's clock, then the active one reads: --prune-idle 5s
        // takes the first two, and the third stays active through the two runs below.
        #expect(waitUntil(timeout: 60) {
            let listed = (try? Self.objects(try Evt.run(["consumers", "stream:orders", "g"], environment: env))) ?? []
            return listed.count == 2 && listed.allSatisfy { ($0["idle_ms"] as? Int ?? 0) > 6000 }
        })
        try redis.cli(["XREADGROUP", "GROUP", "g", "active", "COUNT", "3", "STREAMS", "orders", ">"])

        let listed = try Evt.run(["consumers", "stream:orders", "g"], environment: env)
        #expect(listed.status == 0, "\(listed.stderr)")
        let consumers = Dictionary(uniqueKeysWithValues: try Self.objects(listed).map { ($0["consumer"] as? String ?? "", $0) })
        #expect(Set(consumers.keys) == ["idle", "heir", "active"])
        #expect(consumers["idle"]?["pending"] as? Int == 5 && consumers["active"]?["pending"] as? Int == 3)
        #expect(consumers["idle"]?["stream"] as? String == "orders" && consumers["idle"]?["group"] as? String == "g")

        func described(_ rows: [String: (String, String)]) -> [String: String] { rows.mapValues { "\($0.0)/\($0.1)" } }
        let before = try Self.pending(redis, "orders", "g")
        #expect(before.count == 9)
        let dryRun = try Evt.run(["consumers", "stream:orders", "g", "--prune-idle", "5s", "--to", "heir", "--dry-run"], environment: env)
        #expect(dryRun.status == 0, "\(dryRun.stderr)")
        #expect(try Self.objects(dryRun).map { $0["consumer"] as? String } == ["idle"], "\(dryRun.stdout)")
        #expect(described(try Self.pending(redis, "orders", "g")) == described(before), "a dry run changes nothing")

        let pruned = try Evt.run(["consumers", "stream:orders", "g", "--prune-idle", "5s", "--to", "heir"], environment: env)
        #expect(pruned.status == 0 && pruned.stdout.isEmpty && pruned.stderr.contains("removed consumer idle"), "\(pruned.stderr)")
        let after = try Self.pending(redis, "orders", "g")
        #expect(Set(after.keys) == Set(before.keys), "no pending entry dropped")
        for (id, (owner, deliveries)) in before {
            #expect(after[id]?.1 == deliveries, "\(id): delivery count kept")
            #expect(after[id]?.0 == (owner == "idle" ? "heir" : owner), "\(id): the idle one's entries now belong to heir")
        }
        let left = try Self.objects(try Evt.run(["consumers", "stream:orders", "g"], environment: env)).compactMap { $0["consumer"] as? String }
        #expect(Set(left) == ["heir", "active"])
    }

    @Test("consumers: --prune-idle without --to or --to without --prune-idle, and a topic, are usage errors (exit 2)")
    func consumersUsage() throws {
        let env = ["EVT_REDIS_URL": "redis://127.0.0.1:1", "EVT_KAFKA_BROKERS": "127.0.0.1:1"]
        for words in [["stream:orders", "g", "--prune-idle", "1m"], ["stream:orders", "g", "--to", "c"], ["topic:orders", "g"]] {
            let result = try Evt.run(["consumers"] + words, environment: env)
            #expect(result.status == 2, "\(words): \(result.stderr)")
        }
    }
}
