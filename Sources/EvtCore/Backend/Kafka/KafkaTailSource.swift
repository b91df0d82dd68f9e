#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

/// Reads a topic (or one partition of it) from given offsets, for `tail`, `replay`,
/// `copy-between` and their checkpoints (KafkaCopySource.swift). Partitions are assigned
/// directly (no group joined, nothing committed) and read in batches from one queue.
final class KafkaTailSource {
    let consumer: OpaquePointer
    let topic: String
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
        ] + KafkaFetchWaker.prefetchProperties
        let conf = try KafkaConfig.make(properties, options.kafka)
        consumer = try KafkaConfig.client(RD_KAFKA_CONSUMER, conf)
        self.topic = topic
        self.partition = partition
    }

    deinit {
        rd_kafka_consumer_close(consumer)
        rd_kafka_destroy(consumer)
    }

    /// Reads the partitions of `assignment` from their offsets, handing each record to `body`,
    /// until every partition reached its end offset (`endOffsets`; nil: forever) or a stop
    /// signal. `batchEnded` runs after each batch read from librdkafka's queue, `idle` after
    /// a wait that brought nothing (a follower notices a closed stdout there).
    func consume(_ assignment: KafkaPartitionList,
                 endOffsets: [Int32: Int64]?, idle: () throws -> Void = {},
                 _ body: (UnsafeMutablePointer<rd_kafka_message_t>) throws -> Void,
                 batchEnded: () throws -> Void) throws {
        let err = assignment.withListPointer { rd_kafka_assign(consumer, $0) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaConfig.error(err, "cannot read topic \(topic): \(KafkaConfig.errorText(err)).")
        }
        defer { _ = rd_kafka_assign(consumer, nil) }
        let queue = rd_kafka_queue_get_consumer(consumer)!
        defer { rd_kafka_queue_destroy(queue) }
        var batch = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: 4096)
        let waker = KafkaFetchWaker(client: consumer, queue: queue)
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
                try KafkaBrokerErrors.serve(consumer)
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
                let record = message.pointee
                if record.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    if record.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { continue }
                    if KafkaBrokerErrors.noteRefusal(message, client: consumer) {
                        failure = KafkaBrokerErrors.refused()
                        continue
                    }
                    failure = KafkaConfig.error(record.err, "reading \(topic)/\(record.partition): \(KafkaConfig.errorText(record.err)).")
                    continue
                }
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
        guard list.withListPointer({ rd_kafka_position(consumer, $0) }) == RD_KAFKA_RESP_ERR_NO_ERROR else { return unfinished }
        var remaining = unfinished
        for element in list {
            if element.offset >= 0, let end = endOffsets[element.partition], element.offset >= end {
                remaining.remove(element.partition)
            }
        }
        return remaining
    }
}

/// librdkafka 2.0.2's fetcher stops asking for a partition once the consumer queue holds
/// `queued.max.messages.kbytes` (or `queued.min.messages`), and only looks again when its
/// broker thread wakes up — on network traffic, on a request to send, or after a second of
/// nothing. Draining the queue does not wake it, so a reader faster than the cap but slower
/// than the fetcher (any deep topic) idled up to a second per refill. The waker watches the
/// queue as batches are taken: once it has been near the cap and is back under half of it,
/// it sends a ListOffsets request to each partition leader of the assignment without waiting
/// for the answers (late answers are dropped by librdkafka), which wakes those broker threads
/// and they fetch again at once. Memory stays bounded by the cap; the stall is gone.
final class KafkaFetchWaker {
    /// The prefetch settings of every evt consumer (tail, subscribe, replay, copy-between).
    static let prefetchProperties: [(String, String)] = [
        // A small queue, kept full by the waker: 4 MB (librdkafka's default is 64 MiB per
        // consumer). A bigger one was no faster on the mock cluster, only bigger (16 MB:
        // ~60 MiB RSS for a 16-partition read, 4 MB: ~30 MiB, same time).
        ("queued.max.messages.kbytes", "4096"),
        // The count limit (100 000 by default) must not stop the fetcher before the bytes do.
        ("queued.min.messages", "1000000"),
        ("fetch.wait.max.ms", "100"),
        // One fetch response is buffered whole: librdkafka's 50 MiB default would be most
        // of evt's memory. 8 MiB keeps the pipe full and RSS flat.
        ("fetch.max.bytes", "8388608"),
    ]

    private let client: OpaquePointer
    private let queue: OpaquePointer
    private let maxBytes: Double
    private let maxMessages: Double
    /// Key plus value bytes a message (what librdkafka counts against the cap), averaged.
    private var averageSize = 0.0
    private var nearCap = false

    init(client: OpaquePointer, queue: OpaquePointer) {
        self.client = client
        self.queue = queue
        // librdkafka counts the kbytes as 1000 bytes each.
        maxBytes = Double(Self.setting("queued.max.messages.kbytes", client) ?? 65536) * 1000
        maxMessages = Double(Self.setting("queued.min.messages", client) ?? 100_000)
    }

    private static func setting(_ name: String, _ client: OpaquePointer) -> Int? {
        var text = [CChar](repeating: 0, count: 64)
        var size = text.count
        guard rd_kafka_conf_get(rd_kafka_conf(client), name, &text, &size) == RD_KAFKA_CONF_OK else { return nil }
        return Int(KafkaConfig.text(text))
    }

    /// After a batch was taken from the queue (before its messages are destroyed).
    func taken(_ batch: [UnsafeMutablePointer<rd_kafka_message_t>?], count: Int) {
        var bytes = 0
        for index in 0..<count {
            let message = batch[index]!.pointee
            bytes += message.len + message.key_len
        }
        let size = Double(bytes) / Double(max(count, 1))
        averageSize = averageSize == 0 ? size : averageSize * 0.75 + size * 0.25
        // The fetcher stops right after adding a fetch response that takes the queue past the
        // cap, so the queue as it was before this batch tells whether it may have stopped.
        let left = Double(rd_kafka_queue_length(queue))
        let before = left + Double(count)
        if before * averageSize >= maxBytes * 0.75 || before >= maxMessages * 0.75 { nearCap = true }
        if nearCap && left * averageSize < maxBytes * 0.5 && left < maxMessages * 0.5 {
            nearCap = false
            wake()
        }
    }

    /// A ListOffsets request (latest) for each leader of the assigned partitions, not waited for.
    func wake() {
        guard let list = KafkaPartitionList(assignmentOf: client), !list.isEmpty else { return }
        for index in list.indices { list.setOffset(-1, at: index) }
        _ = list.withListPointer { rd_kafka_offsets_for_times(client, $0, 0) }
    }
}
