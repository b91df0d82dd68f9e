import Foundation
import Testing
import EvtCore
import EvtTestSupport

@Suite("publish to Kafka")
struct PublishKafkaTests {
    @Test("10 000 lines reach a 4-partition topic byte for byte, keyed by --key, with -H headers, in order per key")
    func tenThousandLines() throws {
        let cluster = try mockCluster(topics: [("orders", 4)])
        let lines = sampleLines(10_000)
        let result = try Evt.run(["publish", "topic:orders", "--key", "user.id", "-H", "source=test", "-H", "run=1"],
                                 stdin: ndjson(lines), environment: ["EVT_KAFKA_BROKERS": cluster.bootstrapServers])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.isEmpty)

        let records = try kcatConsume(brokers: cluster.bootstrapServers, topic: "orders")
        #expect(records.count == 10_000)
        #expect(Set(records.compactMap(\.payload)) == Set(lines))
        #expect(Set(records.map(\.partition)).count > 1, "a key spreads records over partitions")
        for record in records {
            let n = sequenceNumber(of: record.payload ?? "")!
            #expect(record.key == "u\(n % 50)")
            #expect(record.headers.map { "\($0.0)=\($0.1)" } == ["source=test", "run=1"])
        }
        // Order per key: within a partition, a key's sequence numbers only grow.
        var lastByKey: [String: Int] = [:]
        for record in records.sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
            let n = sequenceNumber(of: record.payload!)!
            #expect(n > lastByKey[record.key!, default: 0])
            lastByKey[record.key!] = n
        }
    }

    @Test("a bad line at 5 001 exits 3 naming line 5001; lines 1-5000 are delivered and nothing after")
    func badLineStops() throws {
        let cluster = try mockCluster(topics: [("t", 4)])
        var lines = sampleLines(10_000)
        lines[5000] = #"{"n":5001,"broken":}"#
        let result = try Evt.run(["publish", "topic:t", "--key", "user.id"], stdin: ndjson(lines),
                                 environment: ["EVT_KAFKA_BROKERS": cluster.bootstrapServers])
        #expect(result.status == 3)
        #expect(result.stderr.contains("line 5001"), "\(result.stderr)")
        let delivered = try kcatConsume(brokers: cluster.bootstrapServers, topic: "t").compactMap { sequenceNumber(of: $0.payload!) }
        #expect(delivered.sorted() == Array(1...5000))
    }

    @Test("--on-error skip goes past the bad line, delivers the other 9 999, keeps it in --dead-letter, exits 3")
    func badLineSkipped() throws {
        let cluster = try mockCluster(topics: [("t", 4)])
        let scratch = Scratch()
        var lines = sampleLines(10_000)
        lines[5000] = "not json at all"
        let result = try Evt.run(["publish", "topic:t", "--on-error", "skip", "--dead-letter", scratch.file("bad.ndjson")],
                                 stdin: ndjson(lines), environment: ["EVT_KAFKA_BROKERS": cluster.bootstrapServers])
        #expect(result.status == 3)
        #expect(result.stderr.contains("line 5001"))
        let delivered = try kcatConsume(brokers: cluster.bootstrapServers, topic: "t").compactMap { sequenceNumber(of: $0.payload!) }
        #expect(delivered.sorted() == Array(1...5000) + Array(5002...10_000))
        let deadLetters = try String(contentsOfFile: scratch.file("bad.ndjson"), encoding: .utf8)
        #expect(deadLetters.contains(#""line":5001"#) && deadLetters.contains("not json at all"))
    }

    @Test("retriable faults mid-publish on a 3-broker cluster: every line delivered, order per key kept, exit 0")
    func retriableFaults() throws {
        let cluster = try mockCluster(brokers: 3)
        try cluster.createTopic("faults", partitions: 4, replicationFactor: 3)
        let lines = sampleLines(9_000)
        // One Produce request in flight per connection: with several, a real broker keeps the
        // idempotent producer's order by refusing a batch whose sequence comes after a failed
        // one (OUT_OF_ORDER_SEQUENCE_NUMBER, then librdkafka sends them again in order), but
        // the 2.0.2 mock checks no sequence and stores the later batch first.
        let evt = try Evt.start(["publish", "topic:faults", "--key", "user.id", "-X", "max.in.flight.requests.per.connection=1"],
                                environment: ["EVT_KAFKA_BROKERS": cluster.bootstrapServers])
        evt.write(ndjson(Array(lines[0..<3000])))
        // The faults come once evt is delivering: when the first lines are stored.
        #expect(try waitUntil { try !kcatConsume(brokers: cluster.bootstrapServers, topic: "faults").isEmpty })
        // NOT_LEADER_OR_FOLLOWER and NOT_ENOUGH_REPLICAS on the next Produce requests: errors
        // that say the batch was not stored. Not REQUEST_TIMED_OUT: after a "possibly
        // persisted" error the idempotent producer takes a later batch's acknowledgement as
        // proof that the earlier one was stored (a real broker refuses a batch out of sequence),
        // and the 2.0.2 mock checks no sequence. Under load in CI (2026-12-06) one batch of one
        // partition (309 lines) was reported delivered, exit 0, and never stored: most likely
        // the mock acknowledged a later batch while the timed-out one waited for its retry.
        cluster.pushRequestErrors(apiKey: 0, errors: [6, 19, 6, 19, 6])
        evt.write(ndjson(Array(lines[3000..<6000])))
        // Then connections lost with Produce requests in flight (nothing of them is stored), and
        // every partition's leader moves to another broker, as when a broker goes away.
        cluster.pushRequestErrors(apiKey: 0, errors: Array(repeating: KafkaMockCluster.connectionLost, count: 3))
        for partition in 0..<4 { cluster.setPartitionLeader(topic: "faults", partition: Int32(partition), broker: Int32(partition % 3 + 1)) }
        evt.write(ndjson(Array(lines[6000...])))
        let result = evt.wait(timeout: 90)
        #expect(result.status == 0, "\(result.stderr)")

        let records = try kcatConsume(brokers: cluster.bootstrapServers, topic: "faults")
        let numbers = records.compactMap { sequenceNumber(of: $0.payload!) }
        #expect(Set(numbers) == Set(1...9000), "no line lost")
        let duplicates = numbers.count - Set(numbers).count
        print("retriable faults: \(duplicates) duplicates kept by the 2.0.2 mock (it does not drop retried batches)")
        var lastByKey: [String: Int] = [:]
        var seen = Set<Int>()
        for record in records.sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
            let n = sequenceNumber(of: record.payload!)!
            guard seen.insert(n).inserted else { continue }   // a batch the mock kept twice
            #expect(n >= lastByKey[record.key!, default: 0], "key \(record.key!) reordered")
            lastByKey[record.key!] = max(n, lastByKey[record.key!, default: 0])
        }
    }

    @Test("a record over message.max.bytes is not delivered: exit 1, its line named with how to raise the limit")
    func messageTooLarge() throws {
        let cluster = try mockCluster(topics: [("big", 1)])
        var lines = sampleLines(20)
        lines[6] = #"{"n":7,"blob":""# + String(repeating: "b", count: 5000) + #""}"#
        let result = try Evt.run(["publish", "topic:big", "-X", "message.max.bytes=2000"], stdin: ndjson(lines),
                                 environment: ["EVT_KAFKA_BROKERS": cluster.bootstrapServers])
        #expect(result.status == 1)
        #expect(reportedLines(in: result.stderr, marker: "not delivered") == [7], "\(result.stderr)")
        #expect(result.stderr.contains("message.max.bytes"))
        let delivered = try kcatConsume(brokers: cluster.bootstrapServers, topic: "big").compactMap { sequenceNumber(of: $0.payload!) }
        #expect(delivered.sorted() == Array(1...6) + Array(8...20))
    }

    @Test("a 17 MiB record with -X message.max.bytes raised is delivered within seconds: the producer queue is sized to fit it")
    func recordLargerThanDefaultQueue() throws {
        let cluster = try mockCluster(topics: [("huge", 1), ("large", 1)])
        // Over the 16 MiB evt gives the queue by default. The mock keeps only ~5 MiB a
        // partition, so its delivery reports (exit 0) are the proof here…
        let huge = #"{"blob":""# + String(repeating: "b", count: 17 << 20) + #""}"#
        let started = Date()
        let result = try Evt.run(["publish", "topic:huge", "-X", "message.max.bytes=100000000", "--timeout", "10s"],
                                 stdin: ndjson([huge, #"{"n":2}"#]), environment: ["EVT_KAFKA_BROKERS": cluster.bootstrapServers],
                                 timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        #expect(Date().timeIntervalSince(started) < 10, "took \(Date().timeIntervalSince(started)) s")
        // …and a 3 MiB record, which it keeps, is read back whole by kcat.
        let large = #"{"blob":""# + String(repeating: "l", count: 3 << 20) + #""}"#
        let kept = try Evt.run(["publish", "topic:large", "-X", "message.max.bytes=100000000"], stdin: ndjson([large]),
                               environment: ["EVT_KAFKA_BROKERS": cluster.bootstrapServers], timeout: 60)
        #expect(kept.status == 0, "\(kept.stderr)")
        #expect(try kcatConsume(brokers: cluster.bootstrapServers, topic: "large").map(\.payload) == [large])
    }

    @Test("a record larger than -X queue.buffering.max.kbytes fails at once with the reason; the lines around it are delivered")
    func recordLargerThanQueue() throws {
        let cluster = try mockCluster(topics: [("q", 1)])
        let big = #"{"blob":""# + String(repeating: "b", count: 3 << 20) + #""}"#
        let started = Date()
        let result = try Evt.run(["publish", "topic:q", "-X", "message.max.bytes=10000000", "-X", "queue.buffering.max.kbytes=1024",
                                  "--timeout", "10s"],
                                 stdin: ndjson([#"{"n":1}"#, big, #"{"n":3}"#]),
                                 environment: ["EVT_KAFKA_BROKERS": cluster.bootstrapServers], timeout: 60)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(Date().timeIntervalSince(started) < 10, "took \(Date().timeIntervalSince(started)) s")
        #expect(reportedLines(in: result.stderr, marker: "not delivered") == [2], "\(result.stderr)")
        #expect(result.stderr.contains("queue.buffering.max.kbytes=1024); raise it with -X queue.buffering.max.kbytes="), "\(result.stderr)")
        let delivered = try kcatConsume(brokers: cluster.bootstrapServers, topic: "q").compactMap { sequenceNumber(of: $0.payload!) }
        #expect(delivered == [1, 3])
    }

    @Test("a non-retriable broker error (MESSAGE_TOO_LARGE) fails its batch: exit 1, failed lines named, the rest delivered once")
    func brokerRejectsBatch() throws {
        let cluster = try mockCluster(topics: [("rejects", 1)])
        cluster.pushRequestErrors(apiKey: 0, errors: [10])
        let lines = sampleLines(500)
        let result = try Evt.run(["publish", "topic:rejects"], stdin: ndjson(lines),
                                 environment: ["EVT_KAFKA_BROKERS": cluster.bootstrapServers])
        #expect(result.status == 1, "\(result.stderr)")
        let failed = reportedLines(in: result.stderr, marker: "not delivered")
        #expect(!failed.isEmpty, "\(result.stderr)")
        let delivered = try kcatConsume(brokers: cluster.bootstrapServers, topic: "rejects").compactMap { sequenceNumber(of: $0.payload!) }
        #expect(delivered.count == Set(delivered).count, "delivered exactly once")
        #expect(Set(delivered).union(failed) == Set(1...500))
        #expect(Set(delivered).isDisjoint(with: failed))
    }

    @Test("a directory among the FILE operands is a usage error before anything is sent: exit 2 naming it, the topic stays empty")
    func directoryOperand() throws {
        let cluster = try mockCluster(topics: [("files", 1)])
        let scratch = Scratch()
        let first = scratch.write("a.ndjson", ndjson(sampleLines(10)))
        let directory = scratch.file("more")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        let last = scratch.write("b.ndjson", ndjson(sampleLines(10)))
        let result = try Evt.run(["publish", "topic:files", first, directory, last],
                                 environment: ["EVT_KAFKA_BROKERS": cluster.bootstrapServers])
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("\(directory): it is a directory"), "\(result.stderr)")
        #expect(try kcatConsume(brokers: cluster.bootstrapServers, topic: "files").isEmpty, "nothing was sent")
    }

    @Test("all brokers unreachable (they accept connections and answer nothing) longer than --timeout: exit 1 and every line named as not delivered")
    func brokersDown() throws {
        let cluster = try mockCluster(topics: [("down", 2)])
        cluster.setRoundTripTime(broker: -1, milliseconds: 600_000)
        let result = try Evt.run(["publish", "topic:down", "--timeout", "3s"], stdin: ndjson(sampleLines(100)),
                                 environment: ["EVT_KAFKA_BROKERS": cluster.bootstrapServers], timeout: 60)
        #expect(result.status == 1)
        let named = reportedLines(in: result.stderr, marker: "not delivered")
            .union(reportedLines(in: result.stderr, marker: "unconfirmed"))
        #expect(named == Set(1...100), "\(result.stderr)")
        cluster.setRoundTripTime(broker: -1, milliseconds: 0)
        #expect(try kcatConsume(brokers: cluster.bootstrapServers, topic: "down").isEmpty)
    }

    @Test("tail | publish --envelope copies records byte for byte: keys, headers, binary values")
    func envelopeRoundTrip() throws {
        let cluster = try mockCluster(topics: [("src", 2), ("dst", 2)])
        let environment = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers]
        let source = Scratch()
        var payloads: [Data] = []
        for n in 0..<30 {
            payloads.append(Data(#"{"n":\#(n),"text":"caf\u00e9 \"q\""}"#.utf8))
        }
        // Plain text, a JSON string, pretty JSON and bytes that are not UTF-8.
        payloads += [Data("plain text".utf8), Data(#""a json string""#.utf8), Data("{\n \"a\": 1\n}".utf8),
                     Data([0xff, 0x00, 0x80, 0x41])]
        for (index, payload) in payloads.enumerated() {
            let file = source.write("p\(index)", payload)
            let produced = try runProcess(["kcat", "-b", cluster.bootstrapServers, "-P", "-t", "src", "-k", "k\(index % 5)",
                                           "-H", "h=v\(index)", "-p", String(index % 2), file], timeout: 30)
            #expect(produced.status == 0, "\(produced.stderr)")
        }
        let tailed = try Evt.run(["tail", "topic:src", "-n", "1000"], environment: environment)
        #expect(tailed.status == 0)
        #expect(tailed.stdoutLines.count == payloads.count)
        let copied = try Evt.run(["publish", "topic:dst", "--envelope"], stdin: tailed.stdout, environment: environment)
        #expect(copied.status == 0, "\(copied.stderr)")
        let again = try Evt.run(["tail", "topic:dst", "-n", "1000"], environment: environment)
        func strip(_ line: String) -> String {   // everything but topic, offset and timestamp
            let object = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let kept = object.filter { !["topic", "offset", "timestamp"].contains($0.key) }
            return String(decoding: try! JSONSerialization.data(withJSONObject: kept, options: .sortedKeys), as: UTF8.self)
        }
        #expect(Set(again.stdoutLines.map(strip)) == Set(tailed.stdoutLines.map(strip)))
        #expect(again.stdoutLines.contains { $0.contains(#""value_b64":"/wCAQQ==""#) })
    }
}
