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
    private let client: KafkaClient
    private let queue: OpaquePointer
    private let grouped: Bool
    /// Per topic, its name as bytes and as a JSON string literal, for the records handed over.
    private var topicNames: [String: (name: [UInt8], quoted: [UInt8])] = [:]
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
    /// What the rebalance and offset-commit callbacks share with the consumer (the client's
    /// role state, alive as long as the client).
    private let group: GroupState
    /// Keeps librdkafka's fetcher going while the prefetch queue drains (see KafkaFetchWaker).
    private let waker: KafkaFetchWaker

    init(brokers: String, topics: [String], partition: Int32?, options: ConsumerOptions) throws {
        grouped = options.group != nil
        if grouped && partition != nil {
            throw EvtError.usage("a group shares whole topics among its members; drop the /PARTITION or the --group.")
        }
        var properties: [(String, String)] = [
            ("group.id", options.group ?? "evt-subscribe"),
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
        }
        let group = GroupState(atBeginning: options.from == .beginning)
        self.group = group
        let grouped = grouped
        // The member's name as group tools show it (--consumer, default evt-HOSTNAME).
        client = try KafkaClient(.consumer, brokers: brokers, clientID: options.consumer ?? "evt", properties,
                                 settings: options.kafka, role: group) { conf in
            if grouped {
                rd_kafka_conf_set_rebalance_cb(conf, kafkaRebalance)
                rd_kafka_conf_set_offset_commit_cb(conf, kafkaCommitAnswered)
            }
        }
        queue = client.queue
        waker = KafkaFetchWaker(client)
        if grouped {
            rd_kafka_poll_set_consumer(client.handle)
            try client.subscribe(topics, failure: "cannot subscribe to \(topics.joined(separator: ", "))")
        } else {
            // The lookups before the assignment serve the main queue themselves (errors,
            // a refused authentication among them); only then does the consumer queue take it.
            try assign(topics: topics, partition: partition, from: options.from ?? .end)
            rd_kafka_poll_set_consumer(client.handle)
        }
    }

    private func assign(topics: [String], partition: Int32?, from: Position) throws {
        let assignment = KafkaPartitionList(capacity: 8)
        for topic in topics {
            if topic.hasPrefix("^") {
                throw EvtError.usage("a topic pattern (\(topic)) is followed through a group: add --group NAME.")
            }
            let partitions = try partition.map { [$0] } ?? client.partitions(of: topic)
            let offsets = try KafkaOffsets.resolve(from, topic: topic, partitions: partitions, client: client)
            for (partition, offset) in zip(partitions, offsets) {
                assignment.add(topic, partition, offset: offset)
            }
        }
        try client.assign(assignment, reading: topics.joined(separator: ", "))
    }

    private var assigned = false

    private func hasAssignment() -> Bool {
        guard let assignment = KafkaPartitionList(assignmentOf: client.handle) else { return false }
        return !assignment.isEmpty
    }

    func receive(limit: Int, waitMs: Int, into record: Record, _ body: (Record) -> Void) throws -> Int {
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
                return try take(count, into: record, body)
            }
            // The consumer queue serves the error callback: a refused authentication or TLS
            // handshake ends the wait (a group join would retry it forever).
            try client.brokerErrors.check()
            if waitMs < 0 && stdoutReaderIsGone() { throw StdoutClosed() }
            if grouped && !assigned {
                // Joining takes seconds (about 3 on the mock cluster): --idle-exit counts
                // from the moment partitions are ours.
                assigned = hasAssignment()
                if !assigned && waitMs >= 0 { deadline = monotonicMilliseconds() + waitMs }
            }
            if monotonicMilliseconds() >= deadline { return 0 }
        }
    }

    private func take(_ count: Int, into record: Record, _ body: (Record) -> Void) throws -> Int {
        record.origin = .kafka
        var failure: EvtError?
        var written = 0
        for index in 0..<count {
            let message = messages[index]!
            defer { rd_kafka_message_destroy(message) }
            if failure != nil { continue }
            if let problem = KafkaMessageError(message, client: client) {
                switch problem {
                case .partitionEnd: continue
                case .refused(let error), .unreadable(let error): failure = error
                // A subscriber follows: librdkafka retries, and the subscription goes on.
                case .transient(let error): Diagnostics.print("kafka: \(clause(error.message)); retrying.")
                }
                continue
            }
            let raw = message.pointee
            let topic = String(cString: rd_kafka_topic_name(raw.rkt))
            let names = topicNames[topic] ?? {
                let names = (Array(topic.utf8), Record.quoted(topic))
                topicNames[topic] = names
                return names
            }()
            record.topic = names.name
            record.quotedSource = names.quoted
            record.point(at: message)
            body(record)
            received.append((topic, raw.partition, raw.offset))
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
        let err = list.withListPointer { rd_kafka_offsets_store(client.handle, $0) }
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            // A partition revoked meanwhile: its new owner reads these records again.
            Diagnostics.print("kafka: could not store offsets: \(KafkaConfig.errorText(err))")
        }
        for element in list where element.err == RD_KAFKA_RESP_ERR_NO_ERROR {
            stored[TopicPartition(topic: element.topic, partition: element.partition)] = element.offset
        }
    }

    /// Commits what was handed over, then leaves the group (the others get its partitions at
    /// once), both within closeTimeoutMs, cut to what is left of the grace after a stop signal
    /// (KafkaClient.leaveGroup says why it is bounded). When the commit is not answered in
    /// time, the offsets not committed are named and the group is not left (its coordinator is
    /// unreachable anyway); the handle is then left to the process's exit. After a stop signal
    /// that is a clean stop (130/143), else a failure.
    func close() throws {
        let deadline = monotonicMilliseconds() + Self.closeTimeoutMs
        func msLeft() -> Int {
            let left = deadline - monotonicMilliseconds()
            return max(0, min(left, Signals.graceLeftMs ?? left))
        }
        let uncommitted = grouped ? commitHandedOver(msLeft: msLeft) : nil
        group.closing = true
        // An unanswered commit used up the time: the coordinator is gone, no leave is answered.
        let left = msLeft() > 0 && client.leaveGroup(msLeft: msLeft)
        if !left { client.abandon() }
        if !left && uncommitted == nil && grouped {
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

    /// Commits the offsets stored since the last commit that was answered, and waits for the
    /// answer as long as `msLeft` says. Nil when all is committed; else the reason and, per
    /// partition, the offsets handed over and not committed ("t/0 offsets 17-42").
    private func commitHandedOver(msLeft: () -> Int) -> (reason: String, ranges: [String])? {
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
        let closing = client.closingQueue
        let err = list.withListPointer {
            rd_kafka_commit_queue(client.handle, $0, closing, kafkaCommitAnswered, client.callbackOpaque)
        }
        var reason = KafkaConfig.errorText(err)
        if err == RD_KAFKA_RESP_ERR_NO_ERROR {
            let started = monotonicMilliseconds()
            while group.commitAnswers == answersBefore && msLeft() > 0 {
                client.serve(closing, ms: min(100, msLeft()))
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
    let group = KafkaClientContext.role(opaque, as: GroupState.self)
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
    let group = opaque.map { KafkaClientContext.role($0, as: GroupState.self) }
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
