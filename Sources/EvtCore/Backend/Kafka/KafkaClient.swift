#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

/// One librdkafka client (`rd_kafka_t`) of evt, and the one place where a client is made and
/// torn down: the producer, the readers (tail, replay, copy), subscribe's consumer, the lag
/// and group-create handles, the checkpoint store and its lease member all are one of these.
///
/// Made from evt's base properties (the brokers and client.id; for a consumer, no automatic
/// commit or offset store and no end-of-partition events), then the role's, then the user's
/// `-F`/`-X` (later wins, as in kcat). librdkafka takes the configuration only when the client
/// is made, so it is destroyed here otherwise.
///
/// Its blocking lookups (metadata, watermarks, committed offsets) go through the run's
/// `KafkaBrokerErrors` in half-second slices, so a refusal or a stop signal ends them early.
/// A topic's partitions, once known, are kept.
///
/// Torn down in `deinit` by what it did: a producer, or a consumer that never joined a group
/// (it only assigned partitions or asked a coordinator), is destroyed without a consumer close,
/// which would only wait for a coordinator. A group member leaves its group first, within a
/// bound (see `leaveGroup`); one whose coordinator did not answer is left to the process's
/// exit, since destroying it would wait out session.timeout.ms all the same.
final class KafkaClient {
    enum Kind {
        case producer
        case consumer
    }

    let handle: OpaquePointer
    /// What librdkafka reported about the brokers, shared by every client of this run.
    let brokerErrors: KafkaBrokerErrors
    /// The opaque of every callback of this client (rebalances, commit answers, deliveries).
    let callbackOpaque: UnsafeMutableRawPointer
    private let context: KafkaClientContext
    private let kind: Kind
    private var partitionsByTopic: [String: [Int32]] = [:]
    private var consumerQueue: OpaquePointer?
    private var closing: OpaquePointer?
    private var subscribed = false
    private var left = false
    private var abandoned = false

    /// `role` is what this client's callbacks find through `KafkaClientContext.role(_:as:)`,
    /// kept alive as long as the client; `configure` sets those callbacks on the configuration.
    init(_ kind: Kind, brokers: String, clientID: String = "evt", _ properties: [(String, String)],
         settings: KafkaSettings, role: AnyObject? = nil,
         configure: (OpaquePointer) -> Void = { _ in }) throws {
        var base: [(String, String)] = [("bootstrap.servers", brokers), ("client.id", clientID)]
        if kind == .consumer {
            base += [("enable.auto.commit", "false"), ("enable.auto.offset.store", "false"),
                     ("enable.partition.eof", "false")]
        }
        let conf = try KafkaConfig.make(base + properties, settings)
        let context = KafkaClientContext(brokerErrors: settings.brokerErrors, role: role)
        let opaque = Unmanaged.passUnretained(context).toOpaque()
        rd_kafka_conf_set_opaque(conf, opaque)
        configure(conf)
        var errorText = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(kind == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER, conf,
                                        &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)
            throw EvtError.usage("cannot create the Kafka client: \(KafkaConfig.text(errorText)).")
        }
        self.handle = handle
        self.kind = kind
        self.context = context
        self.callbackOpaque = opaque
        self.brokerErrors = settings.brokerErrors
    }

    deinit {
        if subscribed && !left && !abandoned { leaveGroup(msLeft: Self.boundedLeave()) }
        guard !abandoned else {
            // librdkafka's threads live on: what its callbacks reach must too.
            _ = Unmanaged.passRetained(context)
            return
        }
        if let consumerQueue { rd_kafka_queue_destroy(consumerQueue) }
        if let closing { rd_kafka_queue_destroy(closing) }
        if kind == .consumer && !left {
            rd_kafka_destroy_flags(handle, Int32(RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE))
        } else {
            rd_kafka_destroy(handle)
        }
    }

    // MARK: Queues and the group

    /// The queue records arrive on (made when first asked, destroyed with the client).
    var queue: OpaquePointer {
        if let consumerQueue { return consumerQueue }
        let made = rd_kafka_queue_get_consumer(handle)!
        consumerQueue = made
        return made
    }

    /// The queue a group member's last commit and its leave are answered on (see `leaveGroup`).
    var closingQueue: OpaquePointer {
        if let closing { return closing }
        let made = rd_kafka_queue_new(handle)!
        closing = made
        return made
    }

    /// Joins the consumer group of `group.id` for `topics` (rd_kafka_subscribe); from now on the
    /// client leaves the group before it is destroyed. `failure` begins the error's message.
    func subscribe(_ topics: [String], failure: String) throws {
        let list = KafkaPartitionList(capacity: topics.count)
        for topic in topics { list.add(topic, RD_KAFKA_PARTITION_UA) }
        let err = list.withListPointer { rd_kafka_subscribe(handle, $0) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaConfig.error(err, "\(failure): \(KafkaConfig.errorText(err)).")
        }
        subscribed = true
    }

    /// Leaves the group (the others get its partitions at once), serving `closingQueue` while
    /// `msLeft` says there is time: rebalance callbacks run there, records that reach it are
    /// dropped (rd_kafka_queue_poll_callback would abort on those). librdkafka's own
    /// rd_kafka_consumer_close waits for a coordinator that is gone until session.timeout.ms
    /// (45 s by default). True when the group was left; else the client is abandoned.
    @discardableResult
    func leaveGroup(msLeft: () -> Int) -> Bool {
        guard !left && !abandoned else { return left }
        let closing = closingQueue
        if let error = rd_kafka_consumer_close_queue(handle, closing) {
            rd_kafka_error_destroy(error)   // closed already, or a fatal error: destroy copes
            left = true
            return true
        }
        while rd_kafka_consumer_closed(handle) == 0 && msLeft() > 0 {
            serve(closing, ms: min(100, msLeft()))
        }
        left = rd_kafka_consumer_closed(handle) != 0
        abandoned = !left
        return left
    }

    /// Gives up on the group without leaving it (its coordinator is unreachable): the handle
    /// is left to the process's exit.
    func abandon() { abandoned = true }

    /// Serves `queue` for up to `ms` (callbacks run; a record or consumer error is dropped).
    func serve(_ queue: OpaquePointer, ms: Int) {
        if let message = rd_kafka_consume_queue(queue, Int32(ms)) { rd_kafka_message_destroy(message) }
    }

    /// The bound of a leave that no caller timed: a few seconds, cut to what is left of the
    /// grace after a stop signal.
    private static func boundedLeave() -> () -> Int {
        let deadline = monotonicMilliseconds() + 3000
        return {
            let left = deadline - monotonicMilliseconds()
            return max(0, min(left, Signals.graceLeftMs ?? left))
        }
    }

    // MARK: Lookups

    /// The partitions of `topic`, sorted, from one metadata request (kept; `refresh` asks
    /// again). A topic the metadata does not list has none.
    func partitions(of topic: String, refresh: Bool = false, budgetMs: Int = 10_000) throws -> [Int32] {
        if !refresh, let known = partitionsByTopic[topic] { return known }
        guard let topicHandle = rd_kafka_topic_new(handle, topic, nil) else {
            throw KafkaConfig.error(rd_kafka_last_error(), "cannot use topic \(topic): \(KafkaConfig.errorText(rd_kafka_last_error())).")
        }
        defer { rd_kafka_topic_destroy(topicHandle) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = try brokerErrors.request("the partitions of topic \(topic) were known", client: handle, budgetMs: budgetMs) {
            rd_kafka_metadata(handle, 0, topicHandle, &metadata, $0)
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaConfig.error(err, "cannot read the partitions of topic \(topic): \(KafkaConfig.errorText(err)) (brokers from EVT_KAFKA_BROKERS or kafka://HOST:PORT/…).\(brokerErrors.unreachableHint)")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt == 1 else { return [] }
        let topicMetadata = metadata.pointee.topics[0]
        if topicMetadata.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaConfig.error(topicMetadata.err, "topic \(topic): \(KafkaConfig.errorText(topicMetadata.err)).")
        }
        let partitions = (0..<Int(topicMetadata.partition_cnt)).map { topicMetadata.partitions[$0].id }.sorted()
        if !partitions.isEmpty { partitionsByTopic[topic] = partitions }
        return partitions
    }

    /// The names of every topic in the cluster and its broker count, from one metadata
    /// request for all topics (which, unlike a lookup by name, never creates a topic).
    /// `failure` begins the error's message.
    func clusterTopics(failure: String) throws -> (topics: Set<String>, brokerCount: Int) {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = try brokerErrors.request("the topics of the cluster were known", client: handle) {
            rd_kafka_metadata(handle, 1, nil, &metadata, $0)
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaConfig.error(err, "\(failure): \(KafkaConfig.errorText(err)).\(brokerErrors.unreachableHint)")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        let topics = UnsafeBufferPointer(start: metadata.pointee.topics, count: Int(metadata.pointee.topic_cnt))
        return (Set(topics.map { String(cString: $0.topic) }), Int(metadata.pointee.broker_cnt))
    }

    /// The low and high watermark of `topic`/`partition`, asked of its leader.
    func watermarks(_ topic: String, _ partition: Int32) throws -> (low: Int64, high: Int64) {
        var low: Int64 = 0
        var high: Int64 = 0
        let err = try brokerErrors.request("the offsets of \(topic)/\(partition) were known", client: handle) {
            rd_kafka_query_watermark_offsets(handle, topic, partition, &low, &high, $0)
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            let hint = KafkaConfig.cause(err) == .connectionLost ? brokerErrors.unreachableHint : ""
            throw KafkaConfig.error(err, "cannot read the offsets of \(topic)/\(partition): \(KafkaConfig.errorText(err)).\(hint)")
        }
        return (low, high)
    }

    /// The watermarks librdkafka last saw for `topic`/`partition` (no request); nil when it
    /// has seen none.
    func cachedWatermarks(_ topic: String, _ partition: Int32) -> (low: Int64, high: Int64)? {
        var low: Int64 = 0
        var high: Int64 = 0
        guard rd_kafka_get_watermark_offsets(handle, topic, partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR,
              high >= 0 else { return nil }
        return (low, high)
    }

    /// Fills in `list` the offsets committed for this client's group.id (and their metadata),
    /// asked of the group's coordinator; `what` names the lookup for a stop signal's message.
    func committed(_ list: KafkaPartitionList, _ what: String) throws -> rd_kafka_resp_err_t {
        try brokerErrors.request(what, client: handle) { slice in
            list.withListPointer { rd_kafka_committed(handle, $0, slice) }
        }
    }

    /// Commits the offsets (and metadata) of `list` for this client's group.id and waits for
    /// the answer: the whole request's error; each partition's is in `list`.
    func commit(_ list: KafkaPartitionList) -> rd_kafka_resp_err_t {
        list.withListPointer { rd_kafka_commit(handle, $0, 0) }
    }

    /// Reads the partitions of `list` from its offsets (no group joined); `what` names them
    /// for the error ("topic t", "t/3").
    func assign(_ list: KafkaPartitionList, reading what: String) throws {
        let err = list.withListPointer { rd_kafka_assign(handle, $0) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaConfig.error(err, "cannot read \(what): \(KafkaConfig.errorText(err)).")
        }
    }

    /// Drops the assignment, and with it what was fetched for it.
    func unassign() { _ = rd_kafka_assign(handle, nil) }

    /// A setting as librdkafka holds it (evt's, then the user's); nil when unset or empty.
    /// Never asked for a secret.
    func setting(_ name: String) -> String? { KafkaConfig.setting(name, of: handle) }
}

/// What librdkafka's callbacks of one client reach through its opaque pointer: the run's
/// broker errors (the error callback) and the role's own state (deliveries, rebalances). Alive
/// as long as the client, so the callbacks take it unretained.
final class KafkaClientContext {
    let brokerErrors: KafkaBrokerErrors
    let role: AnyObject?

    init(brokerErrors: KafkaBrokerErrors, role: AnyObject?) {
        self.brokerErrors = brokerErrors
        self.role = role
    }

    /// The context behind a callback's opaque.
    static func of(_ opaque: UnsafeMutableRawPointer) -> KafkaClientContext {
        Unmanaged<KafkaClientContext>.fromOpaque(opaque).takeUnretainedValue()
    }

    /// The role state behind a callback's opaque: the client was made with a `role` of `type`.
    static func role<Role: AnyObject>(_ opaque: UnsafeMutableRawPointer, as type: Role.Type) -> Role {
        Unmanaged<KafkaClientContext>.fromOpaque(opaque)._withUnsafeGuaranteedRef {
            unsafeDowncast($0.role.unsafelyUnwrapped, to: type)
        }
    }
}
