#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

/// Publishes to a Kafka topic with the idempotent producer and acks=all. Each message carries
/// its input line number in its opaque pointer; the delivery-report callback files the line
/// under delivered, failed or unconfirmed. Shape after kcat: produce, poll now and then,
/// poll a little when the queue is full, flush at the end.
///
/// Where a record goes: the endpoint's partition (`topic:T/3`), else the event's own
/// (`--partition`, an envelope's with its option), else the partition it was read from when the
/// target topic has that one (a copy or replay: MirrorMaker's rule), else the partitioner —
/// Java's murmur2 (`murmur2_random`: keyless records spread at random) unless
/// `-X partitioner=…` names another, so evt and Java producers put a key on the same partition.
final class KafkaSink: EventSink {
    let tally = DeliveryTally()
    private let producer: OpaquePointer
    private let topicHandle: OpaquePointer
    private let topic: String
    private let partition: Int32
    private let timeoutMs: Int
    /// `-H NAME=VALUE`, as bytes once rather than per event.
    private let fixedHeaders: [(name: [UInt8], value: [UInt8])]
    private var sinceLastPoll = 0
    /// The target topic's partition count, asked once, on the first event that carries a
    /// `sourcePartition`; nil when it could not be known (no such topic yet, no answer).
    private lazy var targetPartitionCount: Int32? = readPartitionCount()

    /// Whether the topic's partition count is known (asked now if it was not yet): without
    /// it, source partitions fall back to the partitioner.
    var knowsPartitionCount: Bool { targetPartitionCount != nil }

    init(brokers: String, topic: String, partition: Int32?, options: SinkOptions) throws {
        var properties: [(String, String)] = [
            ("bootstrap.servers", brokers),
            ("client.id", "evt"),
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("message.timeout.ms", String(options.timeoutMs)),
            // Bounded memory however long the input (librdkafka's default is 1 GiB).
            ("queue.buffering.max.kbytes", "16384"),
            ("queue.buffering.max.messages", "100000"),
            ("linger.ms", "5"),
            // Java's partitioner, so a key lands where a Java client (or kcat/confluent-kafka
            // with the same setting) would put it; librdkafka's default is CRC32-based.
            ("partitioner", "murmur2_random"),
        ]
        let user = Dictionary(options.kafka.properties, uniquingKeysWith: { $1 })
        if let acks = user["acks"], acks != "all", acks != "-1" {
            Diagnostics.print("warning: -X acks=\(acks) weakens delivery: an acknowledged event may still be lost if a broker fails. Honoured as asked.")
            if user["enable.idempotence"] == nil { properties.append(("enable.idempotence", "false")) }
        }
        if user["enable.idempotence"] == "false" {
            Diagnostics.print("warning: -X enable.idempotence=false weakens delivery: retries may duplicate or reorder events. Honoured as asked.")
        }
        let conf = try KafkaConfig.make(properties, options.kafka)
        rd_kafka_conf_set_dr_msg_cb(conf, kafkaDeliveryReport)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(tally).toOpaque())
        producer = try KafkaConfig.client(RD_KAFKA_PRODUCER, conf)
        guard let topicHandle = rd_kafka_topic_new(producer, topic, nil) else {
            rd_kafka_destroy(producer)
            throw KafkaConfig.error(rd_kafka_last_error(), "cannot use topic \(topic): \(KafkaConfig.errorText(rd_kafka_last_error())).")
        }
        self.topicHandle = topicHandle
        self.topic = topic
        self.partition = partition ?? RD_KAFKA_PARTITION_UA
        self.timeoutMs = options.timeoutMs
        self.fixedHeaders = options.headers.map { (Array($0.0.utf8), Array($0.1.utf8)) }
    }

    deinit {
        rd_kafka_topic_destroy(topicHandle)
        rd_kafka_destroy(producer)
    }

    /// The partition `event` goes to when evt picks it: the endpoint's, the event's own, or
    /// its source partition where the topic has that many; nil leaves it to the partitioner.
    func chosenPartition(_ event: borrowing OutgoingEvent) -> Int32? {
        if partition != RD_KAFKA_PARTITION_UA { return partition }
        if let pinned = event.partition { return pinned }
        if let source = event.sourcePartition, source >= 0, let count = targetPartitionCount, source < count { return source }
        return nil
    }

    func send(_ event: borrowing OutgoingEvent) throws {
        if let reason = tally.targetUnavailable { throw SinkStopped(reason: reason) }
        let headers = makeHeaders(event.headers)
        let partition = chosenPartition(event) ?? RD_KAFKA_PARTITION_UA
        let opaque = UnsafeMutableRawPointer(bitPattern: event.line)
        // librdkafka tells null from empty by the pointer alone: an empty value or key that is
        // there gets a non-NULL pointer (a buffer of no bytes may have none).
        let value = event.valueIsNull ? nil : (event.value.baseAddress ?? KafkaSink.emptyBytes)
        let key = event.key.map { $0.baseAddress ?? KafkaSink.emptyBytes }
        while true {
            let err = evt_produce(producer, topicHandle, partition,
                                  value, event.valueIsNull ? 0 : event.value.count,
                                  key, event.key?.count ?? 0,
                                  headers, event.timestamp ?? 0, opaque)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR { break }
            if err == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                // The local queue is bounded: wait for deliveries to make room.
                rd_kafka_poll(producer, 100)
                if let fatal = fatalError() { throw EvtError.failure(fatal) }
                // A broker that does not answer keeps the queue full until message.timeout.ms:
                // a stop signal must not wait for that.
                if let reason = tally.targetUnavailable ?? (Signals.stopRequested ? "stopped by a signal while the Kafka queue was full" : nil) {
                    if let headers { rd_kafka_headers_destroy(headers) }
                    throw SinkStopped(reason: reason)
                }
                continue
            }
            if let headers { rd_kafka_headers_destroy(headers) }
            tally.failed(line: event.line, reason: reason(for: err, size: event.value.count), cause: KafkaConfig.cause(err))
            if let fatal = fatalError() { throw EvtError.failure(fatal) }
            return
        }
        sinceLastPoll += 1
        if sinceLastPoll >= 1000 {
            sinceLastPoll = 0
            rd_kafka_poll(producer, 0)
        }
    }

    /// A valid address for a payload of no bytes (never read: its length is 0).
    private static var emptyBytes: UnsafeRawPointer { UnsafeRawPointer(("" as StaticString).utf8Start) }

    /// The topic's partition count from one metadata request, nil when unknown.
    private func readPartitionCount() -> Int32? {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        // Bounded well below --timeout: this runs once, on the data path.
        let err = rd_kafka_metadata(producer, 0, topicHandle, &metadata, Int32(min(timeoutMs, 5000)))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { return nil }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt == 1, metadata.pointee.topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR,
              metadata.pointee.topics[0].partition_cnt > 0 else { return nil }
        return metadata.pointee.topics[0].partition_cnt
    }

    /// librdkafka sends on its own (linger.ms); just serve delivery reports.
    func inputStalled() throws { rd_kafka_poll(producer, 0) }

    private func makeHeaders(_ eventHeaders: EventHeaders?) -> OpaquePointer? {
        let count = fixedHeaders.count + (eventHeaders?.entries.count ?? 0)
        guard count > 0 else { return nil }
        let headers = rd_kafka_headers_new(count)!
        for (name, value) in fixedHeaders {
            name.withUnsafeBytes { name in
                value.withUnsafeBytes { value in
                    _ = rd_kafka_header_add(headers, name.baseAddress?.assumingMemoryBound(to: CChar.self), name.count,
                                            value.baseAddress, value.count)
                }
            }
        }
        if let eventHeaders {
            eventHeaders.bytes.withUnsafeBytes { bytes in
                for entry in eventHeaders.entries {
                    let name = (bytes.baseAddress! + entry.name.lowerBound).assumingMemoryBound(to: CChar.self)
                    let value = entry.value.map { bytes.baseAddress! + $0.lowerBound }
                    _ = rd_kafka_header_add(headers, name, entry.name.count, value, entry.value?.count ?? 0)
                }
            }
        }
        return headers
    }

    private func reason(for err: rd_kafka_resp_err_t, size: Int) -> String {
        if err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE {
            return "\(KafkaConfig.errorText(err)) (\(size) bytes is over message.max.bytes; raise it with -X message.max.bytes=N, up to what the topic's max.message.bytes allows)"
        }
        return KafkaConfig.errorText(err)
    }

    private func fatalError() -> String? {
        var text = [CChar](repeating: 0, count: 512)
        let err = rd_kafka_fatal_error(producer, &text, text.count)
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return "the Kafka producer hit a fatal error: \(KafkaConfig.text(text))"
    }

    static let graceAfterSignalMs = 2000

    func finish() {
        // Every queued message gets a delivery report by message.timeout.ms at the latest…
        var deadline = monotonicMilliseconds() + timeoutMs + 3000
        var graceGiven = false
        while rd_kafka_outq_len(producer) > 0 && monotonicMilliseconds() < deadline {
            // …but after a stop signal the answers get two more seconds, not the whole timeout
            // (a broker that is down would keep evt waiting until message.timeout.ms).
            if Signals.stopRequested && !graceGiven {
                graceGiven = true
                deadline = min(deadline, monotonicMilliseconds() + KafkaSink.graceAfterSignalMs)
            }
            rd_kafka_poll(producer, 100)
        }
        // …unless -X set it higher (or to 0, "forever"): purge what is left, so each of those
        // gets a report too (queued: not delivered; in flight: unconfirmed).
        if rd_kafka_outq_len(producer) > 0 {
            _ = rd_kafka_purge(producer, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
            let purgeDeadline = monotonicMilliseconds() + 2000
            while rd_kafka_outq_len(producer) > 0 && monotonicMilliseconds() < purgeDeadline {
                rd_kafka_poll(producer, 100)
            }
        }
        rd_kafka_poll(producer, 0)
    }
}

private func kafkaDeliveryReport(_ rk: OpaquePointer?, _ message: UnsafePointer<rd_kafka_message_t>?,
                                 _ opaque: UnsafeMutableRawPointer?) {
    guard let message, let opaque else { return }
    // The producer's opaque is the sink's tally, alive as long as the producer: no retain.
    Unmanaged<DeliveryTally>.fromOpaque(opaque)._withUnsafeGuaranteedRef { tally in
        let line = Int(bitPattern: message.pointee._private)
        let err = message.pointee.err
        if err == RD_KAFKA_RESP_ERR_NO_ERROR {
            tally.delivered()
            return
        }
        if err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT {
            tally.targetUnavailable = "Kafka did not acknowledge events within --timeout"
        }
        if rd_kafka_message_status(message) == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED {
            tally.unconfirmed(line: line)
        } else if err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE {
            tally.failed(line: line, reason: "\(KafkaConfig.errorText(err)) (raise the limit with -X message.max.bytes=N and the topic's max.message.bytes)",
                         cause: KafkaConfig.cause(err))
        } else {
            tally.failed(line: line, reason: KafkaConfig.errorText(err), cause: KafkaConfig.cause(err))
        }
    }
}
