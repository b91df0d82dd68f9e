import Foundation
import Testing
@testable import EvtCore
import EvtTestSupport

/// KafkaLagReader against librdkafka's mock cluster, called directly: a group that committed
/// a known number of records (`subscribe --group -c N`), checked per partition against what
/// kcat reads from the topic (a peer client) and what the subscriber handed over.
@Suite("Kafka lag reader")
struct KafkaLagTests {
    /// Rejoins on the mock wait session.timeout.ms − 1 s (SWIFT-C-NOTES).
    static let groupTimeouts = ["-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"]

    static func publish(_ ids: ClosedRange<Int>, to topic: String, _ environment: [String: String]) throws {
        let lines = ids.map { #"{"id":\#($0)}"# }
        let result = try Evt.run(["publish", "topic:\(topic)", "--key", "id"], stdin: ndjson(lines), environment: environment)
        #expect(result.status == 0, "publish: \(result.stderr)")
    }

    static func query(_ groups: [String]) -> LagQuery {
        var query = LagQuery()
        query.groups = groups
        return query
    }

    @Test("committed, log_start, log_end and lag per partition are what the group consumed and what kcat reads; lag_ms is the age of the oldest unconsumed record")
    func committedGroup() throws {
        let cluster = try mockCluster(topics: [("t", 4)])
        let environment = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers]
        let publishedFrom = epochMilliseconds()
        try Self.publish(1...40, to: "t", environment)
        let publishedUntil = epochMilliseconds()

        let consumed = try Evt.run(["subscribe", "topic:t", "--group", "g", "--from", "beginning", "-c", "15"] + Self.groupTimeouts,
                                   environment: environment, timeout: 60)
        #expect(consumed.status == 0, "\(consumed.stderr)")
        // What the group handed over, per partition: it started at the beginning, so its
        // committed offset is one past the highest offset handed over there.
        var handedOver: [Int: Int] = [:]
        for line in consumed.stdoutLines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let partition = try #require(object["partition"] as? Int)
            handedOver[partition] = max(handedOver[partition] ?? 0, try #require(object["offset"] as? Int) + 1)
        }
        #expect(consumed.stdoutLines.count == 15)

        // kcat's view of the topic: records per partition (the mock keeps them all: low 0).
        var logEnd: [Int: Int] = [:]
        for record in try kcatConsume(brokers: cluster.bootstrapServers, topic: "t") {
            logEnd[record.partition] = max(logEnd[record.partition] ?? 0, record.offset + 1)
        }
        #expect(logEnd.values.reduce(0, +) == 40)

        let reader = try KafkaLagReader(brokers: cluster.bootstrapServers, topic: "t", partition: nil,
                                        query: Self.query(["g", "never"]))
        let started = monotonicMilliseconds()
        let readFrom = epochMilliseconds()
        let reports = try reader.read()
        let readUntil = epochMilliseconds()
        let firstMs = monotonicMilliseconds() - started
        #expect(reports.map(\.group) == ["g", "never"])
        let group = reports[0]
        #expect(group.kind == "topic" && group.name == "t")
        #expect(group.partitions.map(\.partition) == [0, 1, 2, 3])
        for lag in group.partitions {
            let partition = Int(lag.partition)
            #expect(lag.logStart == 0)
            #expect(lag.logEnd == Int64(logEnd[partition] ?? 0), "partition \(partition): log_end as kcat reads it")
            // A partition the group read nothing from has its start committed (subscribe
            // --group commits its --from position on assignment): 0 here.
            #expect(lag.committed == Int64(handedOver[partition] ?? 0), "partition \(partition): committed = what was handed over")
            #expect(lag.lag == lag.logEnd - (lag.committed ?? lag.logStart))
            if lag.lag > 0 {
                let age = try #require(lag.lagMs, "partition \(partition): the age of its oldest unconsumed record")
                #expect(age >= readFrom - publishedUntil - 5 && age <= readUntil - publishedFrom + 5, "age \(age)")
            } else {
                #expect(lag.lagMs == nil)
            }
        }
        #expect(group.lag == 25)
        #expect(group.lagMs == group.partitions.compactMap(\.lagMs).max())

        // A group that never committed: everything is its lag.
        let never = reports[1]
        #expect(never.partitions.allSatisfy { $0.committed == nil && $0.lag == $0.logEnd })
        #expect(never.lag == 40)
        #expect(never.lagMs != nil)

        // --watch: the same handles read again; cached timestamps make it cheaper.
        let again = monotonicMilliseconds()
        let second = try reader.read()
        let secondMs = monotonicMilliseconds() - again
        #expect(second[0].lag == 25 && second[1].lag == 40)
        try Self.publish(41...44, to: "t", environment)
        let third = try reader.read()
        #expect(third[0].lag == 29 && third[1].lag == 44)
        print("KafkaLagReader.read() on 4 partitions, 2 groups: first \(firstMs) ms, second \(secondMs) ms")

        // One partition only.
        let one = try KafkaLagReader(brokers: cluster.bootstrapServers, topic: "t", partition: 2, query: Self.query(["g"])).read()
        #expect(one.count == 1 && one[0].partitions.map(\.partition) == [2])
        #expect(one[0].lag == third[0].partitions[2].lag)

        // A dead-letter topic: its depth.
        var deadLetter = LagQuery()
        deadLetter.deadLetter = true
        let depth = try KafkaLagReader(brokers: cluster.bootstrapServers, topic: "t", partition: nil, query: deadLetter).read()
        #expect(depth.count == 1 && depth[0].group == nil && depth[0].deadLetter && depth[0].lag == 44)
    }

    @Test("a topic that does not exist is refused, naming it (and is not created); a partition it lacks too")
    func missingTopic() throws {
        let cluster = try mockCluster(topics: [("t", 4)])
        let reader = try KafkaLagReader(brokers: cluster.bootstrapServers, topic: "nope", partition: nil, query: Self.query(["g"]))
        do {
            _ = try reader.read()
            Issue.record("read() of a missing topic succeeded")
        } catch let error as EvtError {
            #expect(error.cause == .refused(code: "UNKNOWN_TOPIC_OR_PART"), "\(error.cause)")
            #expect(error.message.contains("topic nope"), "\(error.message)")
        }
        let listing = try runProcess(["kcat", "-b", cluster.bootstrapServers, "-L", "-J"], timeout: 20)
        #expect(!listing.stdoutText.contains(#""nope""#), "the lookup must not create the topic")

        let partition = try KafkaLagReader(brokers: cluster.bootstrapServers, topic: "t", partition: 9, query: Self.query(["g"]))
        #expect(throws: EvtError.self) { try partition.read() }
    }

    @Test("without --group, the mock (no ListGroups) gives a usage error that says why, promptly")
    func groupsNotListed() throws {
        let cluster = try mockCluster(topics: [("t", 4)])
        let reader = try KafkaLagReader(brokers: cluster.bootstrapServers, topic: "t", partition: nil, query: LagQuery())
        let started = monotonicMilliseconds()
        do {
            _ = try reader.read()
            Issue.record("read() without groups succeeded on the mock")
        } catch let error as EvtError {
            #expect(error.cause == .usage)
            #expect(error.message.contains("--group") && error.message.contains("did not list"), "\(error.message)")
        }
        let elapsed = monotonicMilliseconds() - started
        #expect(elapsed < 8000, "took \(elapsed) ms")
        print("KafkaLagReader.read() without groups on the mock: usage error after \(elapsed) ms")
    }

    @Test("ConsumerProtocol assignment and subscription bytes are parsed; bad bytes are not")
    func protocolBytes() {
        func int16(_ v: Int16) -> [UInt8] { withUnsafeBytes(of: v.bigEndian, Array.init) }
        func int32(_ v: Int32) -> [UInt8] { withUnsafeBytes(of: v.bigEndian, Array.init) }
        func string(_ s: String) -> [UInt8] { int16(Int16(s.utf8.count)) + Array(s.utf8) }
        let assignment = int16(1) + int32(2) + string("orders") + int32(2) + int32(0) + int32(3)
            + string("other") + int32(0) + int32(-1) /* null user data */
        let parsed = assignment.withUnsafeBytes { KafkaLagReader.assignedPartitions($0) }
        #expect(parsed?["orders"] == [0, 3] && parsed?["other"] == [])
        let cut = Array(assignment.prefix(assignment.count - 10))
        #expect(cut.withUnsafeBytes { KafkaLagReader.assignedPartitions($0) } == nil)
        let huge = int16(0) + int32(Int32.max)
        #expect(huge.withUnsafeBytes { KafkaLagReader.assignedPartitions($0) } == nil)
        let subscription = int16(0) + int32(2) + string("orders") + string("audit") + int32(-1)
        #expect(subscription.withUnsafeBytes { KafkaLagReader.subscribedTopics($0) } == ["orders", "audit"])
    }
}
