import Foundation
import Testing
import EvtTestSupport

/// `evt trim` and `publish --max-age` on a real redis-server (and the cluster fixture),
/// checked with redis-cli: what goes, what stays, and that no group loses anything it needs.
@Suite("evt trim")
struct TrimTests {
    /// Adds entries `range` to `stream` with ids `MS-N`: `oldMs` for N ≤ `oldUpTo`, else now.
    static func add(_ redis: RedisServer, _ stream: String, _ range: ClosedRange<Int>, oldMs: Int64, oldUpTo: Int = 0) throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let script = """
            for n = tonumber(ARGV[1]), tonumber(ARGV[2]) do
                local ms = ARGV[4]
                if n <= tonumber(ARGV[3]) then ms = ARGV[5] end
                redis.call('XADD', KEYS[1], ms .. '-' .. n, 'n', n)
            end
            """
        try redis.cli(["EVAL", script, "1", stream, String(range.lowerBound), String(range.upperBound), String(oldUpTo),
                       String(now), String(oldMs)])
    }

    static func ids(_ redis: RedisServer, _ stream: String) throws -> [String] {
        try redis.streamEntries(stream).map(\.id)
    }

    static func plan(_ result: ProcessResult) -> [String: Any]? {
        guard result.stdoutLines.count == 1 else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(result.stdoutLines[0].utf8)) as? [String: Any]
    }

    @Test("--acked with two groups at different positions, one with pending entries: only what both acknowledged goes; XPENDING and XINFO GROUPS are unchanged")
    func acked() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        let old = Int64(Date().timeIntervalSince1970 * 1000) - 7_200_000
        try Self.add(redis, "orders", 1...100, oldMs: old, oldUpTo: 100)
        _ = try Evt.run(["group-create", "stream:orders", "billing", "--from", "beginning"], environment: env)
        _ = try Evt.run(["group-create", "stream:orders", "audit", "--from", "beginning"], environment: env)
        // billing consumed and acknowledged 60; audit read 30 and acknowledged the first 20.
        #expect(try Evt.run(["subscribe", "stream:orders", "--group", "billing", "-c", "60"], environment: env).status == 0)
        try redis.cli(["XREADGROUP", "GROUP", "audit", "w1", "COUNT", "30", "STREAMS", "orders", ">"])
        try redis.cli(["XACK", "orders", "audit"] + (1...20).map { "\(old)-\($0)" })
        let groupsBefore = try redis.cli(["XINFO", "GROUPS", "orders"])
        // Extended XPENDING: id, consumer, idle ms (which changes), deliveries.
        func pending() throws -> [String] {
            let lines = try redis.cli(["XPENDING", "orders", "audit", "-", "+", "100"]).split(separator: "\n").map(String.init)
            return lines.enumerated().filter { $0.offset % 4 != 2 }.map(\.element)
        }
        let pendingBefore = try pending()
        #expect(pendingBefore.count == 30)

        let dryRun = try Evt.run(["trim", "stream:orders", "--acked", "--dry-run"], environment: env)
        #expect(dryRun.status == 0, "\(dryRun.stderr)")
        let plan = try #require(Self.plan(dryRun), "\(dryRun.stdout)")
        #expect(plan["stream"] as? String == "orders" && plan["remove"] as? Int == 20 && plan["up_to"] as? String == "\(old)-20")
        #expect(try redis.cli(["XLEN", "orders"]).trimmingCharacters(in: .whitespacesAndNewlines) == "100")

        let trimmed = try Evt.run(["trim", "stream:orders", "--acked"], environment: env)
        #expect(trimmed.status == 0 && trimmed.stdout.isEmpty, "\(trimmed.stderr)")
        #expect(trimmed.stderr.contains("removed 20 entries from stream orders, up to \(old)-20"), "\(trimmed.stderr)")
        #expect(try Self.ids(redis, "orders") == (21...100).map { "\(old)-\($0)" })
        #expect(try pending() == pendingBefore)
        #expect(try redis.cli(["XINFO", "GROUPS", "orders"]) == groupsBefore)
        // Run again: nothing more is acknowledged by both.
        let again = try Evt.run(["trim", "stream:orders", "--acked"], environment: env)
        #expect(again.status == 0 && again.stderr.contains("nothing to remove"), "\(again.stderr)")
        #expect(try redis.cli(["XLEN", "orders"]).trimmingCharacters(in: .whitespacesAndNewlines) == "80")
    }

    @Test("conditions combine: an entry goes only if it meets --acked, --older-than and --maxlen together")
    func combined() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        let old = Int64(Date().timeIntervalSince1970 * 1000) - 7_200_000
        // 1–50 two hours old, 51–100 new; the group has consumed and acknowledged 1–70.
        try Self.add(redis, "s", 1...100, oldMs: old, oldUpTo: 50)
        _ = try Evt.run(["group-create", "stream:s", "g", "--from", "beginning"], environment: env)
        #expect(try Evt.run(["subscribe", "stream:s", "--group", "g", "-c", "70"], environment: env).status == 0)
        func remove(_ options: [String]) throws -> Int? {
            let result = try Evt.run(["trim", "stream:s", "--dry-run"] + options, environment: env)
            #expect(result.status == 0, "\(result.stderr)")
            return Self.plan(result)?["remove"] as? Int
        }
        #expect(try remove(["--acked"]) == 70)
        #expect(try remove(["--older-than", "1h"]) == 50)
        #expect(try remove(["--older-than", "3h"]) == 0)
        #expect(try remove(["--maxlen", "90"]) == 10)
        #expect(try remove(["--maxlen", "0"]) == 100)
        #expect(try remove(["--maxlen", "100"]) == 0)
        #expect(try remove(["--acked", "--older-than", "1h"]) == 50)
        #expect(try remove(["--acked", "--older-than", "1h", "--maxlen", "60"]) == 40)
        #expect(try redis.cli(["XLEN", "s"]).trimmingCharacters(in: .whitespacesAndNewlines) == "100")

        let trimmed = try Evt.run(["trim", "stream:s", "--acked", "--older-than", "1h", "--maxlen", "60"], environment: env)
        #expect(trimmed.status == 0, "\(trimmed.stderr)")
        let ids = try Self.ids(redis, "s")
        #expect(ids.count == 60 && ids.first == "\(old)-41" && ids.last?.hasSuffix("-100") == true, "\(ids.prefix(3))")
    }

    @Test("errors: no condition, --acked without groups, a missing key, a list, a topic")
    func errors() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        try redis.cli(["XADD", "lonely", "*", "a", "b"])
        try redis.cli(["RPUSH", "jobs", "x"])
        let none = try Evt.run(["trim", "stream:lonely"], environment: env)
        #expect(none.status == 2 && none.stderr.contains("--acked, --older-than DURATION and --maxlen N"), "\(none.stderr)")
        let noGroups = try Evt.run(["trim", "stream:lonely", "--acked"], environment: env)
        #expect(noGroups.status == 2 && noGroups.stderr.contains("has no consumer groups"), "\(noGroups.stderr)")
        let missing = try Evt.run(["trim", "stream:nothing", "--maxlen", "5"], environment: env)
        #expect(missing.status == 1 && missing.stderr.contains("stream nothing does not exist"), "\(missing.stderr)")
        let list = try Evt.run(["trim", "stream:jobs", "--maxlen", "5"], environment: env)
        #expect(list.status == 1 && list.stderr.contains("is a Redis list, not a stream"), "\(list.stderr)")
        let topic = try Evt.run(["trim", "topic:orders", "--maxlen", "5"], environment: env)
        #expect(topic.status == 2 && topic.stderr.contains("retention"), "\(topic.stderr)")
        let duration = try Evt.run(["trim", "stream:lonely", "--older-than", "30"], environment: env)
        #expect(duration.status == 2 && duration.stderr.contains("give a unit"), "\(duration.stderr)")
        #expect(try redis.cli(["XLEN", "lonely"]).trimmingCharacters(in: .whitespacesAndNewlines) == "1")
    }

    @Test("on a Redis Cluster, through a node that does not serve the stream")
    func cluster() throws {
        let cluster = try RedisCluster()
        let seed = try cluster.nonOwnerPort(forKey: "events")
        let env = ["EVT_REDIS_URL": "redis://127.0.0.1:\(seed)"]
        let published = try Evt.run(["publish", "stream:events"], stdin: (1...30).map { "{\"n\":\($0)}" }.joined(separator: "\n") + "\n",
                                    environment: env)
        #expect(published.status == 0, "\(published.stderr)")
        let trimmed = try Evt.run(["trim", "stream:events", "--maxlen", "10"], environment: env)
        #expect(trimmed.status == 0 && trimmed.stderr.contains("removed 20 entries"), "\(trimmed.stderr)")
        #expect(try cluster.streamEntries("events").map { $0.fields.last } == (21...30).map { "\($0)" })
    }

    @Test("publish --max-age trims entries older than the age as it adds (XADD MINID ~); with --maxlen it is a usage error")
    func publishMaxAge() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        let old = Int64(Date().timeIntervalSince1970 * 1000) - 7_200_000
        // Three full nodes of old entries (stream-node-max-entries is 100): ~ removes whole nodes.
        try Self.add(redis, "events", 1...300, oldMs: old, oldUpTo: 300)
        let published = try Evt.run(["publish", "stream:events", "--max-age", "1h"],
                                    stdin: (1...10).map { "{\"new\":\($0)}" }.joined(separator: "\n") + "\n", environment: env)
        #expect(published.status == 0, "\(published.stderr)")
        let entries = try redis.streamEntries("events")
        #expect(entries.count == 10, "\(entries.count) entries")
        #expect(entries.map { $0.fields.last } == (1...10).map { "\($0)" })
        let both = try Evt.run(["publish", "stream:events", "--max-age", "1h", "--maxlen", "5"], stdin: "{}\n", environment: env)
        #expect(both.status == 2 && both.stderr.contains("evt trim"), "\(both.stderr)")
        let topic = try Evt.run(["publish", "topic:events", "--max-age", "1h"], stdin: "{}\n", environment: env)
        #expect(topic.status == 2 && topic.stderr.contains("--max-age"), "\(topic.stderr)")
        #expect(try redis.cli(["XLEN", "events"]).trimmingCharacters(in: .whitespacesAndNewlines) == "10")
    }
}
