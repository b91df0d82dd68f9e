#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

/// Where a position (`--from`, `--until`) is in a topic's partitions, for subscribe, tail,
/// replay, copy-between and group-create. The `client` of each must not have its main queue
/// forwarded yet (rd_kafka_poll_set_consumer): the waits serve it, to learn of a refused
/// authentication or TLS handshake.
enum KafkaOffsets {
    /// The first offset whose record's timestamp is at or after `milliseconds` (the end when
    /// there is none), by binary search over the partition: about log2(records) reads.
    /// Timestamps are assumed to grow with offsets, as they do with CreateTime from one
    /// producer or LogAppendTime.
    static func searchByTimestamp(_ milliseconds: Int64, topic: String, partition: Int32,
                                  client: KafkaClient) throws -> Int64 {
        let (low, high) = try client.watermarks(topic, partition)
        guard high > low else { return high }
        defer { client.unassign() }
        guard try timestamp(at: high - 1, topic: topic, partition: partition, client: client) >= milliseconds else {
            return high
        }
        var first = low
        var last = high - 1
        while first < last {
            let middle = first + (last - first) / 2
            if try timestamp(at: middle, topic: topic, partition: partition, client: client) >= milliseconds {
                last = middle
            } else {
                first = middle + 1
            }
        }
        return first
    }

    /// The timestamp of the record at `offset` (or the next one present), read by assigning
    /// the partition there.
    private static func timestamp(at offset: Int64, topic: String, partition: Int32, client: KafkaClient) throws -> Int64 {
        let list = KafkaPartitionList(capacity: 1)
        list.add(topic, partition, offset: offset)
        try client.assign(list, reading: "\(topic)/\(partition)")
        let deadline = monotonicMilliseconds() + 10_000
        while monotonicMilliseconds() < deadline && !Signals.stopRequested {
            guard let message = rd_kafka_consumer_poll(client.handle, 200) else {
                try client.brokerErrors.serve(client.handle)
                continue
            }
            defer { rd_kafka_message_destroy(message) }
            let record = message.pointee
            guard record.err == RD_KAFKA_RESP_ERR_NO_ERROR, record.partition == partition, record.offset >= offset else { continue }
            var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            return rd_kafka_message_timestamp(message, &type)
        }
        // Not retried: the watermarks were just read, so the likelier reason is that no record
        // at or after `offset` can come (the last offsets may be transaction markers).
        throw EvtError(.refused(code: ""), "could not read \(topic)/\(partition) at offset \(offset) to look up a time.")
    }

    /// The offset each partition starts at for `position`.
    static func resolve(_ position: Position, topic: String, partitions: [Int32], client: KafkaClient) throws -> [Int64] {
        switch position {
        case .time(let milliseconds):
            let list = KafkaPartitionList(capacity: partitions.count)
            for partition in partitions { list.add(topic, partition, offset: milliseconds) }
            let err = list.withListPointer { rd_kafka_offsets_for_times(client.handle, $0, 10_000) }
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaConfig.error(err, "cannot look up @\(milliseconds) in \(topic): \(KafkaConfig.errorText(err)).")
            }
            return try list.map { element in
                if element.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    throw KafkaConfig.error(element.err, "cannot look up @\(milliseconds) in \(topic)/\(element.partition): \(KafkaConfig.errorText(element.err)).")
                }
                if element.offset >= 0 { return element.offset }
                // -1 means "no record at or after that time" — or a broker that keeps no time
                // index (librdkafka's mock answers -1 to every lookup). When the newest record
                // contradicts it, find the offset by its timestamps instead.
                return try searchByTimestamp(milliseconds, topic: topic, partition: element.partition, client: client)
            }
        case .streamID:
            throw EvtError.usage("a stream id is not a Kafka position; give an offset, beginning, end, -N or @TIME.")
        default:
            return try partitions.map { partition in
                let (low, high) = try client.watermarks(topic, partition)
                switch position {
                case .beginning: return low
                case .end: return high
                case .offset(let offset): return min(max(offset, low), high)
                case .fromEnd(let count): return max(low, high - count)
                default: return high
                }
            }
        }
    }

    /// The offset a read up to `until` (inclusive; nil: the end as of now) stops before.
    static func end(_ until: Position?, topic: String, partition: Int32, client: KafkaClient) throws -> Int64 {
        let (low, high) = try client.watermarks(topic, partition)
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
