import Foundation
import Testing
import EvtCore
import EvtTestSupport

/// copy-between on a real redis-server and the mock Kafka cluster; what arrived is read back
/// with kcat and redis-cli.
@Suite("copy-between")
struct CopyBetweenTests {
    /// Every record of a topic as kcat prints it with lengths (binary-safe), without partition
    /// and offset: key, value, headers and timestamp.
    static func records(_ brokers: String, _ topic: String) throws -> [Data] {
        let result = try runProcess(["kcat", "-b", brokers, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
                                     "-f", "%K\t%S\t%T\t%h\t%k%s\n"], timeout: 120)
        var records: [Data] = []
        var rest = result.stdout[...]
        while !rest.isEmpty {
            var parts: [Substring] = []
            for _ in 0..<4 {
                let tab = rest.firstIndex(of: 9)!
                parts.append(Substring(decoding: rest[rest.startIndex..<tab], as: UTF8.self))
                rest = rest[(tab + 1)...]
            }
            let length = max(0, Int(parts[0])!) + max(0, Int(parts[1])!)
            let end = rest.startIndex + length
            records.append(Data(parts.joined(separator: "\t").utf8) + rest[rest.startIndex..<end])
            rest = rest[(end + 1)...]
        }
        return records.sorted { $0.lexicographicallyPrecedes($1) }
    }

    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// Records with binary and text keys and values, headers (repeated, null-free), timestamps.
    static func envelopeLines(_ count: Int) -> [String] {
        (0..<count).map { n in
            switch n % 4 {
            case 0: return #"{"key":"user-\#(n % 7)","headers":{"trace":"t\#(n)","dup":["a","b"]},"timestamp":\#(1_700_000_000_000 + n),"value":{"n":\#(n)}}"#
            case 1: return #"{"key_b64":"\#(base64([0, 255, UInt8(n % 250)]))","value_b64":"\#(base64([0xff, 0, 0x0a, UInt8(n % 250), 0x0d]))"}"#
            case 2: return #"{"key":null,"value":"plain text \#(n)","headers":{"h":"x"}}"#
            default: return #"{"key":"k\#(n)","value":null}"#
            }
        }
    }

    @Test("records another client produced to chosen partitions keep their partitions: topic→stream→topic and topic→topic; a smaller target partitions the rest by key")
    func mirrorPartitions() throws {
        let cluster = try mockCluster(topics: [("src", 4), ("back", 4), ("direct", 4), ("small", 2)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        // kcat puts each record where it is told, whatever its key's murmur2 partition is.
        for partition in 0..<4 {
            let lines = (0..<150).map { "k\($0 * 4 + partition):v\(partition)-\($0)" }.joined(separator: "\n") + "\n"
            let produced = try runProcess(["kcat", "-b", cluster.bootstrapServers, "-P", "-t", "src", "-p", String(partition), "-K:"],
                                          stdin: Data(lines.utf8), timeout: 60)
            #expect(produced.status == 0, "\(produced.stderr)")
        }
        let source = try kcatConsume(brokers: cluster.bootstrapServers, topic: "src")
        #expect(source.count == 600)
        let partitionOf = Dictionary(uniqueKeysWithValues: source.map { ($0.payload, $0.partition) })
        for (from, to) in [("topic:src", "stream:mid"), ("stream:mid", "topic:back"), ("topic:src", "topic:direct"), ("topic:src", "topic:small")] {
            let copy = try Evt.run(["copy-between", from, to], environment: env)
            #expect(copy.status == 0, "\(from) → \(to): \(copy.stderr)")
        }
        for topic in ["back", "direct"] {
            let copied = try kcatConsume(brokers: cluster.bootstrapServers, topic: topic)
            #expect(copied.count == 600, "\(topic)")
            let moved = copied.filter { partitionOf[$0.payload] != $0.partition }
            #expect(moved.isEmpty, "\(topic): \(moved.count) records changed partition")
        }
        let small = try kcatConsume(brokers: cluster.bootstrapServers, topic: "small")
        #expect(small.count == 600)
        #expect(small.filter { partitionOf[$0.payload]! < 2 }.allSatisfy { partitionOf[$0.payload] == $0.partition })
        #expect(Set(small.map(\.partition)) == [0, 1])
    }

    @Test("one partitioner for every producer: the same keys through publish and through copy-between (with and without --exactly-once) land on the same partitions")
    func onePartitioner() throws {
        let cluster = try mockCluster(topics: [("published", 8), ("copied", 8), ("once", 8)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        let lines = (0..<400).map { #"{"user":"user-\#($0 % 61)","n":"\#($0)"}"# }
        #expect(try Evt.run(["publish", "topic:published", "--key", "user"], stdin: ndjson(lines), environment: env).status == 0)
        #expect(try Evt.run(["publish", "stream:users"], stdin: ndjson(lines), environment: env).status == 0)
        for (topic, extra) in [("copied", [String]()), ("once", ["--exactly-once", "--checkpoint", "once"])] {
            let copy = try Evt.run(["copy-between", "stream:users", "topic:\(topic)", "--key-field", "user"] + extra, environment: env)
            #expect(copy.status == 0, "\(copy.stderr)")
        }
        func partitions(_ topic: String) throws -> [String: Set<Int>] {
            var byKey: [String: Set<Int>] = [:]
            for record in try kcatConsume(brokers: cluster.bootstrapServers, topic: topic) { byKey[record.key ?? "", default: []].insert(record.partition) }
            return byKey
        }
        let published = try partitions("published")
        #expect(published.count == 61 && published.values.allSatisfy { $0.count == 1 })
        #expect(Set(published.values.flatMap { $0 }).count > 4, "61 keys should spread over most of 8 partitions")
        #expect(try partitions("copied") == published)
        #expect(try partitions("once") == published)
    }

    @Test("a 4-partition topic copied to a stream and back: keys, headers, binary values and timestamps identical (kcat)")
    func topicRoundTrip() throws {
        let cluster = try mockCluster(topics: [("src", 4), ("back", 4), ("piped", 4)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        let published = try Evt.run(["publish", "topic:src", "--envelope"], stdin: ndjson(Self.envelopeLines(400)), environment: env)
        #expect(published.status == 0, "\(published.stderr)")

        let there = try Evt.run(["copy-between", "topic:src", "stream:mid"], environment: env)
        #expect(there.status == 0, "\(there.stderr)")
        #expect(there.stderr.contains("copied 400 events"))
        #expect(try redis.cli(["XLEN", "mid"]).trimmingCharacters(in: .whitespacesAndNewlines) == "400")
        // The documented shape of an entry holding a record.
        let first = try redis.streamEntries("mid").first { $0.fields.contains("header.trace") }!
        #expect(first.fields[0] == "value" && first.fields[2] == "key")
        #expect(Array(first.fields.suffix(4)).enumerated().filter { $0.offset % 2 == 0 }.map(\.element) == ["kafka.timestamp", "kafka.source"])

        let back = try Evt.run(["copy-between", "stream:mid", "topic:back"], environment: env)
        #expect(back.status == 0, "\(back.stderr)")
        let original = try Self.records(cluster.bootstrapServers, "src")
        let copied = try Self.records(cluster.bootstrapServers, "back")
        #expect(original.count == 400)
        #expect(copied == original)

        // The same through a pipe: tail shows the entries, publish --envelope reads them back.
        let tail = try Evt.run(["tail", "stream:mid", "-n", "400"], environment: env)
        let piped = try Evt.run(["publish", "topic:piped", "--envelope"], stdin: tail.stdout, environment: env)
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(try Self.records(cluster.bootstrapServers, "piped") == original)
    }

    @Test("stream entries copied to a topic and back: ids and fields (binary too) come back; into a newer stream the id is kept in a field")
    func streamRoundTrip() throws {
        let cluster = try mockCluster(topics: [("entries", 4), ("one", 1)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        for n in 1...50 {
            try redis.cli(["XADD", "s", "\(1_700_000_000_000 + n)-\(n % 3)", "user", "u\(n % 5)", "n", String(n), "note", "a \"quoted\" line"])
        }
        try redis.cli(["EVAL", "return redis.call('XADD', KEYS[1], '1800000000000-0', 'bin', string.char(0, 255, 13, 7), string.char(200, 1), 'x')", "1", "s"])

        // Into one partition (order kept), and back: ids and fields byte for byte (redis-cli
        // escapes binary bytes the same way for both).
        let out = try Evt.run(["copy-between", "stream:s", "topic:one/0", "--key-field", "user"], environment: env)
        #expect(out.status == 0, "\(out.stderr)")
        let records = try kcatConsume(brokers: cluster.bootstrapServers, topic: "one")
        #expect(records.count == 51)
        #expect(records.allSatisfy { $0.headers.map(\.0) == ["evt.stream.id"] })
        #expect(records.first?.key == "u1" && records.first?.payload?.hasPrefix(#"{"user":"u1","n":"1","note":"a \"quoted\" line"}"#) == true)
        let back = try Evt.run(["copy-between", "topic:one", "stream:s2"], environment: env)
        #expect(back.status == 0, "\(back.stderr)")
        func xrange(_ key: String) throws -> String {
            try runProcess(["redis-cli", "-p", String(redis.port), "--no-raw", "XRANGE", key, "-", "+"]).stdoutText
        }
        #expect(try xrange("s2") == (try xrange("s")))
        #expect(try xrange("s").contains(#"\x00\xff\r\a"#))

        // Again into s2, which now has those ids: automatic ids, the source id in a last field.
        let again = try Evt.run(["copy-between", "topic:one", "stream:s2"], environment: env)
        #expect(again.status == 0, "\(again.stderr)")
        let entries = try redis.streamEntries("s2")
        #expect(entries.count == 102)
        let originals = try redis.streamEntries("s")
        for (copy, original) in zip(entries.suffix(51), originals) {
            #expect(copy.id > original.id)
            #expect(copy.fields == original.fields + ["evt.stream.id", original.id])
        }

        // Keyed by a field over 4 partitions: one user's entries share a partition.
        let keyed = try Evt.run(["copy-between", "stream:s", "topic:entries", "--key-field", "user"], environment: env)
        #expect(keyed.status == 0, "\(keyed.stderr)")
        let spread = try kcatConsume(brokers: cluster.bootstrapServers, topic: "entries")
        let byUser = Dictionary(grouping: spread.filter { $0.key != nil }, by: { $0.key! })
        #expect(byUser.count == 5 && byUser.values.allSatisfy { Set($0.map(\.partition)).count == 1 })
        #expect(Set(spread.map(\.partition)).count > 1)
    }

    @Test("killed with SIGKILL at random points and resumed: topic→stream neither loses nor duplicates")
    func killedTopicToStream() throws {
        let cluster = try mockCluster(topics: [("big", 4)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        let total = 120_000
        let published = try Evt.run(["publish", "topic:big", "--key", "k"], stdin: ndjson((0..<total).map { #"{"k":\#($0 % 97),"n":\#($0)}"# }), environment: env)
        #expect(published.status == 0)
        func length() throws -> Int { Int(try redis.cli(["XLEN", "big"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 }
        var killedMidway = 0
        for _ in 0..<3 {
            // Killed at a random point of its own progress, however fast this machine is now.
            let killAt = try length() + Int.random(in: 1...25_000)
            let copy = try Evt.start(["copy-between", "topic:big", "stream:big", "--checkpoint", "big"], environment: env)
            _ = try waitUntil { try length() >= killAt || copy.hasExited() }
            copy.signal(SIGKILL)
            _ = copy.wait(timeout: 10)
            if try length() < total { killedMidway += 1 }
        }
        let finish = try Evt.run(["copy-between", "topic:big", "stream:big", "--checkpoint", "big"], environment: env)
        #expect(finish.status == 0, "\(finish.stderr)")
        #expect(killedMidway > 0, "every kill came after the copy had finished: nothing was tested")
        let distinct = "local seen, n = {}, 0 for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do local f = e[2] local s = f[#f] if not seen[s] then seen[s] = true n = n + 1 end end return n"
        #expect(try redis.cli(["XLEN", "big"]).trimmingCharacters(in: .whitespacesAndNewlines) == String(total))
        #expect(try redis.cli(["EVAL", distinct, "1", "big"]).trimmingCharacters(in: .whitespacesAndNewlines) == String(total))
    }

    @Test("killed with SIGKILL and resumed: stream→topic at least once loses nothing; --exactly-once also duplicates nothing")
    func killedStreamToTopic() throws {
        let cluster = try mockCluster(topics: [("once", 4), ("least", 4)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        let total = 60_000
        let filled = try Evt.run(["publish", "stream:src"], stdin: ndjson((0..<total).map { #"{"user":"u\#($0 % 13)","n":"\#($0)"}"# }), environment: env)
        #expect(filled.status == 0)
        for (topic, extra) in [("once", ["--exactly-once"]), ("least", [])] {
            var killedMidway = 0
            for _ in 0..<2 {
                // Killed at a random point of its own progress (its --stats lines), however fast
                // this machine is now.
                let killAt = Int.random(in: 1...20_000)
                let copy = try Evt.start(["copy-between", "stream:src", "topic:\(topic)", "--key-field", "user", "--checkpoint", topic,
                                          "--stats", "50ms"] + extra, environment: env)
                func copiedSoFar() -> Int { copy.stderrSoFar.matches(of: /copied (\d+) events \(/).last.map { Int($0.1)! } ?? 0 }
                // A quiet machine copies all 60 000 before the first --stats line (confirms come
                // once a second): then the kill comes at a random early moment instead.
                let latest = Date().addingTimeInterval(Double.random(in: 0.05...0.25))
                _ = waitUntil { copiedSoFar() >= killAt || copy.hasExited() || Date() >= latest }
                copy.signal(SIGKILL)
                _ = copy.wait(timeout: 10)
                if try kcatConsume(brokers: cluster.bootstrapServers, topic: topic).count < total { killedMidway += 1 }
            }
            let finish = try Evt.run(["copy-between", "stream:src", "topic:\(topic)", "--key-field", "user", "--checkpoint", topic] + extra, environment: env)
            #expect(finish.status == 0, "\(finish.stderr)")
            #expect(killedMidway > 0, "\(topic): every kill came after the copy had finished")
            let records = try kcatConsume(brokers: cluster.bootstrapServers, topic: topic)
            let ids = records.map { $0.headers.first { $0.0 == "evt.stream.id" }!.1 }
            #expect(Set(ids).count == total, "\(topic): lost \(total - Set(ids).count)")
            if topic == "once" { #expect(records.count == total, "--exactly-once duplicated \(records.count - total)") }
        }
    }

    @Test("target down mid-copy: exit 1 with a clear message, the checkpoint stays before what was not acknowledged, a rerun completes")
    func targetDown() throws {
        let cluster = try mockCluster(topics: [("t", 4)])
        let redis = try RedisServer(persistent: true)
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        let total = 20_000
        _ = try Evt.run(["publish", "stream:src"], stdin: ndjson((0..<total).map { #"{"n":"\#($0)"}"# }), environment: env)

        // Kafka loses every Produce request (its connection closes, nothing is stored): deliveries time out.
        cluster.pushRequestErrors(apiKey: 0, errors: Array(repeating: KafkaMockCluster.connectionLost, count: 10_000))
        let failed = try Evt.run(["copy-between", "stream:src", "topic:t", "--checkpoint", "down", "--timeout", "2s"], environment: env)
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("not delivered") || failed.stderr.contains("did not acknowledge"), "\(failed.stderr)")
        let checkpoint = try redis.cli(["HGET", "evt:checkpoint:down", "id"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(checkpoint.isEmpty, "the checkpoint moved to \(checkpoint) though nothing was acknowledged")
        #expect(try kcatConsume(brokers: cluster.bootstrapServers, topic: "t").isEmpty)
        cluster.clearRequestErrors(apiKey: 0)
        let resumed = try Evt.run(["copy-between", "stream:src", "topic:t", "--checkpoint", "down"], environment: env)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let ids = Set(try kcatConsume(brokers: cluster.bootstrapServers, topic: "t").map { $0.headers[0].1 })
        #expect(ids.count == total)

        // Redis (the target) stopped mid-copy, then back.
        _ = try Evt.run(["publish", "topic:t"], stdin: ndjson((0..<total).map { #"{"m":\#($0)}"# }), environment: env)
        let copy = try Evt.start(["copy-between", "topic:t", "stream:dst", "--checkpoint", "dst"], environment: env)
        // Killed once the copy has written some and before it is done: frozen (SIGSTOP) while that is checked.
        func written() throws -> Int { Int(try redis.cli(["XLEN", "dst"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 }
        #expect(try waitUntil { try written() > 0 })
        copy.signal(SIGSTOP)
        #expect(try written() < 2 * total, "the copy was done before Redis was killed")
        redis.kill()
        copy.signal(SIGCONT)
        let lost = copy.wait(timeout: 30)
        #expect(lost.status == 1, "\(lost.stderr)")
        #expect(lost.stderr.contains("connection") || lost.stderr.contains("connect"), "\(lost.stderr)")
        try redis.start()
        let rest = try Evt.run(["copy-between", "topic:t", "stream:dst", "--checkpoint", "dst"], environment: env)
        #expect(rest.status == 0, "\(rest.stderr)")
        #expect(try redis.cli(["XLEN", "dst"]).trimmingCharacters(in: .whitespacesAndNewlines) == String(2 * total))
    }

    @Test("-f follows new events and rides out a Redis restart; --stats reports; SIGTERM stops it with 143")
    func follow() throws {
        let cluster = try mockCluster(topics: [("live", 2)])
        let redis = try RedisServer(persistent: true)
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "topic:live"], stdin: ndjson((1...10).map { #"{"n":\#($0)}"# }), environment: env)
        let bridge = try Evt.start(["copy-between", "topic:live", "stream:live", "--checkpoint", "live", "-f", "--stats", "1s"], environment: env)
        func length() throws -> Int { Int(try redis.cli(["XLEN", "live"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 }
        func waitFor(_ count: Int) throws -> Bool { try waitUntil { try length() >= count } }
        #expect(try waitFor(10))
        _ = try Evt.run(["publish", "topic:live"], stdin: ndjson((11...20).map { #"{"n":\#($0)}"# }), environment: env)
        #expect(try waitFor(20))
        redis.stop()
        _ = try Evt.run(["publish", "topic:live"], stdin: ndjson((21...30).map { #"{"n":\#($0)}"# }), environment: env)
        #expect(waitUntil { bridge.stderrSoFar.contains("retrying") }, "the bridge met the outage: \(bridge.stderrSoFar)")
        try redis.start()
        #expect(try waitFor(30))
        #expect(waitUntil { bridge.stderrSoFar.contains(", lag ") }, "a --stats line: \(bridge.stderrSoFar)")
        bridge.signal(SIGTERM)
        let result = bridge.wait(timeout: 15)
        #expect(result.status == 143, "\(result.stderr)")
        #expect(try length() == 30)
        #expect(result.stderr.contains("retrying"))
        #expect(result.stderr.contains(", lag "), "\(result.stderr)")
    }

    @Test("-f into a topic rides out a Kafka outage as it does a Redis one: deliveries time out, the bridge retries from its checkpoint, nothing is lost")
    func followKafkaOutage() throws {
        let cluster = try mockCluster(topics: [("out", 2)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        func publish(_ range: ClosedRange<Int>) throws {
            #expect(try Evt.run(["publish", "stream:in"], stdin: ndjson(range.map { #"{"n":"\#($0)"}"# }), environment: env).status == 0)
        }
        /// Waits until the checkpoint names the stream's newest entry: all of it confirmed.
        func waitForCheckpoint() throws -> Bool {
            let newest = try redis.cli(["XREVRANGE", "in", "+", "-", "COUNT", "1"]).split(separator: "\n").first.map(String.init) ?? ""
            for _ in 0..<150 {
                if try redis.cli(["HGET", "evt:checkpoint:out", "id"]).trimmingCharacters(in: .whitespacesAndNewlines) == newest { return true }
                usleep(100_000)
            }
            return false
        }
        try publish(1...10)
        let bridge = try Evt.start(["copy-between", "stream:in", "topic:out", "--checkpoint", "out", "-f", "--timeout", "1s"], environment: env)
        #expect(try waitForCheckpoint())
        // Kafka loses every Produce request (its connection closes, nothing is stored) until
        // deliveries have timed out (1 s) and the bridge has said it retries, and then for a
        // few of its retries (one a second) more.
        cluster.pushRequestErrors(apiKey: 0, errors: Array(repeating: KafkaMockCluster.connectionLost, count: 10_000))
        try publish(11...20)
        #expect(waitUntil { bridge.stderrSoFar.contains("retrying") }, "\(bridge.stderrSoFar)")
        usleep(2_500_000)
        cluster.clearRequestErrors(apiKey: 0)
        #expect(try waitForCheckpoint())
        bridge.signal(SIGTERM)
        let result = bridge.wait(timeout: 15)
        #expect(result.status == 143, "\(result.stderr)")
        #expect(result.stderr.contains("retrying"), "\(result.stderr)")
        let ids = Set(try kcatConsume(brokers: cluster.bootstrapServers, topic: "out").compactMap { $0.headers.first { $0.0 == "evt.stream.id" }?.1 })
        #expect(ids.count == 20, "\(result.stderr)")
    }

    @Test("topic→topic keeps its checkpoint as the committed offsets of group NAME: a rerun copies only what is new")
    func topicToTopicCheckpoint() throws {
        let cluster = try mockCluster(topics: [("a", 3), ("b", 3)])
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers]
        _ = try Evt.run(["publish", "topic:a", "--key", "n"], stdin: ndjson((1...30).map { #"{"n":\#($0)}"# }), environment: env)
        let first = try Evt.run(["copy-between", "topic:a", "topic:b", "--checkpoint", "a2b"], environment: env)
        #expect(first.status == 0 && first.stderr.contains("copied 30 events"), "\(first.stderr)")
        let again = try Evt.run(["copy-between", "topic:a", "topic:b", "--checkpoint", "a2b"], environment: env)
        #expect(again.status == 0 && again.stderr.contains("copied 0 events"), "\(again.stderr)")
        _ = try Evt.run(["publish", "topic:a", "--key", "n"], stdin: ndjson((31...35).map { #"{"n":\#($0)}"# }), environment: env)
        let more = try Evt.run(["copy-between", "topic:a", "topic:b", "--checkpoint", "a2b"], environment: env)
        #expect(more.status == 0 && more.stderr.contains("copied 5 events"), "\(more.stderr)")
        let copied = try kcatConsume(brokers: cluster.bootstrapServers, topic: "b").compactMap { $0.payload }
        #expect(copied.count == 35 && Set(copied).count == 35)
    }

    @Test("list→topic moves the items in FIFO order through a processing list; what a crash left there goes first")
    func listToTopic() throws {
        let cluster = try mockCluster(topics: [("jobs", 1)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "list:jobs"], stdin: ndjson((1...2500).map { #"{"job":\#($0)}"# }), environment: env)
        // An item a killed copy had moved but not delivered.
        try redis.cli(["LPUSH", "evt:checkpoint:jobs", #"{"job":0}"#])
        let copy = try Evt.run(["copy-between", "list:jobs", "topic:jobs", "--checkpoint", "jobs"], environment: env)
        #expect(copy.status == 0, "\(copy.stderr)")
        let values = try kcatConsume(brokers: cluster.bootstrapServers, topic: "jobs").map { $0.payload! }
        #expect(values == (0...2500).map { #"{"job":\#($0)}"# })
        #expect(try redis.cli(["LLEN", "jobs"]).hasPrefix("0"))
        #expect(try redis.cli(["LLEN", "evt:checkpoint:jobs"]).hasPrefix("0"))
    }

    @Test("a batch Redis refuses never moves the checkpoint past it: the key replaced mid-copy, then restored, loses nothing")
    func refusedBatchKeepsCheckpoint() throws {
        let cluster = try mockCluster(topics: [("r", 1)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "topic:r"], stdin: ndjson((1...3).map { #"{"a":\#($0)}"# }), environment: env)
        let bridge = try Evt.start(["copy-between", "topic:r", "stream:dst", "--checkpoint", "r", "-f"], environment: env)
        #expect(try waitUntil { try redis.cli(["XLEN", "dst"]).hasPrefix("3") })
        try redis.cli(["RENAME", "dst", "saved"])
        try redis.cli(["SET", "dst", "oops"])
        _ = try Evt.run(["publish", "topic:r"], stdin: ndjson((4...6).map { #"{"a":\#($0)}"# }), environment: env)
        let refused = bridge.wait(timeout: 20)
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("no longer a stream") || refused.stderr.contains("WRONGTYPE"), "\(refused.stderr)")
        #expect(try redis.cli(["HGET", "evt:checkpoint:r", "partition:0"]).hasPrefix("3"))
        try redis.cli(["DEL", "dst"])
        try redis.cli(["RENAME", "saved", "dst"])
        let rerun = try Evt.run(["copy-between", "topic:r", "stream:dst", "--checkpoint", "r"], environment: env)
        #expect(rerun.status == 0 && rerun.stderr.contains("copied 3 events"), "\(rerun.stderr)")
        #expect(try redis.cli(["XLEN", "dst"]).hasPrefix("6"))
    }

    @Test("--per-partition: one stream per partition, TARGET:PARTITION, each in offset order")
    func perPartition() throws {
        let cluster = try mockCluster(topics: [("pp", 4)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "topic:pp", "--key", "k"], stdin: ndjson((0..<200).map { #"{"k":\#($0 % 9),"n":\#($0)}"# }), environment: env)
        let copy = try Evt.run(["copy-between", "topic:pp", "stream:pp", "--per-partition", "--checkpoint", "pp"], environment: env)
        #expect(copy.status == 0, "\(copy.stderr)")
        var total = 0
        for partition in 0..<4 {
            let entries = try redis.streamEntries("pp:\(partition)")
            let sources = entries.map { $0.fields.last! }
            #expect(sources == (0..<entries.count).map { "pp/\(partition)/\($0)" })
            total += entries.count
        }
        #expect(total == 200)
    }

    @Test("--exactly-once stops at the first event the topic refuses, so the rerun neither skips nor repeats anything")
    func exactlyOnceStopsAtAGap() throws {
        let cluster = try mockCluster(topics: [("gap", 1)])
        let redis = try RedisServer()
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        try redis.cli(["XADD", "s", "1-1", "v", "small"])
        try redis.cli(["XADD", "s", "2-1", "v", String(repeating: "x", count: 1500)])
        try redis.cli(["XADD", "s", "3-1", "v", "small again"])
        let first = try Evt.run(["copy-between", "stream:s", "topic:gap", "--exactly-once", "--checkpoint", "gap",
                                 "-X", "message.max.bytes=1000"], environment: env)
        #expect(first.status == 1, "\(first.stderr)")
        let second = try Evt.run(["copy-between", "stream:s", "topic:gap", "--exactly-once", "--checkpoint", "gap"], environment: env)
        #expect(second.status == 0, "\(second.stderr)")
        let ids = try kcatConsume(brokers: cluster.bootstrapServers, topic: "gap").map { $0.headers[0].1 }
        #expect(ids == ["1-1", "2-1", "3-1"])
    }

    @Test("list items are copied as their bytes, also an item that is exactly null")
    func listItemBytes() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        let items = ["null", " x ", "1e2", #""q""#, #"{"value_b64":"AA=="}"#, ""]
        for item in items { try redis.cli(["LPUSH", "src", item]) }
        let copy = try Evt.run(["copy-between", "list:src", "list:dst"], environment: env)
        #expect(copy.status == 0, "\(copy.stderr)")
        let copied = try redis.cli(["LRANGE", "dst", "0", "-1"]).split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        #expect(copied == items.reversed())
    }

    @Test("-f rides out a Redis restart that answers LOADING for a while (a big append-only file)")
    func followThroughLoading() throws {
        let cluster = try mockCluster(topics: [("ld", 1)])
        let redis = try RedisServer(persistent: true)
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        // Enough data that reading the append-only file back takes a noticeable while.
        // In scripts of 100 000 SETs: one script of them all could outlast Redis' 5 s script
        // time limit on a loaded machine, and then everyone else is answered BUSY.
        for part in 0..<15 {
            let script = "for i = \(part * 100_000 + 1), \((part + 1) * 100_000) do redis.call('SET', 'filler:' .. i, 'x') end return 1"
            #expect(try redis.cli(["EVAL", script, "0"]) == "1\n")
        }
        _ = try Evt.run(["publish", "topic:ld"], stdin: ndjson((1...10).map { #"{"n":\#($0)}"# }), environment: env)
        let bridge = try Evt.start(["copy-between", "topic:ld", "stream:ld", "--checkpoint", "ld", "-f"], environment: env)
        func length() -> Int { Int((try? redis.cli(["XLEN", "ld"]))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0 }
        #expect(waitUntil { length() >= 10 })
        #expect(length() == 10)
        redis.stop()
        _ = try Evt.run(["publish", "topic:ld"], stdin: ndjson((11...20).map { #"{"n":\#($0)}"# }), environment: env)
        try redis.start()
        _ = waitUntil(timeout: 60) { length() >= 20 }
        bridge.signal(SIGTERM)
        let result = bridge.wait(timeout: 20)
        #expect(result.status == 143, "\(result.stderr)")
        #expect(length() == 20, "\(result.stderr)")
    }

    @Test("usage errors: a channel source, --exactly-once from a list, into a channel or topic→topic, --per-partition from a stream, a checkpoint of another copy")
    func usage() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url, "EVT_KAFKA_BROKERS": "127.0.0.1:1"]
        for arguments in [["channel:l", "topic:t"], ["list:l", "topic:t", "--exactly-once"], ["topic:t", "channel:c", "--exactly-once"],
                          ["topic:a", "topic:b", "--exactly-once"], ["stream:s", "stream:t", "--per-partition"]] {
            let result = try Evt.run(["copy-between"] + arguments, environment: env)
            #expect(result.status == 2, "\(arguments): \(result.stderr)")
            #expect(!result.stderr.isEmpty && result.stdout.isEmpty)
        }
        try redis.cli(["XADD", "s", "*", "a", "1"])
        #expect(try Evt.run(["copy-between", "stream:s", "stream:t", "--checkpoint", "c"], environment: env).status == 0)
        let other = try Evt.run(["copy-between", "stream:other", "stream:t", "--checkpoint", "c"], environment: env)
        #expect(other.status == 2)
        #expect(other.stderr.contains("belongs to a copy from stream:s"))
    }
}
