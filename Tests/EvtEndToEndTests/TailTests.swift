import Foundation
import Testing
import EvtTestSupport

@Suite("tail")
struct TailTests {
    @Test("a topic: the last N of every partition, oldest first within each, in the contract's record shape")
    func topic() throws {
        let cluster = try mockCluster(topics: [("t", 4)])
        let environment = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers]
        #expect(try Evt.run(["publish", "topic:t", "--key", "user.id", "-H", "trace=abc"], stdin: ndjson(sampleLines(400)),
                            environment: environment).status == 0)
        let result = try Evt.run(["tail", "topic:t", "-n", "3"], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        let records = result.stdoutLines.map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(records.count == 12)
        var byPartition: [Int: [Int]] = [:]
        for record in records { byPartition[record["partition"] as! Int, default: []].append(record["offset"] as! Int) }
        for offsets in byPartition.values { #expect(offsets == offsets.sorted() && offsets.count == 3) }
        let line = result.stdoutLines[0]
        #expect(line.hasPrefix(#"{"topic":"t","partition":"#))
        #expect(line.contains(#","headers":{"trace":"abc"},"value":{"n":"#), "\(line)")
        let first = records[0]
        #expect((first["key"] as? String)?.hasPrefix("u") == true)
        #expect(first["timestamp"] is Int)
    }

    @Test("one partition with topic:NAME/P")
    func onePartition() throws {
        let cluster = try mockCluster(topics: [("t", 4)])
        let environment = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers]
        _ = try Evt.run(["publish", "topic:t/2"], stdin: ndjson(sampleLines(5)), environment: environment)
        let result = try Evt.run(["tail", "topic:t/2", "-n", "2"], environment: environment)
        #expect(result.stdoutLines.count == 2)
        #expect(result.stdoutLines.allSatisfy { $0.contains(#""partition":2,"offset":"#) })
        #expect(result.stdoutLines.map { sequenceNumber(of: String($0.split(separator: "\"value\":")[1].dropLast()))! } == [4, 5])
    }

    @Test("the last N of a long stream with holes: the same entries as redis-cli reads, walked back over many pages")
    func lastOfLongStream() throws {
        let redis = try RedisServer()
        let environment = ["EVT_REDIS_URL": redis.url]
        #expect(try Evt.run(["publish", "stream:big"], stdin: ndjson(sampleLines(50_000)), environment: environment).status == 0)
        // Holes among the last N, so that counting back cannot be done from the ids.
        let ids = try redis.streamEntries("big").map(\.id)
        _ = try redis.cli(["XDEL", "big"] + stride(from: 10_000, to: 50_000, by: 997).map { ids[$0] })
        let left = try redis.streamEntries("big").map(\.id)   // read by redis-cli
        #expect(left.count == 50_000 - 41)
        // 45 000: many pages walked back, and not a multiple of a page.
        for count in [45_000, 20_000, 1000, 1] {
            let tail = try Evt.run(["tail", "stream:big", "-n", String(count)], environment: environment)
            #expect(tail.status == 0, "\(tail.stderr)")
            let printed = tail.stdoutLines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["id"] as? String }
            #expect(printed == Array(left.suffix(count)), "-n \(count): \(printed.count) printed")
        }
        let all = try Evt.run(["tail", "stream:big", "-n", "60000"], environment: environment)
        #expect(all.stdoutLines.count == left.count)
    }

    @Test("a stream and a list: the last N oldest first; the list is left untouched")
    func streamAndList() throws {
        let redis = try RedisServer()
        let environment = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:s"], stdin: ndjson(sampleLines(30)), environment: environment)
        let stream = try Evt.run(["tail", "stream:s", "-n", "3"], environment: environment)
        #expect(stream.status == 0)
        #expect(stream.stdoutLines.count == 3)
        #expect(stream.stdoutLines[0].hasPrefix(#"{"stream":"s","id":""#))
        #expect(stream.stdoutLines.map { $0.contains(#""value":{"n":"28","#) } == [true, false, false])

        _ = try Evt.run(["publish", "list:l"], stdin: "1\n2\n3\n4\n", environment: environment)
        let list = try Evt.run(["tail", "list:l", "-n", "2"], environment: environment)
        #expect(list.stdoutText == "{\"list\":\"l\",\"value\":3}\n{\"list\":\"l\",\"value\":4}\n")
        #expect(try redis.cli(["LLEN", "l"]) == "4\n")
    }

    @Test("the last 25 000 of a 30 000-entry stream: found by walking back, then read forward in pages")
    func streamLastOfMany() throws {
        let redis = try RedisServer()
        let environment = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:big"], stdin: ndjson((1...30_000).map { #"{"n":\#($0)}"# }), environment: environment)
        let result = try Evt.run(["tail", "stream:big", "-n", "25000"], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        let numbers = result.stdoutLines.map { line in Int(line.split(separator: "\"n\":\"")[1].prefix { $0.isNumber })! }
        #expect(numbers == Array(5001...30_000))
    }

    @Test("more than one page of a stream (25 000 entries) comes back complete and in order")
    func streamPages() throws {
        let redis = try RedisServer()
        let environment = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:big"], stdin: ndjson((1...25_000).map { #"{"n":\#($0)}"# }), environment: environment)
        let all = try Evt.run(["tail", "stream:big", "-n", "30000"], environment: environment)
        #expect(all.stdoutLines.count == 25_000)
        let some = try Evt.run(["tail", "stream:big", "-n", "12345"], environment: environment)
        let numbers = some.stdoutLines.map { Int($0.split(separator: "\"n\":\"")[1].prefix { $0 != "\"" })! }
        #expect(numbers == Array((25_000 - 12_345 + 1)...25_000))
    }

    @Test("a channel: -f prints messages as they arrive, pattern subscriptions carry the pattern")
    func channelFollow() throws {
        let redis = try RedisServer()
        let evt = try Evt.start(["tail", "channel:news.*", "-f"], environment: ["EVT_REDIS_URL": redis.url])
        #expect(try waitUntil { try redis.cli(["PUBSUB", "NUMPAT"]).hasPrefix("1") })
        try redis.cli(["PUBLISH", "news.eu", #"{"headline":"x"}"#])
        try redis.cli(["PUBLISH", "news.us", "plain"])
        #expect(waitUntil { evt.stdoutLinesSoFar.count >= 2 })
        evt.signal(SIGINT)
        let result = evt.wait(timeout: 10)
        #expect(result.status == 130)
        #expect(result.stdoutLines == [#"{"channel":"news.eu","pattern":"news.*","value":{"headline":"x"}}"#,
                                       #"{"channel":"news.us","pattern":"news.*","value":"plain"}"#])
    }

    @Test("tail -f | head -n 3 exits promptly, for a stream and a topic")
    func headClosesPipe() throws {
        let redis = try RedisServer()
        let cluster = try mockCluster(topics: [("t", 2)])
        let environment = Evt.environment(["EVT_REDIS_URL": redis.url, "EVT_KAFKA_BROKERS": cluster.bootstrapServers])
        _ = try Evt.run(["publish", "stream:s"], stdin: ndjson(sampleLines(10)), environment: environment)
        _ = try Evt.run(["publish", "topic:t"], stdin: ndjson(sampleLines(10)), environment: environment)
        for source in ["stream:s", "topic:t"] {
            let start = Date()
            let result = try runProcess(["/bin/sh", "-c", "'\(Evt.binary)' tail \(source) -n 5 -f | head -n 3"],
                                        environment: environment, timeout: 60)
            #expect(result.stdoutLines.count == 3)
            // Without noticing the closed pipe a following tail would run until the timeout.
            #expect(Date().timeIntervalSince(start) < 15, "\(source): took \(Date().timeIntervalSince(start)) s")
        }
    }

    @Test("SIGTERM stops a following tail cleanly with exit 143")
    func sigterm() throws {
        let redis = try RedisServer()
        let evt = try Evt.start(["tail", "stream:s", "-f"], environment: ["EVT_REDIS_URL": redis.url])
        #expect(try waitUntil { try redis.blockedClients() == 1 }, "it waits for more")
        evt.signal(SIGTERM)
        #expect(evt.wait(timeout: 10).status == 143)
    }

    @Test("a following tail whose Redis connection is lost exits 1 and prints nothing twice (stdout cannot take back a retry)")
    func lostConnection() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        let evt = try Evt.start(["tail", "stream:s", "-n", "0", "-f"], environment: env)
        #expect(try waitUntil { try redis.blockedClients() == 1 }, "it waits for more")
        #expect(try Evt.run(["publish", "stream:s"], stdin: ndjson((1...3).map { #"{"n":"\#($0)"}"# }), environment: env).status == 0)
        #expect(waitUntil { evt.stdoutLinesSoFar.count >= 3 })
        _ = try redis.cli(["CLIENT", "KILL", "TYPE", "normal"])
        let result = evt.wait(timeout: 10)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stdoutLines.count == 3, "\(result.stdout)")
        #expect(result.stderr.contains("lost the connection"), "\(result.stderr)")
    }
}
