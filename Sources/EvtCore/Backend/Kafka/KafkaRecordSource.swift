/// A topic (or one partition) as the source of `tail`, `replay` and `copy-between`: the
/// partitions as of the start, read from given offsets by a KafkaReader.
final class KafkaRecordSource: RecordSource {
    let reader: KafkaReader
    /// The partitions read: the one named, or all of the topic as of the start; with a key,
    /// the one the key hashes to (unless the endpoint names one).
    let partitions: [Int32]
    /// `--key KEY`: only records with exactly this key are handed over.
    let key: [UInt8]?

    init(brokers: String, topic: String, partition: Int32?, kafka: KafkaSettings, key: [UInt8]? = nil) throws {
        reader = try KafkaReader(brokers: brokers, topic: topic, partition: partition, kafka: kafka)
        self.key = key
        if let key, partition == nil {
            // The partition count from metadata, the partitioner as the producers' -X says.
            let all = try reader.partitions()
            guard !all.isEmpty else {
                throw EvtError(.refused(code: "UNKNOWN_TOPIC_OR_PART"), "topic \(topic) has no partitions that evt can see; does it exist?")
            }
            let partitioner = kafka.properties.last { $0.0 == "partitioner" }?.1
            partitions = [try KafkaPartitioner.partition(of: key, partitioner: partitioner, partitionCount: Int32(all.count))]
        } else {
            partitions = try reader.partitions()
        }
    }

    var identity: String { "topic:" + reader.topic + (reader.partition.map { "/\($0)" } ?? "") }

    /// Each partition's end (high watermark) as of now.
    func end() throws -> SourcePosition {
        var ends: [Int32: Int64] = [:]
        for partition in partitions { ends[partition] = try reader.client.watermarks(reader.topic, partition).high }
        return SourcePosition(offsets: ends)
    }

    func read(after start: SourcePosition, until end: SourcePosition?, into record: Record,
              idle: () throws -> Void, _ body: (Record) throws -> Void, batchEnded: () throws -> Void) throws {
        guard let key else {
            return try reader.read(partitions: partitions, starts: start.offsets, ends: end?.offsets, into: record,
                                   idle: idle, body, batchEnded: batchEnded)
        }
        // Compared as bytes before any schema decoding: the key the producer hashed.
        try reader.read(partitions: partitions, starts: start.offsets, ends: end?.offsets, into: record, idle: idle, { record in
            if let recordKey = record.key, recordKey.elementsEqual(key) { try body(record) }
        }, batchEnded: batchEnded)
    }

    func positions(from: Position, until: Position?) throws -> (start: SourcePosition, end: SourcePosition) {
        let starts = try KafkaOffsets.resolve(from, topic: reader.topic, partitions: partitions, client: reader.client)
        var start = SourcePosition()
        var end = SourcePosition()
        for (partition, offset) in zip(partitions, starts) {
            start.offsets[partition] = offset
            end.offsets[partition] = try KafkaOffsets.end(until, topic: reader.topic, partition: partition, client: reader.client)
        }
        return (start, end)
    }

    /// Records not yet read: the high watermark librdkafka last saw minus the next offset,
    /// summed (no request).
    func lag(behind position: SourcePosition) -> String {
        var behind: Int64 = 0
        for partition in partitions {
            guard let (low, high) = reader.client.cachedWatermarks(reader.topic, partition) else { continue }
            behind += max(0, high - max(position.offsets[partition] ?? low, low))
        }
        return ", " + LagReport(kind: "topic", name: reader.topic, lag: behind).summary
    }
}
