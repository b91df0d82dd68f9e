import Foundation
import Testing
import EvtTestSupport
import EvtCore

/// One copy per checkpoint, and a checkpoint per copy: two copies started on one
/// --checkpoint, a copy killed with SIGKILL and resumed, a NAME reused for another target.
/// What arrived is read back with redis-cli and kcat.
@Suite("copy-between checkpoints")
struct CheckpointTests {
    /// One kind of copy: its source filled with records `range` by `fill`, and what its
    /// target holds, each record once per element (its number).
    struct Copy {
        let source: String
        let target: String
        let fill: (ClosedRange<Int>) throws -> Void
        let copied: () throws -> [Int]
    }

    static func copies(redis: RedisServer, kafka: KafkaMockCluster) -> [Copy] {
        let env = ["EVT_KAFKA_BROKERS": kafka.bootstrapServers, "EVT_REDIS_URL": redis.url]
        func publish(_ endpoint: String, _ range: ClosedRange<Int>) throws {
            let keyed = endpoint.hasPrefix("topic:") ? ["--key", "k"] : []
            let result = try Evt.run(["publish", endpoint] + keyed, stdin: ndjson(range.map { #"{"k":"\#($0 % 7)","n":"\#($0)"}"# }), environment: env)
            #expect(result.status == 0, "\(result.stderr)")
        }
        /// The `n` of each entry of a stream (its field n, or inside the value a record kept).
        func streamNumbers(_ key: String) throws -> [Int] {
            try redis.streamEntries(key).map { entry in
                let fields = Dictionary(stride(from: 0, to: entry.fields.count - 1, by: 2).map { (entry.fields[$0], entry.fields[$0 + 1]) }) { a, _ in a }
                let text = fields["n"] ?? fields["value"] ?? ""
                if let n = Int(text) { return n }
                let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
                return Int(object?["n"] as? String ?? "") ?? -1
            }
        }
        func topicNumbers(_ topic: String) throws -> [Int] {
            try kcatConsume(brokers: kafka.bootstrapServers, topic: topic).map { record in
                let object = try JSONSerialization.jsonObject(with: Data((record.payload ?? "").utf8)) as? [String: Any]
                return Int(object?["n"] as? String ?? "") ?? -1
            }
        }
        return [
            Copy(source: "topic:t", target: "stream:s", fill: { try publish("topic:t", $0) }, copied: { try streamNumbers("s") }),
            Copy(source: "stream:src", target: "topic:out", fill: { try publish("stream:src", $0) }, copied: { try topicNumbers("out") }),
            Copy(source: "list:jobs", target: "stream:jobs-copy", fill: { try publish("list:jobs", $0) }, copied: { try streamNumbers("jobs-copy") }),
        ]
    }

    @Test("two copies on one checkpoint: while the first follows, the second refuses to start (exit 1, naming the holder); every record is stored once — topic→stream, stream→topic, list→stream")
    func secondCopyRefuses() throws {
        let kafka = try mockCluster(topics: [("t", 4), ("out", 4)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": kafka.bootstrapServers, "EVT_REDIS_URL": redis.url]
        for copy in Self.copies(redis: redis, kafka: kafka) {
            let command = ["copy-between", copy.source, copy.target, "--checkpoint", "same-" + copy.target]
            try copy.fill(1...3000)
            let first = try Evt.start(command + ["-f"], environment: env)
            #expect(try waitUntil(timeout: 60) { try copy.copied().count >= 3000 }, "\(copy.source): \(first.stderrSoFar)")
            // The first copy follows: its checkpoint is certainly in use now.
            let second = try Evt.start(command + ["-f"], environment: env)
            try copy.fill(3001...4000)
            #expect(try waitUntil(timeout: 60) { try copy.copied().count >= 4000 }, "\(copy.source): \(first.stderrSoFar)")
            let refused = second.wait(timeout: 30)
            #expect(refused.status == 1, "\(copy.source): \(refused.stderr)")
            #expect(refused.stderr.contains("is in use by another copy (evt pid \(first.pid) on "), "\(copy.source): \(refused.stderr)")
            first.signal(SIGTERM)
            let stopped = first.wait(timeout: 20)
            #expect(stopped.status == 143, "\(copy.source): \(stopped.stderr)")
            let numbers = try copy.copied()
            #expect(numbers.count == 4000 && Set(numbers) == Set(1...4000), "\(copy.source): \(numbers.count) records, \(Set(numbers).count) distinct")
            // Stopped cleanly, the first copy gave its lease up: a new run starts at once.
            let rerun = try Evt.run(command, environment: env)
            #expect(rerun.status == 0 && rerun.stderr.contains("copied 0 events"), "\(copy.source): \(rerun.stderr)")
        }
    }

    @Test("a copy killed with SIGKILL on this machine: the next run sees that its holder is gone, takes the checkpoint over at once and resumes; nothing lost or stored twice")
    func killedCopyIsResumed() throws {
        let kafka = try mockCluster(topics: [("t", 4), ("out", 4)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": kafka.bootstrapServers, "EVT_REDIS_URL": redis.url]
        for copy in Self.copies(redis: redis, kafka: kafka) {
            let command = ["copy-between", copy.source, copy.target, "--checkpoint", "killed-" + copy.target]
            try copy.fill(1...3000)
            let first = try Evt.start(command + ["-f"], environment: env)
            #expect(try waitUntil(timeout: 60) { try copy.copied().count >= 3000 }, "\(copy.source): \(first.stderrSoFar)")
            first.signal(SIGKILL)
            _ = first.wait(timeout: 10)
            try copy.fill(3001...4000)
            let resumed = try Evt.run(command, environment: env)
            #expect(resumed.status == 0, "\(copy.source): \(resumed.stderr)")
            #expect(resumed.stderr.contains("was held by evt pid \(first.pid) on ") && resumed.stderr.contains("which is no longer running: this copy takes it over"),
                    "\(copy.source): \(resumed.stderr)")
            let numbers = try copy.copied()
            #expect(Set(numbers) == Set(1...4000), "\(copy.source): \(Set(numbers).count) distinct records, lost some")
            // Into a topic a copy is at least once (without --exactly-once): records after its
            // last checkpoint (written once a second) come again after a kill -9.
            if !copy.target.hasPrefix("topic:") {
                #expect(numbers.count == 4000, "\(copy.source): \(numbers.count) records, \(Set(numbers).count) distinct")
            }
        }
    }

    @Test("a checkpoint held by a copy that evt cannot see (another machine) is refused while its lease runs, and taken once it ran out")
    func leaseRunsOut() throws {
        let kafka = try mockCluster(topics: [("t", 2)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": kafka.bootstrapServers, "EVT_REDIS_URL": redis.url]
        let copy = Self.copies(redis: redis, kafka: kafka)[0]
        let command = ["copy-between", "topic:t", "stream:s", "--checkpoint", "far"]
        try copy.fill(1...100)
        #expect(try Evt.run(command, environment: env).status == 0)
        // What a copy on another machine leaves when it dies: its lease, 4 s to go.
        let now = try redis.cli(["EVAL", "local t = redis.call('TIME') return t[1] * 1000 + math.floor(t[2] / 1000)", "0"])
        let until = Int(now.trimmingCharacters(in: .whitespacesAndNewlines))! + 4000
        try redis.cli(["HSET", "evt:checkpoint:far", "owner", "evt pid 1 on elsewhere, run x", "owner_process", "another-boot/pid:[1]/1/1",
                       "owner_until", String(until), "batch", "its token"])
        try copy.fill(101...200)
        let refused = try Evt.run(command, environment: env)
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("is in use by another copy (evt pid 1 on elsewhere, run x)") && refused.stderr.contains("its lease runs out in "),
                "\(refused.stderr)")
        var last = refused
        #expect(try waitUntil(timeout: 30) {
            last = try Evt.run(command, environment: env)
            return last.status == 0
        }, "\(last.stderr)")
        let numbers = try copy.copied()
        #expect(numbers.count == 200 && Set(numbers) == Set(1...200), "\(numbers.count) records, \(Set(numbers).count) distinct")
    }

    @Test("a copy that lost its checkpoint to another writes nothing more: its batch is refused before any entry is stored (the guard decides before EXEC)")
    func lostCheckpointWritesNothing() throws {
        let kafka = try mockCluster(topics: [("t", 2)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": kafka.bootstrapServers, "EVT_REDIS_URL": redis.url]
        let copy = Self.copies(redis: redis, kafka: kafka)[0]
        try copy.fill(1...500)
        let bridge = try Evt.start(["copy-between", "topic:t", "stream:s", "--checkpoint", "taken", "-f"], environment: env)
        #expect(try waitUntil(timeout: 60) { try copy.copied().count >= 500 }, "\(bridge.stderrSoFar)")
        // What another copy's claim does once this one's lease ran out: a new holder, a new token.
        try redis.cli(["HSET", "evt:checkpoint:taken", "owner", "another copy", "owner_until", "99999999999999", "batch", "another token"])
        try copy.fill(501...600)
        let stopped = bridge.wait(timeout: 30)
        #expect(stopped.status == 1, "\(stopped.stderr)")
        #expect(stopped.stderr.contains("was taken over by another copy"), "\(stopped.stderr)")
        #expect(try copy.copied().count == 500, "the refused batch was stored")
    }

    @Test("topic→topic: the checkpoint's lease is the membership of group NAME.evt-lease; a second copy refuses while the first follows, and a copy killed with SIGKILL is dropped by Kafka after its session, so the next run resumes; each record stored once")
    func topicToTopicLease() throws {
        let kafka = try mockCluster(topics: [("a", 3), ("b", 3)])
        let env = ["EVT_KAFKA_BROKERS": kafka.bootstrapServers]
        func fill(_ range: ClosedRange<Int>) throws {
            let result = try Evt.run(["publish", "topic:a", "--key", "n"], stdin: ndjson(range.map { #"{"n":\#($0)}"# }), environment: env)
            #expect(result.status == 0, "\(result.stderr)")
        }
        func copied() throws -> [Int] {
            try kcatConsume(brokers: kafka.bootstrapServers, topic: "b").map { record in
                (try JSONSerialization.jsonObject(with: Data((record.payload ?? "").utf8)) as? [String: Any])?["n"] as? Int ?? -1
            }
        }
        /// What group a2b has committed on topic a, read by confluent_kafka.
        func committed() throws -> Int {
            let script = """
                import sys
                from confluent_kafka import Consumer, TopicPartition
                c = Consumer({'bootstrap.servers': sys.argv[1], 'group.id': 'a2b'})
                print(sum(max(p.offset, 0) for p in c.committed([TopicPartition('a', p) for p in range(3)], timeout=10)))
                """
            return Int(try runProcess(["python3", "-c", script, kafka.bootstrapServers], timeout: 30).stdoutText
                .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
        let command = ["copy-between", "topic:a", "topic:b", "--checkpoint", "a2b"]
        try fill(1...1000)
        let first = try Evt.start(command + ["-f"], environment: env)
        #expect(try waitUntil(timeout: 90) { try copied().count >= 1000 }, "\(first.stderrSoFar)")
        let second = try Evt.start(command + ["-f"], environment: env)
        try fill(1001...1500)
        let refused = second.wait(timeout: 90)
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("is in use by another copy (evt pid \(first.pid) on "), "\(refused.stderr)")
        // The first copy goes on: everything copied and committed, then it is killed.
        #expect(try waitUntil(timeout: 90) { try copied().count >= 1500 && committed() == 1500 }, "\(first.stderrSoFar)")
        first.signal(SIGKILL)
        _ = first.wait(timeout: 10)
        try fill(1501...2000)
        let resumed = try Evt.run(command, environment: env, timeout: 120)
        #expect(resumed.status == 0 && resumed.stderr.contains("copied 500 events"), "\(resumed.stderr)")
        let numbers = try copied()
        #expect(numbers.count == 2000 && Set(numbers) == Set(1...2000), "\(numbers.count) records, \(Set(numbers).count) distinct")
    }

    @Test("a checkpoint NAME used again for another target: exit 2 naming both targets, and the other target untouched — topic→stream, stream→topic, list→stream, topic→topic")
    func otherTargetRefused() throws {
        let kafka = try mockCluster(topics: [("t", 2), ("out", 2), ("elsewhere", 2), ("t2", 2)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": kafka.bootstrapServers, "EVT_REDIS_URL": redis.url]
        for copy in Self.copies(redis: redis, kafka: kafka) {
            try copy.fill(1...50)
            let first = try Evt.run(["copy-between", copy.source, copy.target, "--checkpoint", "c-\(copy.source)"], environment: env)
            #expect(first.status == 0 && first.stderr.contains("copied 50 events"), "\(copy.source): \(first.stderr)")
        }
        for (source, target, other) in [("topic:t", "stream:s", "stream:elsewhere"), ("stream:src", "topic:out", "topic:elsewhere"),
                                        ("list:jobs", "stream:jobs-copy", "stream:elsewhere")] {
            try Self.copies(redis: redis, kafka: kafka).first { $0.source == source }!.fill(51...60)
            let again = try Evt.run(["copy-between", source, other, "--checkpoint", "c-\(source)"], environment: env)
            #expect(again.status == 2, "\(source): \(again.stderr)")
            #expect(again.stderr.contains("belongs to a copy into \(target), not into \(other)"), "\(source): \(again.stderr)")
        }
        #expect(try redis.cli(["EXISTS", "elsewhere"]).hasPrefix("0"))
        #expect(try kcatConsume(brokers: kafka.bootstrapServers, topic: "elsewhere").isEmpty)
        #expect(try redis.cli(["LLEN", "jobs"]).hasPrefix("10"), "the refused list copy moved items")
        // topic→topic: the checkpoint is group NAME's committed offsets, which record the target too.
        _ = try Evt.run(["publish", "topic:t2"], stdin: ndjson((1...20).map { #"{"n":\#($0)}"# }), environment: env)
        #expect(try Evt.run(["copy-between", "topic:t2", "topic:out", "--checkpoint", "t2c"], environment: env).status == 0)
        let again = try Evt.run(["copy-between", "topic:t2", "topic:elsewhere", "--checkpoint", "t2c"], environment: env)
        #expect(again.status == 2 && again.stderr.contains("belongs to a copy into topic:out, not into topic:elsewhere"), "\(again.stderr)")
        #expect(try kcatConsume(brokers: kafka.bootstrapServers, topic: "elsewhere").isEmpty)
    }
}
