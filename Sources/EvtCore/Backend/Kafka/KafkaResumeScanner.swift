/// --exactly-once from a stream into this topic: which entries an earlier, killed copy got
/// there already. Per partition the newest `evt.stream.id` header says it; an entry goes to
/// the partition the sink picks (its source partition where the topic has it), else to
/// murmur2 of its key, so an entry at or before that id in its partition is there.
final class KafkaResumeFilter: AlreadyCopiedFilter {
    private let copiedUpTo: [Int32: StreamID]
    private let partitionCount: Int32
    private let sink: KafkaSink

    /// Nil when the topic holds nothing an earlier copy wrote.
    static func make(brokers: String, topic: String, partition: Int32?, sink: KafkaSink,
                     kafka: KafkaSettings) throws -> KafkaResumeFilter? {
        let reader = try KafkaReader(brokers: brokers, topic: topic, partition: partition, kafka: kafka)
        guard let partitions = try? reader.partitions(), !partitions.isEmpty else { return nil }
        let copied = try KafkaResumeScanner.lastCopiedStreamIDs(reader, partitions: partitions)
        guard !copied.isEmpty else { return nil }
        return KafkaResumeFilter(copiedUpTo: copied, partitionCount: Int32((partitions.max() ?? 0) + 1), sink: sink)
    }

    private init(copiedUpTo: [Int32: StreamID], partitionCount: Int32, sink: KafkaSink) {
        self.copiedUpTo = copiedUpTo
        self.partitionCount = partitionCount
        self.sink = sink
    }

    func contains(_ id: StreamID, _ event: borrowing OutgoingEvent) -> Bool {
        let partition = sink.chosenPartition(event)
            ?? KafkaPartitioner.murmur2(key: event.key, partitionCount: partitionCount)
        guard let last = copiedUpTo[partition] else { return false }
        return id <= last
    }
}

/// Finds, in a topic a copy writes to, the last stream entry each partition got.
enum KafkaResumeScanner {
    /// Per partition, the newest `evt.stream.id` header — the last entry a copy got there.
    /// Reads back from each partition's end until it finds one (at most `scanLimit` records
    /// per partition).
    static func lastCopiedStreamIDs(_ reader: KafkaReader, partitions: [Int32],
                                    scanLimit: Int64 = 100_000) throws -> [Int32: StreamID] {
        var found: [Int32: StreamID] = [:]
        for partition in partitions {
            let (low, high) = try reader.client.watermarks(reader.topic, partition)
            var window: Int64 = 1000
            var end = high
            while end > low && found[partition] == nil {
                let start = max(low, end - window, high - scanLimit)
                guard start < end else { break }
                let record = Record()
                try reader.read(partitions: [partition], starts: [partition: start], ends: [partition: end], into: record,
                                idle: {}, { record in
                    guard let header = record.headers.entries.last(where: { entry in
                        record.headers.bytes[entry.name].elementsEqual(RecordMapping.streamIDHeader)
                    }), let range = header.value else { return }
                    if let id = record.headers.bytes.withUnsafeBytes({ StreamID(UnsafeRawBufferPointer(rebasing: $0[range])) }) {
                        found[partition] = id   // offsets ascend: the last one wins
                    }
                }, batchEnded: {})
                end = start
                window *= 4
            }
        }
        return found
    }
}
