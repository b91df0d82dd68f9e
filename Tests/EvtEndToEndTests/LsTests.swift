import Foundation
import Testing
import EvtTestSupport

/// `evt ls` against the librdkafka mock, a standalone redis-server and the 3-master Redis
/// Cluster fixture, checked against what kcat (-L -J, -Q) and redis-cli (XINFO, LLEN, PUBSUB
/// NUMSUB) say about the same servers.
@Suite("evt ls")
struct LsTests {
    /// Every stdout line parsed; a line that is not a JSON object fails the test.
    static func objects(_ result: ProcessResult) throws -> [[String: Any]] {
        try result.stdoutLines.map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not an object: \(line)")
        }
    }

    static func named(_ objects: [[String: Any]], _ kind: String) -> [String: [String: Any]] {
        var byName: [String: [String: Any]] = [:]
        for object in objects { if let name = object[kind] as? String { byName[name] = object } }
        return byName
    }

    /// `kcat -Q` for `timestamp` (-2 log start, -1 log end) of every partition of `topics`.
    static func kcatOffsets(_ brokers: String, _ topics: [(String, Int)], _ timestamp: Int) throws -> [String: [Int: Int]] {
        let query = topics.flatMap { topic, partitions in (0..<partitions).flatMap { ["-t", "\(topic):\($0):\(timestamp)"] } }
        let result = try runProcess(["kcat", "-b", brokers, "-Q", "-J"] + query, timeout: 30)
        #expect(result.status == 0, "kcat -Q: \(result.stderr)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: [String: Any]])
        return parsed.mapValues { topic in
            var offsets: [Int: Int] = [:]
            for (_, value) in topic {
                if let partition = value as? [String: Any], let number = partition["partition"] as? Int,
                   let offset = partition["offset"] as? Int { offsets[number] = offset }
            }
            return offsets
        }
    }

    static func cliInt(_ text: String) -> Int? { Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) }

    /// XINFO STREAM's or a group's flat `--raw` listing as a dictionary of its scalar fields.
    static func fields(_ lines: ArraySlice<String>) -> [String: String] {
        var result: [String: String] = [:]
        var index = lines.startIndex
        while index + 1 < lines.endIndex {
            result[lines[index]] = lines[index + 1]
            index += 2
        }
        return result
    }

    @Test("a Kafka cluster: brokers, controller and topics as kcat -L -J shows them; watermarks and records as kcat -Q says; __ topics only by a __ pattern")
    func kafka() throws {
        let topics = [("orders", 4), ("audit", 3), ("empty", 2), ("__internal", 1)]
        let cluster = try mockCluster(brokers: 3, topics: topics)
        let environment = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers]
        for (topic, count) in [("orders", 40), ("audit", 7), ("__internal", 2)] {
            let lines = (1...count).map { #"{"id":\#($0)}"# }
            let published = try Evt.run(["publish", "topic:\(topic)", "--key", "id"], stdin: ndjson(lines), environment: environment)
            #expect(published.status == 0, "\(published.stderr)")
        }
        let result = try Evt.run(["ls", "kafka://\(cluster.bootstrapServers)"], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        let objects = try Self.objects(result)
        #expect(objects.first?["kafka"] as? String == cluster.bootstrapServers, "the cluster line comes first")

        let peer = try runProcess(["kcat", "-b", cluster.bootstrapServers, "-L", "-J"], timeout: 30)
        let listing = try #require(try JSONSerialization.jsonObject(with: peer.stdout) as? [String: Any])
        let head = objects[0]
        #expect(head["controller"] as? Int == listing["controllerid"] as? Int)
        #expect((head["cluster_id"] as? String ?? "").isEmpty == false)
        let brokers = (head["brokers"] as? [[String: Any]] ?? []).map { "\($0["id"]!)=\($0["host"]!):\($0["port"]!)" }
        let peerBrokers = (listing["brokers"] as? [[String: Any]] ?? []).map { "\($0["id"]!)=\($0["name"]!)" }
        #expect(brokers.count == 3 && brokers == peerBrokers.sorted(), "\(brokers) vs \(peerBrokers)")

        let listed = objects.compactMap { $0["topic"] as? String }
        #expect(listed == ["audit", "empty", "orders"], "sorted, __internal hidden: \(listed)")
        let starts = try Self.kcatOffsets(cluster.bootstrapServers, topics, -2)
        let ends = try Self.kcatOffsets(cluster.bootstrapServers, topics, -1)
        let peerTopics = Dictionary(uniqueKeysWithValues: (listing["topics"] as? [[String: Any]] ?? []).map { ($0["topic"] as! String, $0) })
        for (name, object) in Self.named(objects, "topic") {
            let partitions = try #require(object["partitions"] as? [[String: Any]])
            let peerPartitions = try #require(peerTopics[name]?["partitions"] as? [[String: Any]])
            #expect(partitions.map { $0["partition"] as! Int } == Array(0..<peerPartitions.count), "\(name)")
            var records = 0
            for partition in partitions {
                let number = partition["partition"] as! Int
                let peerPartition = try #require(peerPartitions.first { $0["partition"] as? Int == number })
                #expect(partition["leader"] as? Int == peerPartition["leader"] as? Int, "\(name)/\(number) leader")
                let replicas = (peerPartition["replicas"] as? [[String: Any]] ?? []).map { $0["id"] as! Int }
                let isr = (peerPartition["isrs"] as? [[String: Any]] ?? []).map { $0["id"] as! Int }
                #expect(partition["replicas"] as? [Int] == replicas && partition["isr"] as? [Int] == isr, "\(name)/\(number)")
                #expect(partition["log_start"] as? Int == starts[name]?[number], "\(name)/\(number) log_start")
                #expect(partition["log_end"] as? Int == ends[name]?[number], "\(name)/\(number) log_end")
                records += (partition["log_end"] as? Int ?? 0) - (partition["log_start"] as? Int ?? 0)
            }
            #expect(object["records"] as? Int == records)
        }
        #expect(Self.named(objects, "topic")["orders"]?["records"] as? Int == 40)
        #expect(Self.named(objects, "topic")["audit"]?["records"] as? Int == 7)
        #expect(Self.named(objects, "topic")["empty"]?["records"] as? Int == 0)
        // kcat's peer view of the records themselves.
        #expect(try kcatConsume(brokers: cluster.bootstrapServers, topic: "orders").count == 40)

        // Patterns: only matching topics, no cluster line; a __ pattern shows internal topics.
        let pattern = try Evt.run(["ls", "topic:*r*", "topic:__*"], environment: environment)
        #expect(pattern.status == 0, "\(pattern.stderr)")
        #expect(try Self.objects(pattern).map { $0["topic"] as? String } == ["__internal", "orders"], "\(pattern.stdoutText)")
        #expect(Self.named(try Self.objects(pattern), "topic")["__internal"]?["records"] as? Int == 2)
        let table = try Evt.run(["ls", "topic:orders", "--format", "table"], environment: environment)
        #expect(table.status == 0 && table.stdoutLines.first?.hasPrefix("TOPIC") == true, "\(table.stdoutText)")
        #expect(table.stdoutLines.count == 2 && table.stdoutLines[1].hasPrefix("orders"), "\(table.stdoutText)")
    }

    @Test("a standalone Redis: streams (XINFO STREAM and GROUPS, exact lag where XINFO says nil), lists (LLEN), channels (PUBSUB NUMSUB), sorted; patterns")
    func redis() throws {
        let redis = try RedisServer()
        let environment = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:orders"], stdin: (1...50).map { #"{"n":\#($0)}"# }.joined(separator: "\n") + "\n", environment: environment)
        _ = try Evt.run(["publish", "stream:audit"], stdin: "{\"n\":1}\n", environment: environment)
        try redis.cli(["XGROUP", "CREATE", "orders", "billing", "0"])
        try redis.cli(["XGROUP", "CREATE", "orders", "ship", "0"])
        try redis.cli(["XREADGROUP", "GROUP", "billing", "w1", "COUNT", "20", "STREAMS", "orders", ">"])
        try redis.cli(["XREADGROUP", "GROUP", "ship", "w1", "COUNT", "5", "STREAMS", "orders", ">"])
        try redis.cli(["XREADGROUP", "GROUP", "ship", "w2", "COUNT", "5", "STREAMS", "orders", ">"])
        try redis.cli(["XACK", "orders", "ship", try redis.cli(["XRANGE", "orders", "-", "+", "COUNT", "1"]).split(separator: "\n")[0].description])
        // An XDEL past billing's position: Redis' own lag becomes nil; evt counts it.
        let ids = try redis.cli(["XRANGE", "orders", "-", "+"]).split(separator: "\n").map(String.init)
        try redis.cli(["XDEL", "orders", ids[40 * 3]])
        _ = try Evt.run(["publish", "list:jobs"], stdin: "1\n2\n3\n", environment: environment)
        _ = try Evt.run(["publish", "list:jobs:dlq"], stdin: "1\n", environment: environment)
        try redis.cli(["SET", "plain", "x"])   // neither stream nor list: not listed
        let subscribers = try (0..<2).map { _ in
            try RunningProcess(["redis-cli", "-p", String(redis.port), "SUBSCRIBE", "news", "alerts"], stdinData: Data())
        }
        defer { for subscriber in subscribers { _ = subscriber.stop() } }
        #expect(waitUntil { (try? redis.cli(["PUBSUB", "NUMSUB", "news", "alerts"]))?.split(separator: "\n").map(String.init) == ["news", "2", "alerts", "2"] })

        let result = try Evt.run(["ls", redis.url], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        let objects = try Self.objects(result)
        #expect(objects.map { ($0["stream"] ?? $0["list"] ?? $0["channel"]) as? String }
                == ["audit", "orders", "jobs", "jobs:dlq", "alerts", "news"], "sorted by name within kind: \(result.stdoutText)")

        let orders = try #require(Self.named(objects, "stream")["orders"])
        let info = Self.fields(try redis.cli(["XINFO", "STREAM", "orders"]).split(separator: "\n").map(String.init)[...])
        #expect(orders["length"] as? Int == Int(info["length"] ?? "") && orders["length"] as? Int == 49)
        #expect(orders["first_id"] as? String == ids[0] && orders["last_id"] as? String == info["last-generated-id"])
        let groups = try #require(orders["groups"] as? [[String: Any]])
        #expect(groups.map { $0["group"] as? String } == ["billing", "ship"])
        let groupLines = try redis.cli(["XINFO", "GROUPS", "orders"]).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for group in groups {
            let name = group["group"] as! String
            let start = try #require(groupLines.firstIndex(of: name)) - 1
            let peer = Self.fields(groupLines[start..<min(start + 12, groupLines.count)])
            #expect(group["consumers"] as? Int == Int(peer["consumers"] ?? ""), "\(name)")
            #expect(group["pending"] as? Int == Int(peer["pending"] ?? ""), "\(name)")
            #expect(group["last_delivered_id"] as? String == peer["last-delivered-id"], "\(name)")
            if let lag = Int(peer["lag"] ?? "") { #expect(group["lag"] as? Int == lag, "\(name): XINFO's lag") }
        }
        #expect(Int(Self.fields(groupLines[0..<12])["lag"] ?? "") == nil, "billing's lag is nil in XINFO after the XDEL")
        #expect(groups[0]["lag"] as? Int == 29, "billing: 50 entries, 20 delivered, one after them deleted")
        #expect(groups[1]["lag"] as? Int == 39 && groups[1]["pending"] as? Int == 9 && groups[1]["consumers"] as? Int == 2)
        #expect(Self.named(objects, "stream")["audit"]?["groups"] as? [Any] != nil)

        #expect(Self.named(objects, "list")["jobs"]?["length"] as? Int == Self.cliInt(try redis.cli(["LLEN", "jobs"])))
        #expect(Self.named(objects, "list")["jobs:dlq"]?["length"] as? Int == 1)
        #expect(Self.named(objects, "channel")["news"]?["subscribers"] as? Int == 2)
        #expect(Self.named(objects, "channel")["alerts"]?["subscribers"] as? Int == 2)

        // Patterns, on EVT_REDIS_URL.
        let pattern = try Evt.run(["ls", "stream:o*", "list:*dlq", "channel:n?ws"], environment: environment)
        #expect(pattern.status == 0, "\(pattern.stderr)")
        #expect(try Self.objects(pattern).map { ($0["stream"] ?? $0["list"] ?? $0["channel"]) as? String } == ["orders", "jobs:dlq", "news"],
                "\(pattern.stdoutText)")
        let table = try Evt.run(["ls", "list:*", "--format", "table"], environment: environment)
        #expect(table.stdoutLines == ["LIST      LENGTH", "jobs           3", "jobs:dlq       1"], "\(table.stdoutText)")
    }

    @Test("a Redis Cluster: keys on every master are listed once each, with XINFO and LLEN as redis-cli -c says; channels subscribed on several nodes")
    func redisCluster() throws {
        let cluster = try RedisCluster()
        let environment = cluster.environment
        var masters: Set<Int> = []
        for n in 0..<12 {
            try cluster.cli(["XADD", "s\(n)", "*", "n", String(n)])
            try cluster.cli(["RPUSH", "l\(n)"] + (0...n).map(String.init))
            masters.insert(try cluster.masterPort(forKey: "s\(n)"))
        }
        #expect(masters.count == 3, "the streams are spread over all masters")
        try cluster.cli(["XGROUP", "CREATE", "s3", "g", "0"])
        let ports = try cluster.masterPorts()
        let subscribers = try ports.prefix(2).map { port in
            try RunningProcess(["redis-cli", "-p", String(port), "SUBSCRIBE", "news"], stdinData: Data())
        }
        defer { for subscriber in subscribers { _ = subscriber.stop() } }
        #expect(try waitUntil {
            try ports.prefix(2).allSatisfy { port in try cluster.cli(port: port, ["PUBSUB", "NUMSUB", "news"]).contains("\n1") }
        })

        let closed = try refusingPort()
        let result = try Evt.run(["ls"], environment: environment.merging(["EVT_KAFKA_BROKERS": "127.0.0.1:\(closed.port)"]) { $1 })
        #expect(result.status == 1, "Kafka is unreachable: \(result.stderr)")
        let objects = try Self.objects(result)
        let streams = objects.compactMap { $0["stream"] as? String }
        #expect(streams == (0..<12).map { "s\($0)" }.sorted(), "\(streams)")
        #expect(objects.compactMap { $0["list"] as? String } == (0..<12).map { "l\($0)" }.sorted())
        for object in objects {
            if let name = object["stream"] as? String {
                #expect(object["length"] as? Int == Self.cliInt(try cluster.cli(["XLEN", name])), "\(name)")
                let first = try cluster.cli(["XRANGE", name, "-", "+", "COUNT", "1"]).split(separator: "\n").first.map(String.init)
                #expect(object["first_id"] as? String == first && object["last_id"] as? String == first, "\(name)")
            }
            if let name = object["list"] as? String {
                #expect(object["length"] as? Int == Self.cliInt(try cluster.cli(["LLEN", name])), "\(name)")
            }
        }
        let s3 = try #require(Self.named(objects, "stream")["s3"]?["groups"] as? [[String: Any]])
        #expect(s3.count == 1 && s3[0]["group"] as? String == "g" && s3[0]["lag"] as? Int == 1)
        #expect(Self.named(objects, "channel")["news"]?["subscribers"] as? Int == 2, "\(result.stdoutText)")
    }

    @Test("an unreachable server is named on stderr, the other is still listed, exit 1")
    func unreachable() throws {
        let redis = try RedisServer()
        _ = try Evt.run(["publish", "list:jobs"], stdin: "1\n", environment: ["EVT_REDIS_URL": redis.url])
        let closed = try refusingPort()
        let noKafka = try Evt.run(["ls"], environment: ["EVT_REDIS_URL": redis.url, "EVT_KAFKA_BROKERS": "127.0.0.1:\(closed.port)"])
        #expect(noKafka.status == 1)
        #expect(noKafka.stderr.contains("kafka://127.0.0.1:\(closed.port)"), "\(noKafka.stderr)")
        #expect(noKafka.stdoutLines == [#"{"list":"jobs","length":1}"#], "\(noKafka.stdoutText)")

        let kafka = try mockCluster(topics: [("t", 2)])
        let noRedis = try Evt.run(["ls"], environment: ["EVT_REDIS_URL": "redis://127.0.0.1:\(closed.port)",
                                                        "EVT_KAFKA_BROKERS": kafka.bootstrapServers])
        #expect(noRedis.status == 1)
        #expect(noRedis.stderr.contains("redis://127.0.0.1:\(closed.port)"), "\(noRedis.stderr)")
        let objects = try Self.objects(noRedis)
        #expect(objects.count == 2 && objects[0]["kafka"] as? String == kafka.bootstrapServers && objects[1]["topic"] as? String == "t")

        let bad = try Evt.run(["ls", "queue:x"], environment: ["EVT_REDIS_URL": redis.url])
        #expect(bad.status == 2 && bad.stderr.contains("unknown kind queue"), "\(bad.stderr)")
    }
}
