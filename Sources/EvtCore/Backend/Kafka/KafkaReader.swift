#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

/// Reads a topic (or one partition of it) from given offsets, for `tail`, `replay` and
/// `copy-between` (KafkaRecordSource) and the exactly-once resume scan (KafkaResumeScanner).
/// Partitions are assigned directly (no group joined, nothing committed) and read in batches
/// from one queue, each message handed over as a `Record` borrowing the message's buffers.
final class KafkaReader {
    let client: KafkaClient
    let topic: String
    let partition: Int32?

    init(brokers: String, topic: String, partition: Int32?, kafka: KafkaSettings) throws {
        // A group id gives librdkafka its consumer queue; assign() never joins or commits.
        client = try KafkaClient(.consumer, brokers: brokers, [("group.id", "evt-tail")] + KafkaFetchWaker.prefetchProperties,
                                 settings: kafka)
        self.topic = topic
        self.partition = partition
    }

    /// The partitions read: the one named, or all of the topic.
    func partitions() throws -> [Int32] {
        try partition.map { [$0] } ?? client.partitions(of: topic)
    }

    /// Reads each partition from its offset in `starts` (nil: the beginning) to its offset in
    /// `ends` (exclusive; nil: forever), or until a stop signal. `batchEnded` runs after each
    /// batch read from librdkafka's queue, `idle` after a wait that brought nothing (a
    /// follower notices a closed stdout there).
    func read(partitions: [Int32], starts: [Int32: Int64], ends: [Int32: Int64]?, into record: Record,
              idle: () throws -> Void, _ body: (Record) throws -> Void, batchEnded: () throws -> Void) throws {
        let assignment = KafkaPartitionList(capacity: partitions.count)
        var wanted: [Int32: Int64]? = ends == nil ? nil : [:]
        for partition in partitions {
            var start = starts[partition] ?? Int64(RD_KAFKA_OFFSET_BEGINNING)
            if start >= 0 {
                // Records the retention deleted before they were copied are gone: say so and go
                // on from the oldest there is (librdkafka would jump to the end instead).
                let low = try client.watermarks(topic, partition).low
                if start < low {
                    Diagnostics.print("warning: \(topic)/\(partition): offsets \(start)-\(low - 1) were deleted (retention) before they were copied; copying on from \(low).")
                    start = low
                }
            }
            if let end = ends?[partition] {
                // A concrete start, so an empty or finished partition is known to be done.
                if start < 0 { start = try client.watermarks(topic, partition).low }
                if start >= end { continue }
                wanted![partition] = end
            }
            assignment.add(topic, partition, offset: start)
        }
        guard !assignment.isEmpty else { return }
        record.origin = .kafka
        record.topic = Array(topic.utf8)
        record.quotedSource = Record.quoted(topic)
        try consume(assignment, endOffsets: wanted, idle: idle, { message in
            record.point(at: message)
            try body(record)
        }, batchEnded: batchEnded)
    }

    /// Reads the partitions of `assignment` from their offsets, handing each message to `body`,
    /// until every partition reached its end offset (`endOffsets`; nil: forever) or a stop
    /// signal.
    private func consume(_ assignment: KafkaPartitionList,
                         endOffsets: [Int32: Int64]?, idle: () throws -> Void,
                         _ body: (UnsafeMutablePointer<rd_kafka_message_t>) throws -> Void,
                         batchEnded: () throws -> Void) throws {
        try client.assign(assignment, reading: "topic \(topic)")
        defer { client.unassign() }
        let queue = client.queue
        let brokerErrors = client.brokerErrors
        var batch = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: 4096)
        let waker = KafkaFetchWaker(client)
        let follow = endOffsets == nil
        var unfinished = Set(endOffsets.map { Array($0.keys) } ?? [])
        while follow || !unfinished.isEmpty {
            if Signals.stopRequested { break }
            // What the queue holds now; only when it is empty, a wait (up to 100 ms) for the
            // next message. A batch call that waits fills the whole batch or times out: with
            // fewer messages coming (the last ones, a slow fetch) it idled the full 100 ms.
            let received = batch.withUnsafeMutableBufferPointer { buffer in
                let ready = rd_kafka_consume_batch_queue(queue, 0, buffer.baseAddress, buffer.count)
                guard ready == 0 else { return ready }
                let first = rd_kafka_consume_batch_queue(queue, 100, buffer.baseAddress, 1)
                guard first == 1 else { return first }
                return 1 + max(0, rd_kafka_consume_batch_queue(queue, 0, buffer.baseAddress! + 1, buffer.count - 1))
            }
            if received <= 0 {
                // Nothing came: a refused authentication or TLS handshake (the main queue
                // carries librdkafka's errors; the records come on the consumer queue).
                try brokerErrors.serve(client.handle)
                if let endOffsets { unfinished = try stillUnfinished(unfinished, endOffsets) }
                try idle()
                continue
            }
            // Every message of the batch is destroyed, also after a failure part-way.
            var failure: Error?
            waker.taken(batch, count: received)
            for index in 0..<received {
                let message = batch[index]!
                defer { rd_kafka_message_destroy(message) }
                if failure != nil { continue }
                if let problem = KafkaMessageError(message, client: client, topic: topic) {
                    switch problem {
                    case .partitionEnd: continue
                    // Any other error ends the read: given offsets are read whole or not at all.
                    case .refused(let error), .unreadable(let error), .transient(let error): failure = error
                    }
                    continue
                }
                let record = message.pointee
                if let end = endOffsets?[record.partition] {
                    if record.offset >= end - 1 { unfinished.remove(record.partition) }
                    if record.offset >= end { continue }   // past the end: fetched, not wanted
                }
                do { try body(message) } catch { failure = error }
            }
            if let failure { throw failure }
            try batchEnded()
        }
    }

    /// Partitions whose position has not reached their end offset (a transaction marker or a
    /// compacted tail can keep the last offset from ever being delivered).
    private func stillUnfinished(_ unfinished: Set<Int32>, _ endOffsets: [Int32: Int64]) throws -> Set<Int32> {
        let list = KafkaPartitionList(capacity: unfinished.count)
        for partition in unfinished { list.add(topic, partition) }
        guard list.withListPointer({ rd_kafka_position(client.handle, $0) }) == RD_KAFKA_RESP_ERR_NO_ERROR else { return unfinished }
        var remaining = unfinished
        for element in list {
            if element.offset >= 0, let end = endOffsets[element.partition], element.offset >= end {
                remaining.remove(element.partition)
            }
        }
        return remaining
    }
}
