#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

/// A topic (or one partition) as the source of a copy: the same assign-and-batch reader as
/// `tail`, each message handed over as a `Record` borrowing the message's buffers.
final class KafkaRecordSource: RecordSource {
    let reader: KafkaTailSource
    /// The partitions read: the one named, or all of the topic as of the start.
    let partitions: [Int32]

    init(brokers: String, topic: String, partition: Int32?, kafka: KafkaSettings) throws {
        var options = SourceOptions()
        options.kafka = kafka
        reader = try KafkaTailSource(brokers: brokers, topic: topic, partition: partition, options: options)
        partitions = try reader.copyPartitions()
    }

    var identity: String { "topic:" + reader.topic + (reader.partition.map { "/\($0)" } ?? "") }

    func end() throws -> SourcePosition { SourcePosition(offsets: try reader.endOffsets(partitions)) }

    func read(after start: SourcePosition, until end: SourcePosition?, into record: Record,
              idle: () throws -> Void, _ body: (Record) throws -> Void, batchEnded: () throws -> Void) throws {
        try reader.copy(partitions: partitions, starts: start.offsets, ends: end?.offsets, into: record,
                        idle: idle, body, batchEnded: batchEnded)
    }

    func positions(from: Position, until: Position?) throws -> (start: SourcePosition, end: SourcePosition) {
        let starts = try KafkaOffsets.resolve(from, topic: reader.topic, partitions: partitions, client: reader.consumer)
        var start = SourcePosition()
        var end = SourcePosition()
        for (partition, offset) in zip(partitions, starts) {
            start.offsets[partition] = offset
            end.offsets[partition] = try KafkaOffsets.end(until, topic: reader.topic, partition: partition, client: reader.consumer)
        }
        return (start, end)
    }

    func lag(behind position: SourcePosition) -> String {
        let behind = reader.lag(next: position.offsets, partitions: partitions)
        return ", " + LagFormat.summary(LagReport(kind: "topic", name: reader.topic, lag: behind))
    }
}

extension KafkaOffsets {
    /// The offset a read up to `until` (inclusive; nil: the end as of now) stops before.
    static func end(_ until: Position?, topic: String, partition: Int32, client: OpaquePointer) throws -> Int64 {
        let (low, high) = try watermarks(topic, partition, client: client)
        switch until {
        case nil, .end?: return high
        case .offset(let offset)?: return min(offset + 1, high)
        case .fromEnd(let count)?: return max(low, high - count)
        case .beginning?: return low
        case .time(let milliseconds)?:
            // Up to and including that millisecond: stop before the first record after it.
            return try resolve(.time(milliseconds + 1), topic: topic, partitions: [partition], client: client)[0]
        case .streamID?:
            throw EvtError.usage("--until: a stream id is not a Kafka position; give an offset, end, -N or @TIME.")
        }
    }
}

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
        var options = SourceOptions()
        options.kafka = kafka
        let scanner = try KafkaTailSource(brokers: brokers, topic: topic, partition: partition, options: options)
        guard let partitions = try? scanner.copyPartitions(), !partitions.isEmpty else { return nil }
        let copied = try scanner.lastCopiedStreamIDs()
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
            ?? KafkaTailSource.murmur2Partition(key: event.key, partitionCount: partitionCount)
        guard let last = copiedUpTo[partition] else { return false }
        return id <= last
    }
}

extension KafkaTailSource {
    /// The partitions read: the one named, or all of the topic.
    func copyPartitions() throws -> [Int32] {
        try partition.map { [$0] } ?? KafkaOffsets.partitions(of: topic, client: consumer)
    }

    /// Each partition's end (high watermark) as of now.
    func endOffsets(_ partitions: [Int32]) throws -> [Int32: Int64] {
        var ends: [Int32: Int64] = [:]
        for partition in partitions { ends[partition] = try KafkaOffsets.watermarks(topic, partition, client: consumer).high }
        return ends
    }

    /// Reads each partition from its offset in `starts` (nil: the beginning) to its offset in
    /// `ends` (exclusive; nil: forever).
    func copy(partitions: [Int32], starts: [Int32: Int64], ends: [Int32: Int64]?, into record: Record,
              idle: () throws -> Void, _ body: (Record) throws -> Void, batchEnded: () throws -> Void) throws {
        let assignment = KafkaPartitionList(capacity: partitions.count)
        var wanted: [Int32: Int64]? = ends == nil ? nil : [:]
        for partition in partitions {
            var start = starts[partition] ?? Int64(RD_KAFKA_OFFSET_BEGINNING)
            if start >= 0 {
                // Records the retention deleted before they were copied are gone: say so and go
                // on from the oldest there is (librdkafka would jump to the end instead).
                let low = try KafkaOffsets.watermarks(topic, partition, client: consumer).low
                if start < low {
                    Diagnostics.print("warning: \(topic)/\(partition): offsets \(start)-\(low - 1) were deleted (retention) before they were copied; copying on from \(low).")
                    start = low
                }
            }
            if let end = ends?[partition] {
                // A concrete start, so an empty or finished partition is known to be done.
                if start < 0 { start = try KafkaOffsets.watermarks(topic, partition, client: consumer).low }
                if start >= end { continue }
                wanted![partition] = end
            }
            assignment.add(topic, partition, offset: start)
        }
        guard !assignment.isEmpty else { return }
        record.origin = .kafka
        record.topic = Array(topic.utf8)
        record.quotedSource = OutputWriter.quoted(topic)
        try consume(assignment, endOffsets: wanted, idle: idle, { message in
            let raw = message.pointee
            record.partition = raw.partition
            record.offset = raw.offset
            var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            let timestamp = rd_kafka_message_timestamp(message, &type)
            record.timestamp = type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp
            record.key = raw.key.map { UnsafeRawBufferPointer(start: $0, count: raw.key_len) }
            record.value = raw.payload.map { UnsafeRawBufferPointer(start: $0, count: raw.len) }
            record.headers.removeAll()
            var headers: OpaquePointer?
            if rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers {
                for index in 0..<rd_kafka_header_cnt(headers) {
                    var name: UnsafePointer<CChar>?
                    var value: UnsafeRawPointer?
                    var size = 0
                    _ = rd_kafka_header_get_all(headers, index, &name, &value, &size)
                    record.headers.append(name: UnsafeRawBufferPointer(start: name, count: name.map { strlen($0) } ?? 0),
                                          value: value.map { UnsafeRawBufferPointer(start: $0, count: size) })
                }
            }
            try body(record)
        }, batchEnded: batchEnded)
    }

    /// Records not yet read: the high watermark librdkafka last saw minus `next`, summed.
    func lag(next: [Int32: Int64], partitions: [Int32]) -> Int64 {
        var total: Int64 = 0
        for partition in partitions {
            var low: Int64 = 0
            var high: Int64 = 0
            guard rd_kafka_get_watermark_offsets(consumer, topic, partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR,
                  high >= 0 else { continue }
            total += max(0, high - max(next[partition] ?? low, low))
        }
        return total
    }

    /// `--exactly-once` into this topic: per partition, the newest `evt.stream.id` header —
    /// the last entry a copy got there. Reads back from each partition's end until it finds
    /// one (at most `scanLimit` records per partition).
    func lastCopiedStreamIDs(scanLimit: Int64 = 100_000) throws -> [Int32: StreamID] {
        var found: [Int32: StreamID] = [:]
        for partition in try copyPartitions() {
            let (low, high) = try KafkaOffsets.watermarks(topic, partition, client: consumer)
            var window: Int64 = 1000
            var end = high
            while end > low && found[partition] == nil {
                let start = max(low, end - window, high - scanLimit)
                guard start < end else { break }
                let record = Record()
                try copy(partitions: [partition], starts: [partition: start], ends: [partition: end], into: record,
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

    /// The partition librdkafka's `murmur2` partitioner (Java-compatible; a null key always
    /// maps to one partition) picks for `key`: copy-between sets that partitioner, so a resume
    /// can tell where each entry went.
    static func murmur2Partition(key: UnsafeRawBufferPointer?, partitionCount: Int32) -> Int32 {
        rd_kafka_msg_partitioner_murmur2(nil, key?.baseAddress, key?.count ?? 0, partitionCount, nil, nil)
    }
}
