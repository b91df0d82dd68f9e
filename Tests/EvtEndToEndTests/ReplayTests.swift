import Foundation
import Testing
import EvtTestSupport

/// replay-from-offset on the mock Kafka cluster and a real redis-server.
@Suite("replay-from-offset")
struct ReplayTests {
    static func values(_ result: ProcessResult) -> [Int] {
        result.stdoutLines.map { line in
            let record = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            if let number = record["value"] as? Int { return number }
            return Int((record["value"] as! [String: Any])["value"] as! String)!
        }
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    @Test("Kafka: from an offset, -N, beginning, @TIME (found by timestamps on the mock), until an offset, @TIME or the end")
    func kafkaPositions() throws {
        let cluster = try mockCluster(topics: [("one", 1), ("four", 4)])
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers]
        _ = try Evt.run(["publish", "topic:one"], stdin: (1...20).map(String.init).joined(separator: "\n") + "\n", environment: env)
        usleep(300_000)
        let middle = Self.nowMs()
        usleep(300_000)
        _ = try Evt.run(["publish", "topic:one"], stdin: "21\n22\n23\n", environment: env)
        usleep(300_000)
        let later = Self.nowMs()
        usleep(300_000)
        _ = try Evt.run(["publish", "topic:one"], stdin: "24\n", environment: env)

        func replay(_ arguments: [String]) throws -> [Int] {
            let result = try Evt.run(["replay-from-offset", "topic:one"] + arguments, environment: env)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            return Self.values(result)
        }
        #expect(try replay(["5", "--until", "7"]) == [6, 7, 8])
        #expect(try replay(["-3"]) == [22, 23, 24])
        #expect(try replay(["beginning", "-c", "2"]) == [1, 2])
        #expect(try replay(["@\(middle)"]) == [21, 22, 23, 24])
        #expect(try replay(["@\(middle)", "--until", "@\(later)"]) == [21, 22, 23])
        #expect(try replay(["20", "--until", "end"]) == [21, 22, 23, 24])
        #expect(try replay(["end"]) == [])

        // All partitions, each in offset order.
        _ = try Evt.run(["publish", "topic:four", "--key", "k"], stdin: (1...40).map { #"{"k":\#($0 % 5),"n":\#($0)}"# }.joined(separator: "\n") + "\n", environment: env)
        let all = try Evt.run(["replay-from-offset", "topic:four", "beginning"], environment: env)
        #expect(all.stdoutLines.count == 40)
        var offsets: [Int: [Int]] = [:]
        for line in all.stdoutLines {
            let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            offsets[record["partition"] as! Int, default: []].append(record["offset"] as! Int)
        }
        #expect(offsets.values.allSatisfy { $0 == Array(0..<$0.count) })
    }

    @Test("a Kafka partition replayed into a Redis stream (the entries copy-between writes) and into another topic (the same partition): values, keys, headers and timestamps carry over")
    func kafkaTo() throws {
        let cluster = try mockCluster(topics: [("orders", 4), ("copy", 4)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "topic:orders/3", "--key", "user.id", "-H", "trace=abc"], stdin: ndjson(sampleLines(300)), environment: env)
        let toStream = try Evt.run(["replay-from-offset", "topic:orders/3", "100", "--to", "stream:orders-replay"], environment: env)
        #expect(toStream.status == 0, "\(toStream.stderr)")
        #expect(toStream.stderr.contains("replayed 200 events"))
        let entries = try redis.streamEntries("orders-replay")
        #expect(entries.map { $0.fields.last! } == (100..<300).map { "orders/3/\($0)" })
        // Field for field what copy-between writes for the same records (value, key, header.*,
        // kafka.timestamp, kafka.source).
        let copy = try Evt.run(["copy-between", "topic:orders/3", "stream:orders-copy"], environment: env)
        #expect(copy.status == 0, "\(copy.stderr)")
        let copied = try redis.streamEntries("orders-copy")
        #expect(copied.count == 300)
        #expect(entries.map(\.fields) == copied.dropFirst(100).map(\.fields))
        #expect(entries.first?.fields.count == 10, "\(entries.first?.fields ?? [])")

        let toTopic = try Evt.run(["replay-from-offset", "topic:orders/3", "beginning", "--to", "topic:copy"], environment: env)
        #expect(toTopic.status == 0, "\(toTopic.stderr)")
        let original = try kcatConsume(brokers: cluster.bootstrapServers, topic: "orders")
        let topicCopy = try kcatConsume(brokers: cluster.bootstrapServers, topic: "copy")
        #expect(topicCopy.count == 300)
        #expect(topicCopy.allSatisfy { $0.partition == 3 }, "a replayed record goes to its source partition where the topic has it")
        let byValue = Dictionary(uniqueKeysWithValues: original.map { ($0.payload, $0) })
        for record in topicCopy {
            let source = try #require(byValue[record.payload])
            #expect(record.key == source.key && record.headers.map(\.0) == ["trace"])
        }
        // Timestamps, as evt reads them back from both topics.
        func timestamps(_ topic: String) throws -> [String: Int] {
            let result = try Evt.run(["replay-from-offset", "topic:\(topic)", "beginning"], environment: env)
            var byValue: [String: Int] = [:]
            for line in result.stdoutLines {
                let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                let value = try JSONSerialization.data(withJSONObject: record["value"]!, options: [.sortedKeys])
                byValue[String(decoding: value, as: UTF8.self)] = record["timestamp"] as? Int
            }
            return byValue
        }
        #expect(try timestamps("copy") == (try timestamps("orders")))
    }

    @Test("times relative to now (@-Nms, --until @-Nms, @+1h, @-1d) on a topic and a stream alike")
    func relativeTimes() throws {
        let cluster = try mockCluster(topics: [("timed", 1)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        for target in ["topic:timed", "stream:timed"] {
            #expect(try Evt.run(["publish", target], stdin: "1\n2\n", environment: env).status == 0)
        }
        let firstStored = Self.nowMs()
        usleep(6_000_000)
        let gap = Self.nowMs()
        for target in ["topic:timed", "stream:timed"] {
            #expect(try Evt.run(["publish", target], stdin: "3\n", environment: env).status == 0)
        }
        func replay(_ source: String, _ arguments: [String]) throws -> [Int] {
            let result = try Evt.run(["replay-from-offset", source] + arguments, environment: env)
            #expect(result.status == 0, "\(source) \(arguments): \(result.stderr)")
            return Self.values(result)
        }
        // A time relative to now that falls in the 6 s between "2" and "3", however long each
        // run takes here: its middle, as seen from now (evt's now is a little later still).
        func middle() -> String { "@-\(Self.nowMs() - (firstStored + gap) / 2)ms" }
        for source in ["topic:timed", "stream:timed"] {
            #expect(try replay(source, [middle()]) == [3], "\(source)")
            #expect(try replay(source, ["beginning", "--until", middle()]) == [1, 2], "\(source)")
        }
        for source in ["topic:timed", "stream:timed"] {
            #expect(try replay(source, ["@+1h"]) == [], "\(source)")
            #expect(try replay(source, ["@-1d"]) == [1, 2, 3], "\(source)")
        }
        let bad = try Evt.run(["replay-from-offset", "stream:timed", "@-10"], environment: env)
        #expect(bad.status == 2 && bad.stderr.contains("@-10m"), "\(bad.stderr)")
    }

    @Test("Redis stream: from an id or @TIME (ISO 8601 too), until an id; -f goes on with new entries")
    func streamPositions() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        for n in 1...6 { try redis.cli(["XADD", "s", "\(1_700_000_000_000 + Int64(n) * 1000)-0", "value", String(n)]) }
        func replay(_ arguments: [String]) throws -> [Int] {
            let result = try Evt.run(["replay-from-offset", "stream:s"] + arguments, environment: env)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            return Self.values(result)
        }
        #expect(try replay(["1700000002000-0", "--until", "1700000004000-0"]) == [2, 3, 4])
        #expect(try replay(["@1700000005000"]) == [5, 6])
        #expect(try replay(["@2023-11-14T22:13:23Z"]) == [3, 4, 5, 6])   // 1700000003000 ms
        #expect(try replay(["beginning", "--until", "@1700000001500"]) == [1])
        #expect(try replay(["-2"]) == [5, 6])

        // --rate holds records back: 5 at 10/s take at least 0.4 s (the first goes at once).
        let started = Date()
        #expect(try replay(["beginning", "--rate", "10/s", "-c", "5"]) == [1, 2, 3, 4, 5])
        #expect(Date().timeIntervalSince(started) >= 0.4)

        let follower = try Evt.start(["replay-from-offset", "stream:s", "-1", "-f", "-c", "3"], environment: env)
        #expect(waitUntil { follower.stdoutLinesSoFar.count == 1 }, "the newest entry came before the new ones are added")
        try redis.cli(["XADD", "s", "*", "value", "7"])
        try redis.cli(["XADD", "s", "*", "value", "8"])
        let followed = follower.wait(timeout: 10)
        #expect(Self.values(followed) == [6, 7, 8])
    }

    @Test("usage errors: a list, -f with --until, a bad position")
    func usage() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        for arguments in [["list:l", "beginning"], ["stream:s", "beginning", "-f", "--until", "end"], ["stream:s", "yesterday"]] {
            let result = try Evt.run(["replay-from-offset"] + arguments, environment: env)
            #expect(result.status == 2, "\(arguments): \(result.stderr)")
            #expect(!result.stderr.isEmpty && result.stdout.isEmpty)
        }
    }
}
