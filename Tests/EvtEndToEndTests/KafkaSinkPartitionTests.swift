import Foundation
import Testing
import EvtTestSupport
@testable import EvtCore

// KafkaSink keeps a copied event's source partition (OutgoingEvent.sourcePartition) when the
// target topic has it, as MirrorMaker does. No command sets sourcePartition yet, so this drives
// the sink itself, against the mock cluster, and reads the result with kcat.

/// value → partition, as kcat reads the topic.
private func placement(_ brokers: String, _ topic: String) throws -> [String: Int] {
    let result = try runProcess(["kcat", "-b", brokers, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p %s\n"], timeout: 60)
    #expect(result.status == 0, "kcat -C: \(result.stderr)")
    var found: [String: Int] = [:]
    for line in result.stdoutLines {
        let parts = line.split(separator: " ", maxSplits: 1)
        found[String(parts[1])] = Int(parts[0])
    }
    return found
}

/// Sends value "i" with key "k<i>" and sourcePartition i for i in `sources`, plus the
/// extra events; returns the sink's tally once everything was answered.
private func send(_ brokers: String, topic: String, pinned: Int32? = nil, sources: Range<Int32>,
                  extra: [(value: String, partition: Int32?, source: Int32?)] = []) throws -> DeliveryTally {
    let sink = try KafkaSink(brokers: brokers, topic: topic, partition: pinned, options: SinkOptions())
    var line = 0
    func one(_ value: String, key: String?, partition: Int32?, source: Int32?) throws {
        line += 1
        let valueBytes = Array(value.utf8)
        let keyBytes = key.map { Array($0.utf8) } ?? []
        try valueBytes.withUnsafeBytes { valueBuffer in
            try keyBytes.withUnsafeBytes { keyBuffer in
                var event = OutgoingEvent(line: line, value: valueBuffer, valueKind: nil)
                event.key = key == nil ? nil : keyBuffer
                event.partition = partition
                event.sourcePartition = source
                try sink.send(event)
            }
        }
    }
    for source in sources { try one(String(source), key: "k\(source)", partition: nil, source: source) }
    for event in extra { try one(event.value, key: "x", partition: event.partition, source: event.source) }
    sink.finish()
    return sink.tally
}

private func murmur2(_ key: String, _ partitions: Int32) -> Int {
    Array(key.utf8).withUnsafeBytes { Int(KafkaPartitioner.murmur2(key: $0, partitionCount: partitions)) }
}

@Suite("KafkaSink: a copied event goes to its source partition when the target has it")
struct KafkaSinkPartitionTests {
    @Test("source partitions the target has are kept; higher ones, and events without one, go to the partitioner; --partition and a pinned endpoint win")
    func sourcePartitions() throws {
        let cluster = try mockCluster(topics: [("wide", 8), ("narrow", 3), ("pinned", 8)])
        let brokers = cluster.bootstrapServers

        let wide = try send(brokers, topic: "wide", sources: 0..<8,
                            extra: [("explicit", 2, 6), ("none", nil, nil), ("negative", nil, -1)])
        #expect(wide.delivered == 11 && wide.failedLines.isEmpty && wide.unconfirmedLines.isEmpty)
        let onWide = try placement(brokers, "wide")
        for source in 0..<8 { #expect(onWide[String(source)] == source) }
        #expect(onWide["explicit"] == 2)
        #expect(onWide["none"] == murmur2("x", 8))
        #expect(onWide["negative"] == murmur2("x", 8))

        // 3 partitions: sources 0-2 kept, 3-7 placed by key (murmur2), none refused.
        let narrow = try send(brokers, topic: "narrow", sources: 0..<8)
        #expect(narrow.delivered == 8 && narrow.failedLines.isEmpty)
        let onNarrow = try placement(brokers, "narrow")
        for source in 0..<8 {
            #expect(onNarrow[String(source)] == (source < 3 ? source : murmur2("k\(source)", 3)), "source \(source)")
        }
        #expect(Set((3..<8).map { murmur2("k\($0)", 3) }).count > 1, "the keys spread: the check above can fail")

        let pinned = try send(brokers, topic: "pinned", pinned: 5, sources: 0..<8)
        #expect(pinned.delivered == 8)
        #expect(Set(try placement(brokers, "pinned").values) == [5])

        // A topic that does not exist yet: the mock creates it, with 4 partitions, on the
        // metadata request (a broker that does not answers "unknown topic", and the partitioner
        // places everything). Either way nothing fails on a partition the topic lacks.
        let fresh = try send(brokers, topic: "fresh", sources: 0..<8)
        #expect(fresh.delivered == 8 && fresh.failedLines.isEmpty, "\(fresh.failedLines)")
        let onFresh = try placement(brokers, "fresh")
        #expect(onFresh.count == 8 && onFresh.values.allSatisfy { $0 < 4 })
        for source in 0..<4 { #expect(onFresh[String(source)] == source) }
        withExtendedLifetime(cluster) {}
    }
}
