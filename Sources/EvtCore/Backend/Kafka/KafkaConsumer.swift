#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

/// `subscribe` on Kafka.
/// - Without a group: every partition of the topics (or the one named) assigned directly at
///   `--from` (default end); nothing is committed.
/// - With a group: a balanced consumer group (rd_kafka_subscribe). Offsets are stored only
///   for records handed over (enable.auto.offset.store=false) and committed from the stored
///   ones — every `commitIntervalMs` (librdkafka's auto-commit sends nothing when no stored
///   offset moved), on a rebalance before partitions are given up, and on close, which
///   then leaves the group so the others take over at once. Both steps of a close are bounded
///   (see close()).
final class KafkaConsumer: EventConsumer {
    private let consumer: OpaquePointer
    private let queue: OpaquePointer
    private let grouped: Bool
    private var quotedTopics: [String: [UInt8]] = [:]
    private var messages = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: 4096)
    /// The last receive's records: their topic, partition and offset.
    private var received: [(topic: String, partition: Int32, offset: Int64)] = []
    /// Per partition, the next offset to commit is blocked after a record that was not
    /// acknowledged (an --exec failure): committing a later offset would skip it.
    private var blocked: Set<TopicPartition> = []
    /// Per partition, the offset stored for commit: the one after the last record handed over.
    private var stored: [TopicPartition: Int64] = [:]
    /// How long a close waits for the final commit and the group leave, together, when no stop
    /// signal came (after one, for what is left of Signals.graceMs).
    static let closeTimeoutMs = 10_000
    /// Set when close() gave up waiting for librdkafka: the handle is left to the process's
    /// exit, since destroying it would wait out session.timeout.ms all the same.
    private var abandoned = false

    /// What the rebalance and offset-commit callbacks share with the consumer (their opaque;
    /// alive as long as the consumer).
    private let group: GroupState
    /// Keeps librdkafka's fetcher going while the prefetch queue drains (see KafkaFetchWaker).
    private let waker: KafkaFetchWaker

    init(brokers: String, topics: [String], partition: Int32?, options: ConsumerOptions) throws {
        grouped = options.group != nil
        if grouped && partition != nil {
            throw EvtError.usage("a group shares whole topics among its members; drop the /PARTITION or the --group.")
        }
        var properties: [(String, String)] = [
            ("bootstrap.servers", brokers),
            // The member's name as group tools show it (--consumer, default evt-HOSTNAME).
            ("client.id", options.consumer ?? "evt"),
            ("group.id", options.group ?? "evt-subscribe"),
            ("enable.partition.eof", "false"),
            ("enable.auto.offset.store", "false"),
        ] + KafkaFetchWaker.prefetchProperties
        if grouped {
            let reset: String
            switch options.from ?? .end {
            case .beginning: reset = "earliest"
            case .end: reset = "latest"
            default:
                throw EvtError.usage("subscribe --group starts a new group at beginning or end; for another position create it first with evt group-create SOURCE GROUP --from POSITION.")
            }
            properties += [("enable.auto.commit", "true"), ("auto.commit.interval.ms", String(options.commitIntervalMs)),
                           ("auto.offset.reset", reset)]
        } else {
            properties += [("enable.auto.commit", "false")]
        }
        group = GroupState(atBeginning: options.from == .beginning)
        let conf = try KafkaConfig.make(properties, options.kafka)
        if grouped {
            rd_kafka_conf_set_rebalance_cb(conf, kafkaRebalance)
            rd_kafka_conf_set_offset_commit_cb(conf, kafkaCommitAnswered)
            rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(group).toOpaque())
        }
        consumer = try KafkaConfig.client(RD_KAFKA_CONSUMER, conf)
        queue = rd_kafka_queue_get_consumer(consumer)!
        waker = KafkaFetchWaker(client: consumer, queue: queue)
        if grouped {
            rd_kafka_poll_set_consumer(consumer)
            let list = KafkaPartitionList(capacity: topics.count)
            for topic in topics { list.add(topic, RD_KAFKA_PARTITION_UA) }
            let err = list.withListPointer { rd_kafka_subscribe(consumer, $0) }
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaConfig.error(err, "cannot subscribe to \(topics.joined(separator: ", ")): \(KafkaConfig.errorText(err)).")
            }
        } else {
            // The lookups before the assignment serve the main queue themselves (errors,
            // a refused authentication among them); only then does the consumer queue take it.
            try assign(topics: topics, partition: partition, from: options.from ?? .end)
            rd_kafka_poll_set_consumer(consumer)
        }
    }

    deinit {
        guard !abandoned else { return }
        rd_kafka_queue_destroy(queue)
        rd_kafka_destroy(consumer)
    }

    private func assign(topics: [String], partition: Int32?, from: Position) throws {
        let assignment = KafkaPartitionList(capacity: 8)
        for topic in topics {
            if topic.hasPrefix("^") {
                throw EvtError.usage("a topic pattern (\(topic)) is followed through a group: add --group NAME.")
            }
            let partitions = try partition.map { [$0] } ?? KafkaOffsets.partitions(of: topic, client: consumer)
            let offsets = try KafkaOffsets.resolve(from, topic: topic, partitions: partitions, client: consumer)
            for (partition, offset) in zip(partitions, offsets) {
                assignment.add(topic, partition, offset: offset)
            }
        }
        let err = assignment.withListPointer { rd_kafka_assign(consumer, $0) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaConfig.error(err, "cannot read \(topics.joined(separator: ", ")): \(KafkaConfig.errorText(err)).")
        }
    }

    private var assigned = false

    private func hasAssignment() -> Bool {
        guard let assignment = KafkaPartitionList(assignmentOf: consumer) else { return false }
        return !assignment.isEmpty
    }

    func receive(limit: Int, waitMs: Int, into batch: RecordBatch) throws -> Int {
        received.removeAll(keepingCapacity: true)
        var deadline = waitMs < 0 ? Int.max : monotonicMilliseconds() + waitMs
        while true {
            if Signals.stopRequested { return 0 }
            let slice = min(waitMs < 0 ? 100 : max(0, deadline - monotonicMilliseconds()), 100)
            // What the queue holds now; only when it is empty, a wait for the next message (a
            // batch call that waits fills the whole batch or times out: it idled the whole
            // slice when fewer messages came, as at the end of a topic).
            let wanted = min(messages.count, limit)
            let count = messages.withUnsafeMutableBufferPointer { buffer in
                guard wanted > 0 else { return 0 }
                let ready = rd_kafka_consume_batch_queue(queue, 0, buffer.baseAddress, wanted)
                guard ready == 0 else { return ready }
                let first = rd_kafka_consume_batch_queue(queue, Int32(slice), buffer.baseAddress, 1)
                guard first == 1, wanted > 1 else { return first }
                return 1 + max(0, rd_kafka_consume_batch_queue(queue, 0, buffer.baseAddress! + 1, wanted - 1))
            }
            if count > 0 {
                waker.taken(messages, count: count)
                return try take(count, into: batch)
            }
            // The consumer queue serves the error callback: a refused authentication or TLS
            // handshake ends the wait (a group join would retry it forever).
            try KafkaBrokerErrors.check()
            if waitMs < 0 && OutputWriter.stdoutIsClosed() { throw StdoutClosed() }
            if grouped && !assigned {
                // Joining takes seconds (about 3 on the mock cluster): --idle-exit counts
                // from the moment partitions are ours.
                assigned = hasAssignment()
                if !assigned && waitMs >= 0 { deadline = monotonicMilliseconds() + waitMs }
            }
            if monotonicMilliseconds() >= deadline { return 0 }
        }
    }

    private func take(_ count: Int, into batch: RecordBatch) throws -> Int {
        var failure: EvtError?
        var written = 0
        for index in 0..<count {
            let message = messages[index]!
            defer { rd_kafka_message_destroy(message) }
            if failure != nil { continue }
            let record = message.pointee
            if record.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                if record.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { continue }
                if KafkaBrokerErrors.noteRefusal(message, client: consumer) {
                    failure = KafkaBrokerErrors.refused()
                    continue
                }
                let fatal = record.err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || record.err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
                    || record.err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION
                let topic = record.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
                if fatal {
                    failure = KafkaConfig.error(record.err, "reading \(topic): \(KafkaConfig.errorText(record.err)).")
                } else {
                    Diagnostics.print("kafka: \(topic)/\(record.partition): \(KafkaConfig.errorText(record.err)); retrying.")
                }
                continue
            }
            let topic = String(cString: rd_kafka_topic_name(record.rkt))
            let quoted = quotedTopics[topic] ?? {
                let quoted = OutputWriter.quoted(topic)
                quotedTopics[topic] = quoted
                return quoted
            }()
            batch.writer.appendKafkaRecord(message, quotedTopic: quoted)
            batch.recordEnded()
            received.append((topic, record.partition, record.offset))
            written += 1
        }
        if let failure { throw failure }
        return written
    }

    /// Stores the offset after each acknowledged record; the auto-commit commits stored
    /// offsets only. After a record that was not acknowledged, its partition stores nothing
    /// more this run (it will be read again after a restart).
    func acknowledge(_ indexes: [Int]) throws {
        guard grouped, !received.isEmpty else { return }
        var acknowledged = Set(indexes)
        var highest: [TopicPartition: Int64] = [:]
        for (index, record) in received.enumerated() {
            let key = TopicPartition(topic: record.topic, partition: record.partition)
            if blocked.contains(key) { continue }
            if !acknowledged.contains(index) {
                blocked.insert(key)
                continue
            }
            highest[key] = record.offset
        }
        acknowledged.removeAll()
        guard !highest.isEmpty else { return }
        let list = KafkaPartitionList(capacity: highest.count)
        for (key, offset) in highest { list.add(key.topic, key.partition, offset: offset + 1) }
        let err = list.withListPointer { rd_kafka_offsets_store(consumer, $0) }
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            // A partition revoked meanwhile: its new owner reads these records again.
            Diagnostics.print("kafka: could not store offsets: \(KafkaConfig.errorText(err))")
        }
        for element in list where element.err == RD_KAFKA_RESP_ERR_NO_ERROR {
            stored[TopicPartition(topic: element.topic, partition: element.partition)] = element.offset
        }
    }

    /// Commits what was handed over, then leaves the group (the others get its partitions at
    /// once), both within closeTimeoutMs, cut to what is left of the grace after a stop signal.
    /// librdkafka's own rd_kafka_consumer_close waits for a coordinator that is gone until
    /// session.timeout.ms (45 s by default) has passed, and so does rd_kafka_destroy. When the
    /// commit is not answered in time, the offsets not committed are named and the group is not
    /// left (its coordinator is unreachable anyway); the handle is then left to the process's
    /// exit. After a stop signal that is a clean stop (130/143), else a failure.
    func close() throws {
        let deadline = monotonicMilliseconds() + Self.closeTimeoutMs
        func msLeft() -> Int {
            let left = deadline - monotonicMilliseconds()
            return max(0, min(left, Signals.graceLeftMs ?? left))
        }
        let closing = rd_kafka_queue_new(consumer)!
        let uncommitted = grouped ? commitHandedOver(through: closing, msLeft: msLeft) : nil
        // An unanswered commit used up the time: the coordinator is gone, no leave is answered.
        abandoned = msLeft() == 0
        group.closing = true
        if !abandoned, let error = rd_kafka_consumer_close_queue(consumer, closing) {
            rd_kafka_error_destroy(error)   // closed already, or a fatal error: destroy copes
        } else if !abandoned {
            while rd_kafka_consumer_closed(consumer) == 0 && msLeft() > 0 {
                serve(closing, ms: min(100, msLeft()))
            }
            abandoned = rd_kafka_consumer_closed(consumer) == 0
        }
        if !abandoned {
            rd_kafka_queue_destroy(closing)
        } else if uncommitted == nil && grouped {
            Diagnostics.print("kafka: stopped without leaving the group (its coordinator did not answer in time); the other members get its partitions after session.timeout.ms.")
        }
        guard let uncommitted else { return }
        let message = "kafka: the offsets of records handed over were not committed (\(uncommitted.reason)): \(uncommitted.ranges.joined(separator: ", ")); the group delivers them again."
        if Signals.stopRequested {
            Diagnostics.print(message)
            return
        }
        throw EvtError(.connectionLost, message)
    }

    /// Serves `closing` for up to `ms`: callbacks (rebalance, commit answers) run there; records
    /// and consumer errors that reach it once the group queue is forwarded there are dropped.
    /// (rd_kafka_queue_poll_callback would abort on those.)
    private func serve(_ closing: OpaquePointer, ms: Int) {
        if let message = rd_kafka_consume_queue(closing, Int32(ms)) { rd_kafka_message_destroy(message) }
    }

    /// Commits the offsets stored since the last commit that was answered, and waits for the
    /// answer as long as `msLeft` says. Nil when all is committed; else the reason and, per
    /// partition, the offsets handed over and not committed ("t/0 offsets 17-42").
    private func commitHandedOver(through closing: OpaquePointer, msLeft: () -> Int) -> (reason: String, ranges: [String])? {
        // Answers to earlier commits that are still queued (and records not handed over).
        messages.withUnsafeMutableBufferPointer { buffer in
            while true {
                let count = rd_kafka_consume_batch_queue(queue, 0, buffer.baseAddress, buffer.count)
                guard count > 0 else { break }
                for index in 0..<count { rd_kafka_message_destroy(buffer[index]!) }
            }
        }
        let due = stored.filter { $0.value > group.committed[$0.key] ?? Int64.min }
        guard !due.isEmpty else { return nil }
        let list = KafkaPartitionList(capacity: due.count)
        for (key, offset) in due { list.add(key.topic, key.partition, offset: offset) }
        let answersBefore = group.commitAnswers
        let err = list.withListPointer {
            rd_kafka_commit_queue(consumer, $0, closing, kafkaCommitAnswered, Unmanaged.passUnretained(group).toOpaque())
        }
        var reason = KafkaConfig.errorText(err)
        if err == RD_KAFKA_RESP_ERR_NO_ERROR {
            let started = monotonicMilliseconds()
            while group.commitAnswers == answersBefore && msLeft() > 0 {
                serve(closing, ms: min(100, msLeft()))
            }
            reason = group.commitAnswers == answersBefore
                ? "the group coordinator did not answer within \(max(1, (monotonicMilliseconds() - started + 500) / 1000)) s"
                : KafkaConfig.errorText(group.lastCommitError)
        }
        let left = due.filter { $0.value > group.committed[$0.key] ?? Int64.min }
            .sorted { ($0.key.topic, $0.key.partition) < ($1.key.topic, $1.key.partition) }
        guard !left.isEmpty else { return nil }
        return (reason, left.map { key, next in
            let first = group.committed[key] ?? group.assignedAt[key]
            return first.map { "\(key.topic)/\(key.partition) offsets \($0)-\(next - 1)" } ?? "\(key.topic)/\(key.partition) up to offset \(next - 1)"
        })
    }
}

struct TopicPartition: Hashable {
    let topic: String
    let partition: Int32
}

/// What a group's callbacks (rebalance, offset commit answers) share with its consumer. They
/// run on the thread that polls the consumer, as the consumer does.
final class GroupState {
    /// Where a group starts on partitions it has no committed offset for.
    let atBeginning: Bool
    /// Per partition, the group's committed offset as far as this member knows: read when the
    /// partition was assigned, then from every answered commit.
    var committed: [TopicPartition: Int64] = [:]
    /// Per partition, where reading started when it was assigned (committed or not).
    var assignedAt: [TopicPartition: Int64] = [:]
    /// How many commits were answered, and the last failure among them.
    var commitAnswers = 0
    var lastCommitError = RD_KAFKA_RESP_ERR_NO_ERROR
    /// Set once close() committed what it could: the revocation that leaving brings commits
    /// nothing more (a commit there would wait for a coordinator that may be gone, unbounded).
    var closing = false

    init(atBeginning: Bool) { self.atBeginning = atBeginning }
}

/// The answer to an offset commit, automatic or evt's own: each partition committed without
/// an error is noted as committed.
private func kafkaCommitAnswered(_ rk: OpaquePointer?, _ err: rd_kafka_resp_err_t,
                                 _ offsets: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
                                 _ opaque: UnsafeMutableRawPointer?) {
    guard let opaque else { return }
    let group = Unmanaged<GroupState>.fromOpaque(opaque).takeUnretainedValue()
    group.commitAnswers += 1
    if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET { group.lastCommitError = err }
    guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let offsets else { return }
    for element in KafkaPartitionList.lentElements(offsets) where element.err == RD_KAFKA_RESP_ERR_NO_ERROR && element.offset >= 0 {
        let key = TopicPartition(topic: String(cString: element.topic), partition: element.partition)
        group.committed[key] = max(group.committed[key] ?? element.offset, element.offset)
    }
}

/// Rebalances of a `subscribe --group`. On assignment, a partition the group has no committed
/// offset for gets its --from position committed at once: the group then has a position
/// everywhere, so a later run continues there instead of applying its own --from (Kafka's
/// auto.offset.reset works per partition and would skip records). On revocation, the
/// offsets of records handed over are committed before the partitions go to another member.
private func kafkaRebalance(_ rk: OpaquePointer?, _ err: rd_kafka_resp_err_t,
                            _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
                            _ opaque: UnsafeMutableRawPointer?) {
    guard let rk, let partitions else { return }
    let group = opaque.map { Unmanaged<GroupState>.fromOpaque($0).takeUnretainedValue() }
    guard err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS else {
        if group?.closing != true { _ = rd_kafka_commit(rk, nil, 0) }
        _ = rd_kafka_assign(rk, nil)
        return
    }
    let atBeginning = group?.atBeginning ?? false
    let committed = rd_kafka_committed(rk, partitions, 10_000)
    // `partitions` is lent by librdkafka for this call: set in place, never destroyed here.
    let elements = KafkaPartitionList.lentElements(partitions)
    let starts = KafkaPartitionList(capacity: elements.count)
    if committed == RD_KAFKA_RESP_ERR_NO_ERROR {
        for index in elements.indices {
            let element = elements[index]
            let key = TopicPartition(topic: String(cString: element.topic), partition: element.partition)
            if element.offset >= 0 {
                group?.committed[key] = element.offset
                group?.assignedAt[key] = element.offset
                continue
            }
            var low: Int64 = 0
            var high: Int64 = 0
            guard rd_kafka_query_watermark_offsets(rk, element.topic, element.partition, &low, &high, 10_000)
                    == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }   // auto.offset.reset decides
            let start = atBeginning ? low : high
            elements[index].offset = start
            starts.add(key.topic, key.partition, offset: start)
            group?.assignedAt[key] = start
        }
    }
    _ = rd_kafka_assign(rk, partitions)
    if !starts.isEmpty { _ = starts.withListPointer { rd_kafka_commit(rk, $0, 0) } }
}

/// Partitions and positions, shared by subscribe, group-create (and replays). The `client`
/// of each must not have its main queue forwarded yet (rd_kafka_poll_set_consumer): the
/// waits serve it, to learn of a refused authentication or TLS handshake.
enum KafkaOffsets {
    static func partitions(of topic: String, client: OpaquePointer) throws -> [Int32] {
        guard let topicHandle = rd_kafka_topic_new(client, topic, nil) else {
            throw KafkaConfig.error(rd_kafka_last_error(), "cannot use topic \(topic): \(KafkaConfig.errorText(rd_kafka_last_error())).")
        }
        defer { rd_kafka_topic_destroy(topicHandle) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = try KafkaBrokerErrors.request("the partitions of topic \(topic) were known", client: client) {
            rd_kafka_metadata(client, 0, topicHandle, &metadata, $0)
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaConfig.error(err, "cannot read the partitions of topic \(topic): \(KafkaConfig.errorText(err)) (brokers from EVT_KAFKA_BROKERS or kafka://HOST:PORT/…).\(KafkaBrokerErrors.unreachableHint)")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt == 1 else { return [] }
        let topicMetadata = metadata.pointee.topics[0]
        if topicMetadata.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaConfig.error(topicMetadata.err, "topic \(topic): \(KafkaConfig.errorText(topicMetadata.err)).")
        }
        return (0..<Int(topicMetadata.partition_cnt)).map { topicMetadata.partitions[$0].id }.sorted()
    }

    /// The first offset whose record's timestamp is at or after `milliseconds` (the end when
    /// there is none), by binary search over the partition: about log2(records) reads.
    /// Timestamps are assumed to grow with offsets, as they do with CreateTime from one
    /// producer or LogAppendTime.
    static func searchByTimestamp(_ milliseconds: Int64, topic: String, partition: Int32,
                                  client: OpaquePointer) throws -> Int64 {
        let (low, high) = try watermarks(topic, partition, client: client)
        guard high > low else { return high }
        defer { _ = rd_kafka_assign(client, nil) }
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
    private static func timestamp(at offset: Int64, topic: String, partition: Int32, client: OpaquePointer) throws -> Int64 {
        let list = KafkaPartitionList(capacity: 1)
        list.add(topic, partition, offset: offset)
        let err = list.withListPointer { rd_kafka_assign(client, $0) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaConfig.error(err, "cannot read \(topic)/\(partition): \(KafkaConfig.errorText(err)).")
        }
        let deadline = monotonicMilliseconds() + 10_000
        while monotonicMilliseconds() < deadline && !Signals.stopRequested {
            guard let message = rd_kafka_consumer_poll(client, 200) else {
                try KafkaBrokerErrors.serve(client)
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

    static func watermarks(_ topic: String, _ partition: Int32, client: OpaquePointer) throws -> (low: Int64, high: Int64) {
        var low: Int64 = 0
        var high: Int64 = 0
        let err = try KafkaBrokerErrors.request("the offsets of \(topic)/\(partition) were known", client: client) {
            rd_kafka_query_watermark_offsets(client, topic, partition, &low, &high, $0)
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            let hint = KafkaConfig.cause(err) == .connectionLost ? KafkaBrokerErrors.unreachableHint : ""
            throw KafkaConfig.error(err, "cannot read the offsets of \(topic)/\(partition): \(KafkaConfig.errorText(err)).\(hint)")
        }
        return (low, high)
    }

    /// The offset each partition starts at for `position`.
    static func resolve(_ position: Position, topic: String, partitions: [Int32], client: OpaquePointer) throws -> [Int64] {
        switch position {
        case .time(let milliseconds):
            let list = KafkaPartitionList(capacity: partitions.count)
            for partition in partitions { list.add(topic, partition, offset: milliseconds) }
            let err = list.withListPointer { rd_kafka_offsets_for_times(client, $0, 10_000) }
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
                let (low, high) = try watermarks(topic, partition, client: client)
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
}
