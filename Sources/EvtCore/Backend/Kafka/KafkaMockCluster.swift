internal import CRdKafka

/// librdkafka's built-in mock Kafka cluster: real Kafka-protocol brokers on 127.0.0.1
/// ephemeral ports, served by one thread inside this process. `evt sandbox` runs one; the
/// tests run one to inject faults. Limits (2.0.2): each partition keeps only the newest
/// ~5 MiB, the first group join waits ~3 s, timestamp lookups answer -1.
public final class KafkaMockCluster: @unchecked Sendable {
    /// The rd_kafka_t that owns the cluster. Not a KafkaClient: it talks to no broker, takes
    /// none of evt's properties or the user's, and must outlive the cluster (destroyed after it).
    private let handle: OpaquePointer
    private let cluster: OpaquePointer     // rd_kafka_mock_cluster_t
    /// `host:port,host:port` for bootstrap.servers / EVT_KAFKA_BROKERS.
    public let bootstrapServers: String
    public let brokerCount: Int

    public init(brokers: Int) throws {
        let conf = rd_kafka_conf_new()!
        // The cluster's own handle has no bootstrap servers and would say so on stderr; only
        // the mock's critical messages (a listener it could not bind, say) are worth seeing.
        rd_kafka_conf_set_log_cb(conf) { _, level, _, message in
            guard level <= 2, let message else { return }
            Diagnostics.print("mock Kafka cluster: \(String(cString: message))")
        }
        var errorText = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)
            throw EvtError(.refused(code: ""), "could not start the mock Kafka cluster: \(String(decoding: errorText.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
        }
        guard let cluster = rd_kafka_mock_cluster_new(handle, Int32(brokers)) else {
            rd_kafka_destroy(handle)
            throw EvtError(.refused(code: ""), "could not start the mock Kafka cluster with \(brokers) brokers.")
        }
        self.handle = handle
        self.cluster = cluster
        self.brokerCount = brokers
        self.bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(handle)
    }

    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws {
        let err = rd_kafka_mock_topic_create(cluster, name, Int32(partitions), Int32(replicationFactor))
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaConfig.error(err, "could not create mock topic \(name): \(String(cString: rd_kafka_err2str(err)))")
        }
    }

    // MARK: Fault injection (tests only; no command calls these)

    // librdkafka's rd_kafka_mock_broker_set_down/up are left out on purpose: set_down closes a
    // broker's listener and binds its port again at once, and if another process took the port
    // meanwhile the mock aborts this whole process. The faults below all keep listeners bound.

    /// Every answer of broker `broker` (-1: all of them; ids are 1...brokerCount) is held back
    /// `milliseconds` (0: answers flow again, held ones at once). A large value makes the broker
    /// one that accepts connections and answers nothing: its clients' requests time out.
    /// Requests still take effect at once (a Produce is stored, only its answer waits).
    public func setRoundTripTime(broker: Int32, milliseconds: Int) {
        _ = rd_kafka_mock_broker_set_rtt(cluster, broker, Int32(milliseconds))
    }

    /// librdkafka's own code for a lost connection, for `pushRequestErrors`: the request that
    /// draws it is not applied (a Produce stores nothing) and its connection closes unanswered,
    /// with whatever else was in flight on it.
    public static let connectionLost = RD_KAFKA_RESP_ERR__TRANSPORT.rawValue

    public func setPartitionLeader(topic: String, partition: Int32, broker: Int32) {
        _ = rd_kafka_mock_partition_set_leader(cluster, topic, partition, broker)
    }

    /// The next requests of this API (0 = Produce, 1 = Fetch, 3 = Metadata, 8 = OffsetCommit…)
    /// fail with these Kafka protocol error codes, one per request, in order
    /// (6 NOT_LEADER_OR_FOLLOWER, 7 REQUEST_TIMED_OUT, 10 MESSAGE_TOO_LARGE, `connectionLost`, …),
    /// whichever broker gets them.
    public func pushRequestErrors(apiKey: Int16, errors: [Int32]) {
        let codes = errors.map { rd_kafka_resp_err_t(rawValue: $0) }
        codes.withUnsafeBufferPointer {
            rd_kafka_mock_push_request_errors_array(cluster, apiKey, $0.count, $0.baseAddress)
        }
    }

    /// Drops the errors still waiting for requests of this API.
    public func clearRequestErrors(apiKey: Int16) {
        rd_kafka_mock_clear_request_errors(cluster, apiKey)
    }
}
