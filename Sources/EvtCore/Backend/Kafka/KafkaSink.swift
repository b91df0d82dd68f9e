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
    var tally: DeliveryTally { deliveries.tally }
    /// The delivery-report callback's context (the producer's role state).
    private let deliveries = KafkaDeliveries()
    private let client: KafkaClient
    /// The client's handle, for the calls made per event.
    private let producer: OpaquePointer
    private let brokerErrors: KafkaBrokerErrors
    private let topicHandle: OpaquePointer
    private let topic: String
    private let partition: Int32
    private let timeoutMs: Int
    /// The producer queue's bound in bytes (queue.buffering.max.kbytes): librdkafka answers
    /// QUEUE_FULL for ever to a record larger than that, even with the queue empty.
    private let queueLimitBytes: Int
    /// `-H NAME=VALUE`, as bytes once rather than per event.
    private let fixedHeaders: [(name: [UInt8], value: [UInt8])]
    private var sinceLastPoll = 0
    /// The input line of the newest event sent.
    private var lastLine = 0
    /// Set once some Kafka client of this process was refused (authentication, TLS): why
    /// every further send stops at once.
    private var refusedCause: FailureCause?
    /// The target topic's partition count, asked once, on the first event that carries a
    /// `sourcePartition`; nil when it could not be known (no such topic yet, no answer).
    private lazy var targetPartitionCount: Int32? = readPartitionCount()

    /// Whether the topic's partition count is known (asked now if it was not yet): without
    /// it, source partitions fall back to the partitioner. Throws a refused authentication or
    /// TLS handshake, which no retry mends.
    var knowsPartitionCount: Bool {
        get throws {
            if targetPartitionCount != nil { return true }
            if let refusal = brokerErrors.refused() { throw refusal }
            return false
        }
    }

    init(brokers: String, topic: String, partition: Int32?, options: SinkOptions) throws {
        let user = Dictionary(options.kafka.properties, uniquingKeysWith: { $1 })
        // A record fits the queue only when the queue is larger: one of up to
        // message.max.bytes (1 000 000 unless -X raised it) must fit an empty queue.
        let messageMaxBytes = user["message.max.bytes"].flatMap { Int($0) } ?? 1_000_000
        var properties: [(String, String)] = [
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("message.timeout.ms", String(options.timeoutMs)),
            // Bounded memory however long the input (librdkafka's default is 1 GiB): 16 MiB,
            // or message.max.bytes when -X raised it past that.
            ("queue.buffering.max.kbytes", String(max(16384, (messageMaxBytes + 1023) / 1024))),
            ("queue.buffering.max.messages", "100000"),
            ("linger.ms", "5"),
            // Java's partitioner, so a key lands where a Java client (or kcat/confluent-kafka
            // with the same setting) would put it; librdkafka's default is CRC32-based.
            ("partitioner", "murmur2_random"),
        ]
        if let acks = user["acks"], acks != "all", acks != "-1" {
            Diagnostics.print("warning: -X acks=\(acks) weakens delivery: an acknowledged event may still be lost if a broker fails. Honoured as asked.")
            if user["enable.idempotence"] == nil { properties.append(("enable.idempotence", "false")) }
        }
        if user["enable.idempotence"] == "false" {
            Diagnostics.print("warning: -X enable.idempotence=false weakens delivery: retries may duplicate or reorder events. Honoured as asked.")
        }
        client = try KafkaClient(.producer, brokers: brokers, properties, settings: options.kafka, role: deliveries) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf, kafkaDeliveryReport)
        }
        producer = client.handle
        brokerErrors = client.brokerErrors
        guard let topicHandle = rd_kafka_topic_new(producer, topic, nil) else {
            throw KafkaConfig.error(rd_kafka_last_error(), "cannot use topic \(topic): \(KafkaConfig.errorText(rd_kafka_last_error())).")
        }
        self.topicHandle = topicHandle
        self.topic = topic
        self.partition = partition ?? RD_KAFKA_PARTITION_UA
        self.timeoutMs = options.timeoutMs
        // What librdkafka took, -X queue.buffering.max.kbytes included.
        let queueKilobytes = client.setting("queue.buffering.max.kbytes").flatMap { Int($0) }
        self.queueLimitBytes = (queueKilobytes ?? 16384) * 1024
        self.fixedHeaders = options.headers.map { (Array($0.0.utf8), Array($0.1.utf8)) }
    }

    deinit {
        rd_kafka_topic_destroy(topicHandle)   // before the client destroys the producer
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
        if let reason = tally.targetUnavailable { throw SinkStopped(reason: reason, cause: refusedCause ?? .connectionLost) }
        let headers = makeHeaders(event.headers)
        let partition = chosenPartition(event) ?? RD_KAFKA_PARTITION_UA
        let opaque = UnsafeMutableRawPointer(bitPattern: event.line)
        // librdkafka tells null from empty by the pointer alone: an empty value or key that is
        // there gets a non-NULL pointer (a buffer of no bytes may have none).
        let value = event.valueIsNull ? nil : (event.value.baseAddress ?? KafkaSink.emptyBytes)
        let key = event.key.map { $0.baseAddress ?? KafkaSink.emptyBytes }
        var queueFullSince: Int?
        while true {
            let err = evt_produce(producer, topicHandle, partition,
                                  value, event.valueIsNull ? 0 : event.value.count,
                                  key, event.key?.count ?? 0,
                                  headers, event.timestamp ?? 0, opaque)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR { break }
            if err == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                if event.value.count > queueLimitBytes {
                    // No delivery makes room for it: this line fails now, and the next goes on.
                    if let headers { rd_kafka_headers_destroy(headers) }
                    let kilobytes = queueLimitBytes / 1024
                    tally.failed(line: event.line, reason: "\(event.value.count) bytes is more than the producer queue holds (queue.buffering.max.kbytes=\(kilobytes)); raise it with -X queue.buffering.max.kbytes=\((event.value.count + 1023) / 1024) or more",
                                 cause: KafkaConfig.cause(err))
                    return
                }
                // The local queue is bounded: wait for deliveries to make room, up to --timeout
                // (by then librdkafka has timed out what filled it, unless -X
                // message.timeout.ms was raised or set to 0, "forever").
                let now = monotonicMilliseconds()
                if now - (queueFullSince ?? now) >= timeoutMs {
                    if let headers { rd_kafka_headers_destroy(headers) }
                    let reason = "Kafka took no event for --timeout (\(KafkaSink.duration(timeoutMs))) while the producer queue was full"
                    tally.targetUnavailable = reason
                    deliveries.purgeReason = ("not sent: \(reason)", .connectionLost)
                    throw SinkStopped(reason: reason, cause: .connectionLost)
                }
                queueFullSince = queueFullSince ?? now
                rd_kafka_poll(producer, 100)
                if let fatal = fatalError() { throw fatal }
                // A broker that does not answer keeps the queue full until message.timeout.ms:
                // neither a refusal nor a stop signal may wait for that.
                _ = refused()
                if let reason = tally.targetUnavailable {
                    if let headers { rd_kafka_headers_destroy(headers) }
                    throw SinkStopped(reason: reason, cause: refusedCause ?? .connectionLost)
                }
                if Signals.stopRequested {
                    if let headers { rd_kafka_headers_destroy(headers) }
                    throw SinkStopped(reason: "stopped by a signal while the Kafka queue was full", cause: .stopped)
                }
                continue
            }
            if let headers { rd_kafka_headers_destroy(headers) }
            tally.failed(line: event.line, reason: reason(for: err, size: event.value.count), cause: KafkaConfig.cause(err))
            if let fatal = fatalError() { throw fatal }
            return
        }
        lastLine = event.line
        sinceLastPoll += 1
        if sinceLastPoll >= 1000 {
            sinceLastPoll = 0
            rd_kafka_poll(producer, 0)
            _ = refused()   // the next send stops
        }
    }

    /// True once some Kafka client of this process was refused (authentication, TLS): the
    /// first time, says so with librdkafka's reason and what to check (unless another client
    /// said it), and makes every further send and the lines still queued "not delivered".
    private func refused() -> Bool {
        if refusedCause != nil { return true }
        guard let (error, shown) = brokerErrors.takeRefusal(), let refusal = brokerErrors.refusal else {
            return false
        }
        if !shown { Diagnostics.print(error.message) }
        refusedCause = error.cause
        let short = KafkaBrokerErrors.shortText(refusal.kind)
        tally.targetUnavailable = short
        deliveries.purgeReason = ("not sent: \(short)", error.cause)
        return true
    }

    /// `30s`, `1500ms`: a --timeout as the user would write it.
    private static func duration(_ milliseconds: Int) -> String {
        milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }

    /// A valid address for a payload of no bytes (never read: its length is 0).
    private static var emptyBytes: UnsafeRawPointer { UnsafeRawPointer(("" as StaticString).utf8Start) }

    /// The topic's partition count from one metadata request, nil when unknown (or refused:
    /// then the next send stops).
    private func readPartitionCount() -> Int32? {
        // Bounded well below --timeout: this runs once, on the data path.
        let partitions = try? client.partitions(of: topic, budgetMs: min(timeoutMs, 5000))
        _ = refused()
        guard let partitions, !partitions.isEmpty else { return nil }
        return Int32(partitions.count)
    }

    /// librdkafka sends on its own (linger.ms); just serve delivery reports, and stop reading
    /// input that can only go undelivered once a client was refused.
    func inputStalled() throws {
        rd_kafka_poll(producer, 0)
        if refused(), let reason = tally.targetUnavailable {
            let read = lastLine == 0 ? "stopped before any input was sent" : "stopped reading input after line \(lastLine)"
            throw EvtError(refusedCause ?? .connectionLost, "\(clause(reason)); \(read).")
        }
    }

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

    private func fatalError() -> EvtError? {
        var text = [CChar](repeating: 0, count: 512)
        let err = rd_kafka_fatal_error(producer, &text, text.count)
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaConfig.error(err, "the Kafka producer hit a fatal error: \(KafkaConfig.text(text))")
    }

    func finish() {
        // Every queued message gets a delivery report by message.timeout.ms at the latest…
        var deadline = monotonicMilliseconds() + timeoutMs + 3000
        while rd_kafka_outq_len(producer) > 0 && monotonicMilliseconds() < deadline {
            // …but after a stop signal the answers get Signals.graceMs from the signal, not the
            // whole timeout (a broker that is down would keep evt waiting until
            // message.timeout.ms), and after a refusal none: no answer is coming.
            if let grace = Signals.graceLeftMs { deadline = min(deadline, monotonicMilliseconds() + grace) }
            // Nor after a refusal, or a queue that stayed full for --timeout.
            if refused() || deliveries.purgeReason != nil { break }
            rd_kafka_poll(producer, 100)
        }
        // …unless -X set it higher (or to 0, "forever"): purge what is left, so each of those
        // gets a report too (queued: not delivered; in flight: unconfirmed).
        if rd_kafka_outq_len(producer) > 0 {
            if deliveries.purgeReason == nil && Signals.stopRequested {
                deliveries.purgeReason = ("not sent: evt was stopped by a signal first", .stopped)
            } else if deliveries.purgeReason == nil {
                // librdkafka's own text would be "Purged in queue".
                deliveries.purgeReason = ("not acknowledged within --timeout", .connectionLost)
                deliveries.timedOut = true
            }
            _ = rd_kafka_purge(producer, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
            let purgeDeadline = monotonicMilliseconds() + 2000
            while rd_kafka_outq_len(producer) > 0 && monotonicMilliseconds() < purgeDeadline {
                rd_kafka_poll(producer, 100)
            }
        }
        rd_kafka_poll(producer, 0)
        if deliveries.timedOut && !deliveries.timeoutExplained {
            // librdkafka says only "Message timed out": what it last saw of the brokers.
            deliveries.timeoutExplained = true
            Diagnostics.print("Kafka did not acknowledge events within --timeout (\(KafkaSink.duration(timeoutMs))).\(brokerErrors.unreachableHint)")
        }
    }
}

/// What the delivery-report callback needs: the tally it files each line in, and why the
/// lines that evt purged were not delivered (nil: librdkafka's own text).
final class KafkaDeliveries {
    let tally = DeliveryTally()
    var purgeReason: (text: String, cause: FailureCause)?
    /// Some report said "Message timed out"; the explanation is printed once.
    var timedOut = false
    var timeoutExplained = false
}

private func kafkaDeliveryReport(_ rk: OpaquePointer?, _ message: UnsafePointer<rd_kafka_message_t>?,
                                 _ opaque: UnsafeMutableRawPointer?) {
    guard let message, let opaque else { return }
    // The producer's role state is the sink's KafkaDeliveries, alive as long as the producer.
    do {
        let deliveries = KafkaClientContext.role(opaque, as: KafkaDeliveries.self)
        let tally = deliveries.tally
        let line = Int(bitPattern: message.pointee._private)
        let err = message.pointee.err
        if err == RD_KAFKA_RESP_ERR_NO_ERROR {
            tally.delivered()
            return
        }
        if err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT {
            tally.targetUnavailable = tally.targetUnavailable ?? "Kafka did not acknowledge events within --timeout"
            deliveries.timedOut = true
        }
        let purged = err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT
        let purgeReason = purged ? deliveries.purgeReason : nil
        if rd_kafka_message_status(message) == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED {
            tally.unconfirmed(line: line, byStop: purgeReason?.cause == .stopped)
        } else if let purgeReason {
            tally.failed(line: line, reason: purgeReason.text, cause: purgeReason.cause)
        } else if err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE {
            tally.failed(line: line, reason: "\(KafkaConfig.errorText(err)) (raise the limit with -X message.max.bytes=N and the topic's max.message.bytes)",
                         cause: KafkaConfig.cause(err))
        } else if err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT {
            tally.failed(line: line, reason: "not acknowledged within --timeout (librdkafka: \(KafkaConfig.errorText(err)))",
                         cause: KafkaConfig.cause(err))
        } else {
            tally.failed(line: line, reason: KafkaConfig.errorText(err), cause: KafkaConfig.cause(err))
        }
    }
}
