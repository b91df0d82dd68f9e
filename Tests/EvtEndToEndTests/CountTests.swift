import Foundation
import Testing
import EvtTestSupport

/// `evt count` against what peers count (kcat -C -e, redis-cli XRANGE, XLEN, LLEN), and
/// `--key KEY` on tail, replay-from-offset and count against the partition a producer's
/// murmur2 partitioner chose (confluent-kafka, a peer with its own librdkafka).
@Suite("evt count and --key")
struct CountTests {
    static func object(_ line: String) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    }

    /// The one line evt count printed, checked to be one.
    static func counted(_ arguments: [String], _ env: [String: String]) throws -> [String: Any] {
        let result = try Evt.run(["count"] + arguments, environment: env)
        #expect(result.status == 0, "\(arguments): \(result.stderr)")
        #expect(result.stdoutLines.count == 1, "\(arguments): \(result.stdout)")
        return try #require(Self.object(result.stdoutLines.first ?? ""), "\(arguments): \(result.stdout)")
    }

    static func partitions(_ object: [String: Any]) -> [Int: Int] {
        var each: [Int: Int] = [:]
        for (partition, n) in object["partitions"] as? [String: Any] ?? [:] { each[Int(partition)!] = n as? Int }
        return each
    }

    private static let python3: String? = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        .map { "\($0)/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) }

    /// confluent-kafka produces value "i" with key keys[i], with the partitioner named.
    static func produceKeyed(_ brokers: String, topic: String, keys: [String], partitioner: String) throws {
        let script = """
            import sys
            from confluent_kafka import Producer
            brokers, topic, partitioner, keys = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
            p = Producer({"bootstrap.servers": brokers, "partitioner": partitioner})
            for i, key in enumerate(keys):
                p.produce(topic, key=key.encode(), value=str(i).encode())
            sys.exit(1 if p.flush(30) else 0)
            """
        let scratch = Scratch()
        let path = scratch.write("produce.py", Data(script.utf8))
        let result = try runProcess([try #require(python3), path, brokers, topic, partitioner, keys.joined(separator: ",")], timeout: 60)
        if result.stderr.contains("No module named 'confluent_kafka'") {
            Issue.record("the confluent-kafka Python package is missing: pip install confluent-kafka (.ci/run does)")
        }
        #expect(result.status == 0, "python3 producer: \(result.stderr)")
    }

    @Test("a topic: count from watermarks (exact false on the mock, which cannot say whether it is compacted), --exact, a partition, POSITION --until and --match, all against kcat -C -e")
    func topic() throws {
        let cluster = try mockCluster(topics: [("orders", 6)])
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers]
        let keys = (0..<90).map { "k\($0 % 9)" }
        try Self.produceKeyed(cluster.bootstrapServers, topic: "orders", keys: keys, partitioner: "murmur2")
        let peer = try kcatConsume(brokers: cluster.bootstrapServers, topic: "orders")
        #expect(peer.count == 90)
        var perPartition: [Int: Int] = [:]
        for record in peer { perPartition[record.partition, default: 0] += 1 }
        for partition in 0..<6 where perPartition[partition] == nil { perPartition[partition] = 0 }

        let watermarks = try Self.counted(["topic:orders"], env)
        #expect(watermarks["topic"] as? String == "orders" && watermarks["count"] as? Int == 90)
        #expect(Self.partitions(watermarks) == perPartition)
        // The mock answers no DescribeConfigs: compaction unknown, so not called exact.
        #expect(watermarks["exact"] as? Bool == false)
        let exact = try Self.counted(["topic:orders", "--exact"], env)
        #expect(exact["count"] as? Int == 90 && exact["exact"] as? Bool == true && Self.partitions(exact) == perPartition)

        let busiest = perPartition.max { $0.value < $1.value }!.key
        let one = try Self.counted(["topic:orders/\(busiest)"], env)
        #expect(one["count"] as? Int == perPartition[busiest] && Self.partitions(one) == [busiest: perPartition[busiest]!])

        // Offsets 2..4 of each partition (inclusive), and the last 2 of each.
        let range = try Self.counted(["topic:orders", "2", "--until", "4"], env)
        let expectedRange = perPartition.mapValues { max(0, min($0, 5) - 2) }
        #expect(range["count"] as? Int == expectedRange.values.reduce(0, +) && Self.partitions(range) == expectedRange)
        let last = try Self.counted(["topic:orders", "-2"], env)
        #expect(last["count"] as? Int == perPartition.values.map { min($0, 2) }.reduce(0, +))

        let matched = try Self.counted(["topic:orders", "--match", "key=k3"], env)
        #expect(matched["count"] as? Int == peer.filter { $0.key == "k3" }.count)
        #expect(matched["count"] as? Int == 10)
    }

    @Test("--key on tail, replay-from-offset and count: exactly that key's records, all from the partition the producer's murmur2 (or -X partitioner=consistent) chose")
    func key() throws {
        let cluster = try mockCluster(topics: [("keyed", 8), ("crc", 8)])
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers]
        let keys = (0..<120).map { "user-\($0 % 12)" }
        try Self.produceKeyed(cluster.bootstrapServers, topic: "keyed", keys: keys, partitioner: "murmur2")
        let peer = try kcatConsume(brokers: cluster.bootstrapServers, topic: "keyed")
        #expect(peer.count == 120)
        // Keys spread over more than one partition, or the test would prove little.
        #expect(Set(peer.map(\.partition)).count > 2)

        for key in ["user-0", "user-5", "user-11"] {
            let mine = peer.filter { $0.key == key }
            let partition = try #require(Set(mine.map(\.partition)).first)
            #expect(Set(mine.map(\.partition)).count == 1)
            let expectedOffsets = mine.map(\.offset)

            func check(_ result: ProcessResult, _ what: String) {
                #expect(result.status == 0, "\(what): \(result.stderr)")
                let records = result.stdoutLines.compactMap(Self.object)
                #expect(records.count == mine.count, "\(what): \(result.stdout)")
                #expect(records.allSatisfy { $0["key"] as? String == key && $0["partition"] as? Int == partition }, "\(what): \(result.stdout)")
                #expect(records.compactMap { $0["offset"] as? Int } == expectedOffsets, "\(what)")
            }
            check(try Evt.run(["tail", "topic:keyed", "--key", key, "-n", "1000"], environment: env), "tail --key \(key)")
            check(try Evt.run(["replay-from-offset", "topic:keyed", "beginning", "--key", key], environment: env),
                  "replay --key \(key)")
            let counted = try Self.counted(["topic:keyed", "--key", key], env)
            #expect(counted["count"] as? Int == mine.count && Self.partitions(counted) == [partition: mine.count])
        }

        // A producer with librdkafka's crc32 partitioner, read with -X partitioner=consistent.
        try Self.produceKeyed(cluster.bootstrapServers, topic: "crc", keys: keys, partitioner: "consistent")
        let crcPeer = try kcatConsume(brokers: cluster.bootstrapServers, topic: "crc")
        let crcMine = crcPeer.filter { $0.key == "user-7" }
        #expect(crcMine.count == 10)
        let tail = try Evt.run(["tail", "topic:crc", "--key", "user-7", "-n", "1000", "-X", "partitioner=consistent"], environment: env)
        #expect(tail.status == 0, "\(tail.stderr)")
        let records = tail.stdoutLines.compactMap(Self.object)
        #expect(records.count == 10 && records.allSatisfy { $0["partition"] as? Int == crcMine[0].partition && $0["key"] as? String == "user-7" },
                "\(tail.stdout)")

        // A partitioner that does not put a key in one place is refused, and says why.
        let random = try Evt.run(["count", "topic:keyed", "--key", "user-1", "-X", "partitioner=random"], environment: env)
        #expect(random.status == 2 && random.stderr.contains("partitioner=random does not always put a key in the same partition"), "\(random.stderr)")
    }

    /// Entries `1-1` … `1-N` of stream `name`, each with field n.
    static func addEntries(_ redis: RedisServer, _ name: String, _ count: Int) throws {
        try redis.cli(["EVAL", "for n = 1, tonumber(ARGV[1]) do redis.call('XADD', KEYS[1], '1-' .. n, 'n', n) end", "1", name, String(count)])
    }

    /// redis-cli XRANGE's entries between two ids (each entry is its id, then one field and value).
    static func xrangeCount(_ redis: RedisServer, _ name: String, _ first: String, _ last: String) throws -> Int {
        let result = try runProcess(["sh", "-c", "redis-cli -p \"$0\" XRANGE \"$1\" \"$2\" \"$3\" | wc -l", String(redis.port), name, first, last],
                                    timeout: 60)
        return Int(result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines))! / 3
    }

    @Test("a stream and a list: XLEN, LLEN, ranges between ids (also across the server-side pages, and as XLEN minus the entries outside) against redis-cli XRANGE, -N, --match")
    func redis() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        try Self.addEntries(redis, "big", 120_000)
        let all = try Self.counted(["stream:big"], env)
        #expect(all["stream"] as? String == "big" && all["count"] as? Int == 120_000 && all["exact"] as? Bool == true)
        #expect(all["partitions"] == nil)
        for (first, last) in [("1-1", "1-120000"), ("1-17", "1-110003"), ("1-50000", "1-100001"), ("1-7", "1-7"), ("1-9", "1-8")] {
            let range = try Self.counted(["stream:big", first, "--until", last], env)
            #expect(range["count"] as? Int == (try Self.xrangeCount(redis, "big", first, last)), "\(first)..\(last)")
        }
        // Holes inside and outside the ranges (XDEL): a range larger than what lies outside it is
        // counted as XLEN minus the outside, which must still agree with XRANGE.
        try redis.cli(["XDEL", "big", "1-3", "1-30", "1-60000", "1-110004", "1-119999"])
        for (first, last) in [("1-1", "1-120000"), ("1-17", "1-110003"), ("1-2", "1-119000"), ("1-40", "1-41")] {
            let range = try Self.counted(["stream:big", first, "--until", last], env)
            #expect(range["count"] as? Int == (try Self.xrangeCount(redis, "big", first, last)), "\(first)..\(last) with holes")
        }
        #expect(try Self.counted(["stream:big", "1-100000"], env)["count"] as? Int == 19_999)
        #expect(try Self.counted(["stream:big", "-10"], env)["count"] as? Int == 10)
        let length = Int(try redis.cli(["XLEN", "big"]).trimmingCharacters(in: .whitespacesAndNewlines))!
        #expect(length == 119_995)
        #expect(try Self.counted(["stream:big", "beginning", "--until", "-10"], env)["count"] as? Int == length - 10)
        #expect(try Self.counted(["stream:big", "end"], env)["count"] as? Int == 0)

        try Self.addEntries(redis, "small", 100)
        let matched = try Self.counted(["stream:small", "--match", "value.n=42"], env)
        #expect(matched["count"] as? Int == 1)
        #expect(try Self.counted(["stream:small", "1-50", "--match", "value.n=75"], env)["count"] as? Int == 1)
        #expect(try Self.counted(["stream:small", "1-50", "--until", "1-60", "--match", "value.n=75"], env)["count"] as? Int == 0)
        #expect(try Self.counted(["stream:missing"], env)["count"] as? Int == 0)

        try redis.cli(["RPUSH", "jobs", "a", "b", "c", "d"])
        let list = try Self.counted(["list:jobs"], env)
        #expect(list["list"] as? String == "jobs" && list["count"] as? Int == 4 && list["exact"] as? Bool == true)
        // Counting never pops: the list is as it was.
        #expect(try redis.cli(["LLEN", "jobs"]).trimmingCharacters(in: .whitespacesAndNewlines) == "4")
    }

    @Test("usage errors: a channel, --key on a stream or a list, a POSITION or --match on a list, too many operands")
    func usage() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        func refused(_ arguments: [String], saying text: String) throws {
            let result = try Evt.run(arguments, environment: env)
            #expect(result.status == 2 && result.stdout.isEmpty && result.stderr.contains(text), "\(arguments): \(result.stderr)")
        }
        try refused(["count", "channel:news"], saying: "a channel keeps nothing to count")
        try refused(["count", "stream:s", "--key", "k"], saying: "--key is for Kafka topics")
        try refused(["count", "list:l", "--key", "k"], saying: "--key is for Kafka topics")
        try refused(["tail", "stream:s", "--key", "k"], saying: "--key is for Kafka topics")
        try refused(["replay-from-offset", "stream:s", "beginning", "--key", "k"], saying: "--key is for Kafka topics")
        try refused(["count", "list:l", "beginning"], saying: "a POSITION is for streams and topics")
        try refused(["count", "list:l", "--match", "value=x"], saying: "--match is for streams and topics")
        try refused(["count", "stream:s", "1-1", "2-2"], saying: "at most one POSITION")
        try refused(["count"], saying: "count needs a SOURCE")
    }
}
