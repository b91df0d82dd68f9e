#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

/// `tail` on Kafka: for every partition (or the one named), the last N records before the
/// end as of the start (kcat's `-o -N`), then with `-f` everything new. Partitions are
/// assigned directly (no group, nothing committed) and read in batches from one queue.
final class KafkaTailSource: EventSource {
    let consumer: OpaquePointer
    let topic: String
    private let quotedTopic: [UInt8]
    let partition: Int32?

    init(brokers: String, topic: String, partition: Int32?, options: SourceOptions) throws {
        let properties: [(String, String)] = [
            ("bootstrap.servers", brokers),
            ("client.id", "evt"),
            // A group id gives librdkafka its consumer queue; assign() never joins or commits.
            ("group.id", "evt-tail"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "false"),
            // Prefetch is bounded (librdkafka's default is 64 MiB per consumer)…
            ("queued.max.messages.kbytes", "16384"),
            // …but deep enough that the fetcher never waits for us to drain a small queue.
            ("queued.min.messages", "1000000"),
            ("fetch.wait.max.ms", "100"),
            // One fetch response is buffered whole: librdkafka's 50 MiB default would be most
            // of evt's memory. 8 MiB keeps the pipe full and RSS flat.
            ("fetch.max.bytes", "8388608"),
        ] + options.kafkaProperties
        let conf = try KafkaConfig.make(properties)
        consumer = try KafkaConfig.client(RD_KAFKA_CONSUMER, conf)
        self.topic = topic
        self.quotedTopic = OutputWriter.quoted(topic)
        self.partition = partition
    }

    deinit {
        rd_kafka_consumer_close(consumer)
        rd_kafka_destroy(consumer)
    }

    func tail(count: Int, follow: Bool, output: OutputWriter) throws {
        try read(from: .fromEnd(Int64(count)), until: nil, follow: follow, limit: Int.max, output: output)
    }

    /// Every partition (or the one named) from `from` to `until` (inclusive; nil: the end as
    /// it was at the start), each in offset order; with `follow`, on forever. At most `limit`.
    func read(from: Position, until: Position?, follow: Bool, limit: Int, output: OutputWriter) throws {
        // Where each partition starts, and (without -f) the end offset it stops before.
        var endOffsets: [Int32: Int64] = [:]
        let assignment = rd_kafka_topic_partition_list_new(4)!
        defer { rd_kafka_topic_partition_list_destroy(assignment) }
        let partitions = try partition.map { [$0] } ?? KafkaOffsets.partitions(of: topic, client: consumer)
        let starts = try KafkaOffsets.resolve(from, topic: topic, partitions: partitions, client: consumer)
        for (partition, start) in zip(partitions, starts) {
            let (low, high) = try KafkaOffsets.watermarks(topic, partition, client: consumer)
            let end: Int64
            switch until {
            case nil, .end?: end = high
            case .offset(let offset)?: end = min(offset + 1, high)
            case .fromEnd(let count)?: end = max(low, high - count)
            case .beginning?: end = low
            case .time(let milliseconds)?:
                // Up to and including that millisecond: stop before the first record after it.
                end = try KafkaOffsets.resolve(.time(milliseconds + 1), topic: topic, partitions: [partition], client: consumer)[0]
            case .streamID?:
                throw EvtError.usage("--until: a stream id is not a Kafka position; give an offset, end, -N or @TIME.")
            }
            if !follow && start >= end { continue }
            endOffsets[partition] = end
            rd_kafka_topic_partition_list_add(assignment, topic, partition).pointee.offset = start
        }
        guard assignment.pointee.cnt > 0 else { return }
        var left = limit
        try consume(assignment, endOffsets: follow ? nil : endOffsets, stop: { left == 0 }) { message in
            output.appendKafkaRecord(message, quotedTopic: quotedTopic)
            left -= 1
            try output.flushIfFull()
        } batchEnded: {
            try output.flush()
        }
        try output.flush()
    }

    /// Reads the partitions of `assignment` from their offsets, handing each record to `body`,
    /// until every partition reached its end offset (`endOffsets`; nil: forever) or `stop`
    /// says so. `batchEnded` runs after each batch read from librdkafka's queue.
    func consume(_ assignment: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>,
                 endOffsets: [Int32: Int64]?, stop: () -> Bool = { false }, watchStdout: Bool = true,
                 idle: () throws -> Void = {},
                 _ body: (UnsafeMutablePointer<rd_kafka_message_t>) throws -> Void,
                 batchEnded: () throws -> Void) throws {
        let err = rd_kafka_assign(consumer, assignment)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw EvtError.failure("cannot read topic \(topic): \(KafkaConfig.errorText(err)).")
        }
        defer { _ = rd_kafka_assign(consumer, nil) }
        let queue = rd_kafka_queue_get_consumer(consumer)!
        defer { rd_kafka_queue_destroy(queue) }
        var batch = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: 4096)
        let follow = endOffsets == nil
        var unfinished = Set(endOffsets.map { Array($0.keys) } ?? [])
        while (follow || !unfinished.isEmpty) && !stop() {
            if Signals.stopRequested { break }
            let received = batch.withUnsafeMutableBufferPointer {
                rd_kafka_consume_batch_queue(queue, 100, $0.baseAddress, $0.count)
            }
            if received <= 0 {
                if follow && watchStdout && OutputWriter.stdoutIsClosed() { throw StdoutClosed() }
                if let endOffsets { unfinished = try stillUnfinished(unfinished, endOffsets) }
                try idle()
                continue
            }
            // Every message of the batch is destroyed, also after a failure part-way.
            var failure: Error?
            for index in 0..<received {
                let message = batch[index]!
                defer { rd_kafka_message_destroy(message) }
                if failure != nil { continue }
                let record = message.pointee
                if record.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    if record.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { continue }
                    failure = EvtError.failure("reading \(topic)/\(record.partition): \(KafkaConfig.errorText(record.err)).")
                    continue
                }
                if let end = endOffsets?[record.partition] {
                    if record.offset >= end - 1 { unfinished.remove(record.partition) }
                    if record.offset >= end { continue }   // past the end: fetched, not wanted
                }
                if stop() { continue }
                do { try body(message) } catch { failure = error }
            }
            if let failure { throw failure }
            try batchEnded()
        }
    }

    /// Partitions whose position has not reached their end offset (a transaction marker or a
    /// compacted tail can keep the last offset from ever being delivered).
    private func stillUnfinished(_ unfinished: Set<Int32>, _ endOffsets: [Int32: Int64]) throws -> Set<Int32> {
        let list = rd_kafka_topic_partition_list_new(Int32(unfinished.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in unfinished { rd_kafka_topic_partition_list_add(list, topic, partition) }
        guard rd_kafka_position(consumer, list) == RD_KAFKA_RESP_ERR_NO_ERROR else { return unfinished }
        var remaining = unfinished
        for index in 0..<Int(list.pointee.cnt) {
            let element = list.pointee.elems[index]
            if element.offset >= 0, let end = endOffsets[element.partition], element.offset >= end {
                remaining.remove(element.partition)
            }
        }
        return remaining
    }
}
