import Foundation
import Testing
import EvtTestSupport

// Fidelity (CONTRACT.md, "Records" and "Publish"): the four bytes `null` stay apart from an
// absent value or key through `evt tail A | evt publish B --envelope`; every record evt
// produces is partitioned as Java clients do (murmur2), unless -X partitioner=… says otherwise;
// binary keys and headers written by another client come through byte for byte. Checked with
// peers: kcat, and the confluent-kafka Python client (its own, newer librdkafka).

/// kcat -P with `:` between key and value, one record per line; `nullEmpty` (-Z) sends an
/// empty key or value as null instead.
private func kcatProduce(_ brokers: String, topic: String, partition: Int?, _ lines: [String], nullEmpty: Bool) throws {
    let result = try runProcess(["kcat", "-b", brokers, "-P", "-t", topic, "-K:"] + (partition.map { ["-p", String($0)] } ?? [])
                                + (nullEmpty ? ["-Z"] : []),
                                stdin: Data(lines.map { $0 + "\n" }.joined().utf8), timeout: 30)
    #expect(result.status == 0, "kcat -P: \(result.stderr)")
}

/// The topic as kcat prints it with `format` (one record per line, in offset order per partition).
private func kcatFormat(_ brokers: String, topic: String, _ format: String) throws -> [String] {
    let result = try runProcess(["kcat", "-b", brokers, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", format + "\n"], timeout: 60)
    #expect(result.status == 0, "kcat -C: \(result.stderr)")
    return result.stdoutLines
}

/// `evt tail SOURCE -n N | evt publish TARGET --envelope`, one after the other; tail's output.
@discardableResult
private func tailIntoPublish(_ source: String, _ target: String, environment: [String: String]) throws -> String {
    let tail = try Evt.run(["tail", source, "-n", "1000"], environment: environment)
    #expect(tail.status == 0, "\(tail.stderr)")
    let publish = try Evt.run(["publish", target, "--envelope"], stdin: tail.stdout, environment: environment)
    #expect(publish.status == 0, "\(publish.stderr)")
    return tail.stdoutText
}

/// Java's `Utils.murmur2` and the default partitioner's `toPositive(murmur2(key)) % partitions`,
/// written from the Java source: an independent check of where a key belongs.
private func javaPartition(_ key: [UInt8], partitions: Int) -> Int {
    let m: UInt32 = 0x5bd1_e995
    var h: UInt32 = 0x9747_b28c ^ UInt32(key.count)
    var index = 0
    while index + 4 <= key.count {
        var k = UInt32(key[index]) | UInt32(key[index + 1]) << 8 | UInt32(key[index + 2]) << 16 | UInt32(key[index + 3]) << 24
        k = k &* m
        k ^= k >> 24
        k = k &* m
        h = h &* m
        h ^= k
        index += 4
    }
    let rest = key.count & 3
    if rest == 3 { h ^= UInt32(key[index + 2]) << 16 }
    if rest >= 2 { h ^= UInt32(key[index + 1]) << 8 }
    if rest >= 1 {
        h ^= UInt32(key[index])
        h = h &* m
    }
    h ^= h >> 13
    h = h &* m
    h ^= h >> 15
    return Int(h & 0x7fff_ffff) % partitions
}

private let python3: String? = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
    .map { "\($0)/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) }

/// Runs a confluent-kafka script with `arguments` in sys.argv[1...]; its stdout.
private func python(_ script: String, _ arguments: [String]) throws -> String {
    let scratch = Scratch()
    let path = scratch.write("peer.py", Data(script.utf8))
    let result = try runProcess([python3!, path] + arguments, timeout: 60)
    if result.stderr.contains("No module named 'confluent_kafka'") {
        Issue.record("the confluent-kafka Python package is missing: pip install confluent-kafka (.ci/run does)")
    }
    #expect(result.status == 0, "python3 peer: \(result.stderr)")
    return result.stdoutText
}

/// Produces value "i" with key i (hex bytes in sys.argv[3]) for each i, Java's partitioner.
private let pythonProduceKeys = """
    import sys
    from confluent_kafka import Producer
    brokers, topic, keys = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    p = Producer({"bootstrap.servers": brokers, "partitioner": "murmur2_random", "enable.idempotence": True})
    for i, key in enumerate(keys):
        p.produce(topic, key=bytes.fromhex(key), value=str(i).encode())
    sys.exit(1 if p.flush(30) else 0)
    """

private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

@Suite("fidelity: null vs \"null\", Java's partitioner, byte-exact copies through peers")
struct FidelityTests {
    @Test("values and keys of the bytes null, tombstones, null keys and empty ones come out of tail | publish --envelope identical")
    func nullAndTombstones() throws {
        let cluster = try mockCluster(topics: [("A", 4), ("B", 4)])
        let brokers = cluster.bootstrapServers
        // With -Z an empty side is null: a tombstone ("k4:"), no key (":v5"), neither (":").
        try kcatProduce(brokers, topic: "A", partition: 1, ["k1:null", "null:v2", "null:null", "k4:", ":v5", ":"], nullEmpty: true)
        // Without it an empty side is there with no bytes.
        try kcatProduce(brokers, topic: "A", partition: 1, [":v7", "k8:", "null:"], nullEmpty: false)
        // %K and %S are the key and value lengths, -1 for null.
        let format = "%p|%o|%K|%S|%k|%s"
        let source = try kcatFormat(brokers, topic: "A", format)
        #expect(source == ["1|0|2|4|k1|null", "1|1|4|2|null|v2", "1|2|4|4|null|null", "1|3|2|-1|k4|", "1|4|-1|2||v5",
                           "1|5|-1|-1||", "1|6|0|2||v7", "1|7|2|0|k8|", "1|8|4|0|null|"])

        let records = try tailIntoPublish("topic:A", "topic:B", environment: ["EVT_KAFKA_BROKERS": brokers])
        let members = records.split(separator: "\n").map { line in
            String(line[line.range(of: #","key"#)!.lowerBound...].dropFirst())
        }
        #expect(members == [#""key":"k1","value":"null"}"#, #""key":"null","value":"v2"}"#, #""key":"null","value":"null"}"#,
                            #""key":"k4","value":null}"#, #""key":null,"value":"v5"}"#, #""key":null,"value":null}"#,
                            #""key":"","value":"v7"}"#, #""key":"k8","value":""}"#, #""key":"null","value":""}"#])
        #expect(try kcatFormat(brokers, topic: "B", format) == source)
        withExtendedLifetime(cluster) {}
    }

    @Test("a list item and a channel message of the bytes null are the string \"null\"; a list copied through --envelope keeps them")
    func nullListItems() throws {
        let redis = try RedisServer()
        let environment = ["EVT_REDIS_URL": redis.url]
        try redis.cli(["RPUSH", "a", "x", "null", "", "[null]", "nil"])
        let records = try tailIntoPublish("list:a", "list:b", environment: environment)
        #expect(records.split(separator: "\n").map(String.init) == [
            #"{"list":"a","value":"nil"}"#, #"{"list":"a","value":[null]}"#, #"{"list":"a","value":""}"#,
            #"{"list":"a","value":"null"}"#, #"{"list":"a","value":"x"}"#,
        ])
        // publish LPUSHes them oldest first: b holds the same items as a, in the same order.
        #expect(try redis.cli(["LRANGE", "b", "0", "-1"]) == "x\nnull\n\n[null]\nnil\n")
        #expect(try redis.cli(["LRANGE", "a", "0", "-1"]) == "x\nnull\n\n[null]\nnil\n")

        let subscriber = try Evt.start(["tail", "channel:news", "-f"], environment: environment)
        defer { subscriber.signal(SIGTERM); _ = subscriber.wait(timeout: 10) }
        var received = ""
        for _ in 0..<100 where !received.contains("\n") {
            try redis.cli(["PUBLISH", "news", "null"])
            usleep(100_000)
            received = (try? String(contentsOfFile: subscriber.scratchStdout, encoding: .utf8)) ?? ""
        }
        #expect(received.split(separator: "\n").first == #"{"channel":"news","value":"null"}"#)
    }

    @Test("tail topic | publish stream --envelope keeps the values only and warns once; README and the man pages say so")
    func envelopeIntoStreamKeepsValuesOnly() throws {
        let cluster = try mockCluster(topics: [("A", 1)])
        let redis = try RedisServer()
        let environment = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        let produce = try runProcess(["kcat", "-b", cluster.bootstrapServers, "-P", "-t", "A", "-K:", "-H", "src=api"],
                                     stdin: Data("u1:{\"id\":1}\nu2:{\"id\":2}\n".utf8), timeout: 30)
        #expect(produce.status == 0, "kcat -P: \(produce.stderr)")
        let tail = try Evt.run(["tail", "topic:A", "-n", "10"], environment: environment)
        #expect(tail.status == 0 && tail.stdoutLines.count == 2, "\(tail.stderr)")
        let publish = try Evt.run(["publish", "stream:copy", "--envelope"], stdin: tail.stdout, environment: environment)
        #expect(publish.status == 0, "\(publish.stderr)")
        let warnings = publish.stderr.split(separator: "\n").filter { $0.contains("warning:") }
        #expect(warnings.count == 1 && warnings[0].contains("key, headers and timestamp of the events are dropped"), "\(publish.stderr)")
        // Each entry holds the value's fields and nothing else.
        #expect(try redis.cli(["XRANGE", "copy", "-", "+"]).split(separator: "\n").filter { !$0.contains("-") } == ["id", "1", "id", "2"])

        // The documents describe this pipeline as it behaves, not as a byte-for-byte copy.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8).split(separator: "\n")
        let example = try #require(readme.firstIndex { $0.contains("| evt publish stream:") && $0.contains("--envelope") })
        let comment = readme[..<example].reversed().prefix { $0.hasPrefix("#") }.reversed().joined(separator: " ")
        #expect(comment.contains("keys, headers and timestamps are dropped") && comment.contains("warns"), "\(comment)")
        #expect(!comment.contains("byte for byte"))
        let tailPage = try String(contentsOf: root.appendingPathComponent("man/evt-tail.1"), encoding: .utf8)
        let tailExample = try #require(tailPage.range(of: "| evt publish stream:orders \\-\\-envelope"))
        let before = tailPage[..<tailExample.lowerBound].suffix(200)
        #expect(before.contains("keys, headers and timestamps") && before.contains("warns"), "\(before)")
        let publishPage = try String(contentsOf: root.appendingPathComponent("man/evt-publish.1"), encoding: .utf8)
        #expect(!publishPage.contains("dropped without a warning"))
        withExtendedLifetime(cluster) {}
    }

    @Test("publish --key puts every key on the partition Java's murmur2 picks, where confluent-kafka with murmur2_random puts it too",
          .enabled(if: python3 != nil, "python3 is missing: the confluent-kafka peer cannot run"))
    func javaPartitioner() throws {
        let partitions = 16
        let cluster = try mockCluster(topics: [("evt", partitions), ("peer", partitions), ("crc", partitions), ("kcat", partitions)])
        let brokers = cluster.bootstrapServers
        let environment = ["EVT_KAFKA_BROKERS": brokers]
        let keys = (0..<300).map { "key-\($0)" } + ["", "a", "ab", "abc", "abcd", "é中😀", "null"]
        let lines = keys.enumerated().map { #"{"k":"\#($0.element)","n":\#($0.offset)}"# }
        let publish = try Evt.run(["publish", "topic:evt", "--key", "k"], stdin: ndjson(lines), environment: environment)
        #expect(publish.status == 0, "\(publish.stderr)")
        _ = try python(pythonProduceKeys, [brokers, "peer", keys.map { hex(Array($0.utf8)) }.joined(separator: ",")])

        /// index (from the value) → partition.
        func placement(_ topic: String, index: (String) -> Int?) throws -> [Int: Int] {
            var result: [Int: Int] = [:]
            for line in try kcatFormat(brokers, topic: topic, "%p %s") {
                let parts = line.split(separator: " ", maxSplits: 1)
                if let i = index(String(parts[1])) { result[i] = Int(parts[0]) }
            }
            return result
        }
        let byEvt = try placement("evt") { sequenceNumber(of: $0) }
        let byPeer = try placement("peer") { Int($0) }
        let expected = Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($0.offset, javaPartition(Array($0.element.utf8), partitions: partitions)) })
        #expect(byEvt.count == keys.count && byPeer.count == keys.count)
        #expect(byEvt == expected)
        #expect(byPeer == expected)
        #expect(Set(byEvt.values).count == partitions, "300 keys reach every partition")

        // -X partitioner wins: with consistent_random (librdkafka's own default, CRC32) evt
        // puts keys where kcat's default puts them, and that is not Java's placement.
        let crc = try Evt.run(["publish", "topic:crc", "--key", "k", "-X", "partitioner=consistent_random"],
                              stdin: ndjson(lines), environment: environment)
        #expect(crc.status == 0, "\(crc.stderr)")
        try kcatProduce(brokers, topic: "kcat", partition: nil,
                        keys.enumerated().filter { !$0.element.isEmpty }.map { "\($0.element):\($0.offset)" }, nullEmpty: false)
        let byCRC = try placement("crc") { sequenceNumber(of: $0) }
        let byKcat = try placement("kcat") { Int($0) }
        #expect(byKcat.count == keys.count - 1)
        #expect(byKcat.allSatisfy { byCRC[$0.key] == $0.value })
        #expect(byCRC != expected)
        withExtendedLifetime(cluster) {}
    }

    @Test("binary keys, binary and null and repeated headers from confluent-kafka come through tail | publish --envelope byte for byte, on Java's partitions",
          .enabled(if: python3 != nil, "python3 is missing: the confluent-kafka peer cannot run"))
    func binaryThroughPeer() throws {
        let partitions = 8
        let cluster = try mockCluster(topics: [("x", partitions), ("y", partitions), ("z", partitions)])
        let brokers = cluster.bootstrapServers
        let environment = ["EVT_KAFKA_BROKERS": brokers]
        // The peer writes to x; evt copies x to y; the peer reads both and compares every byte.
        let script = """
            import sys, json
            from confluent_kafka import Producer, Consumer, TopicPartition
            brokers, mode = sys.argv[1], sys.argv[2]
            records = []
            for i in range(64):
                key = None if i % 16 == 5 else bytes([i, 0, 255 - i, 0x80]) + b"\\xff" * (i % 5)
                value = None if i % 16 == 7 else (b"null" if i % 16 == 9 else bytes([0xfe, i, 0]) + b"x" * i)
                # A repeated name next to itself: evt's headers object keeps the order per name.
                headers = [("bin", bytes([0xc3, i])), ("bin", b""), ("null", None), ("t\\u00e9xt", "é".encode()), ("n", b"null")]
                records.append((key, value, headers))
            def dump(topic):
                c = Consumer({"bootstrap.servers": brokers, "group.id": "peer-" + topic, "enable.auto.commit": False})
                c.assign([TopicPartition(topic, p, 0) for p in range(\(partitions))])
                seen = {}
                idle = 0
                while len(seen) < len(records) and idle < 100:
                    m = c.poll(0.1)
                    if m is None or m.error():
                        idle += 1
                        continue
                    seen[(m.key(), m.value())] = (m.partition(), m.headers())
                c.close()
                return seen
            if mode == "produce":
                p = Producer({"bootstrap.servers": brokers, "partitioner": "murmur2_random", "enable.idempotence": True})
                for key, value, headers in records:
                    p.produce("x", key=key, value=value, headers=headers)
                sys.exit(1 if p.flush(30) else 0)
            x, y = dump("x"), dump("y")
            problems = []
            if len(x) != len(records): problems.append("x has %d of %d records" % (len(x), len(records)))
            for key, value, headers in records:
                if (key, value) not in y: problems.append("y lacks %r/%r" % (key, value)); continue
                if y[(key, value)][1] != headers: problems.append("headers %r != %r" % (y[(key, value)][1], headers))
                if key is not None and y[(key, value)][0] != x[(key, value)][0]: problems.append("partition of %r" % key)
            print(json.dumps({"problems": problems, "y": len(y), "keyed": {k.hex(): v[0] for (k, _), v in x.items() if k is not None}}))
            """
        _ = try python(script, [brokers, "produce"])
        // Without the partition member, so evt's partitioner has to find each key's partition.
        let tail = try Evt.run(["tail", "topic:x", "-n", "1000"], environment: environment)
        #expect(tail.status == 0, "\(tail.stderr)")
        let withoutPartition = tail.stdoutText.replacingOccurrences(of: #","partition":[0-9]+"#, with: "", options: .regularExpression)
        let publish = try Evt.run(["publish", "topic:y", "--envelope"], stdin: Data(withoutPartition.utf8), environment: environment)
        #expect(publish.status == 0, "\(publish.stderr)")
        let report = try python(script, [brokers, "compare"])
        let object = try JSONSerialization.jsonObject(with: Data(report.utf8)) as? [String: Any]
        #expect(object?["problems"] as? [String] == [], "\(report)")
        #expect(object?["y"] as? Int == 64)
        // The peer's own partitioner (murmur2_random) agrees with Java's for these binary keys.
        let keyed = object?["keyed"] as? [String: Int] ?? [:]
        #expect(keyed.count == 60)
        for (key, partition) in keyed {
            let bytes = stride(from: 0, to: key.count, by: 2).map { UInt8(key.dropFirst($0).prefix(2), radix: 16)! }
            #expect(javaPartition(bytes, partitions: partitions) == partition, "key \(key)")
        }
        withExtendedLifetime(cluster) {}
    }
}
