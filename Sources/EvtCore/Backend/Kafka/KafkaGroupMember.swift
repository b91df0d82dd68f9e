internal import CRdKafka

/// The consumer that holds a copy's lease as the membership of a group (KafkaGroupCheckpoint).
/// It keeps every partition it is given paused, commits nothing, and serves its rebalances
/// when polled.
final class KafkaGroupMember {
    private let client: KafkaClient
    private let state: KafkaMemberState

    /// The partitions of the source topic the group gave this member.
    var assigned: Set<Int32> { state.assigned }
    /// Whether the broker dropped this member (its session timed out): the lease is gone.
    var lost: Bool { state.lost }

    private let group: String

    init(brokers: String, group: String, topic: String, kafka: KafkaSettings) throws {
        self.group = group
        let state = KafkaMemberState()
        self.state = state
        client = try KafkaClient(.consumer, brokers: brokers, clientID: "evt-copy-between", [
            ("group.id", group),
            ("session.timeout.ms", String(CheckpointLease.durationMs)),
            ("partition.assignment.strategy", "cooperative-sticky"),
            // It reads nothing: no prefetch, should a partition start before it is paused.
            ("queued.max.messages.kbytes", "1"),
        ], settings: kafka, role: state) { conf in
            rd_kafka_conf_set_rebalance_cb(conf, kafkaLeaseRebalance)
        }
        rd_kafka_poll_set_consumer(client.handle)
        try client.subscribe([topic], failure: "cannot join consumer group \(group)")
    }

    /// Polls until the group gave this member its first assignment (perhaps empty).
    func waitUntilJoined() throws {
        let start = monotonicMilliseconds()
        var told = false
        while state.assignments == 0 {
            if Signals.stopRequested { throw EvtError(.stopped, "stopped while joining consumer group \(group); nothing was copied.") }
            let waited = monotonicMilliseconds() - start
            if waited > 6 * CheckpointLease.durationMs {
                throw EvtError(.connectionLost, "consumer group \(group) (the checkpoint's lease) could not be joined within \(waited / 1000) s. Is its group coordinator reachable?")
            }
            if !told && waited > 4000 {
                told = true
                Diagnostics.print("waiting to join consumer group \(group), the checkpoint's lease (Kafka drops the member of a copy that was killed \(CheckpointLease.durationMs / 1000) s after it died)…")
            }
            poll(waitMs: 100)
        }
    }

    /// Serves rebalances: waits up to `waitMs` for the first event. A record that comes all
    /// the same (a partition not yet paused) is dropped.
    func poll(waitMs: Int32) {
        var wait = waitMs
        while let message = rd_kafka_consumer_poll(client.handle, wait) {
            rd_kafka_message_destroy(message)
            wait = 0
        }
    }

    /// Leaves the group (its partitions are given up, nothing is committed), waiting a few
    /// seconds at most: a coordinator that does not answer (brokers gone) would hold a stop
    /// up until the session timed out; the broker then drops the member by itself.
    func leave() {
        let deadline = monotonicMilliseconds() + 3000
        client.leaveGroup { max(0, deadline - monotonicMilliseconds()) }
    }
}

/// What the rebalances told a KafkaGroupMember (the rebalance callback's opaque; it runs on
/// the thread that polls).
final class KafkaMemberState {
    var assigned: Set<Int32> = []
    var assignments = 0
    var lost = false
}

/// A lease member's rebalances: what it is given is assigned and paused at once; what it
/// gives up, unassigned. Eager or cooperative, whichever the group uses.
private func kafkaLeaseRebalance(_ rk: OpaquePointer?, _ err: rd_kafka_resp_err_t,
                                 _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
                                 _ opaque: UnsafeMutableRawPointer?) {
    guard let rk, let partitions, let opaque else { return }
    let state = KafkaClientContext.role(opaque, as: KafkaMemberState.self)
    let cooperative = rd_kafka_rebalance_protocol(rk).map { String(cString: $0) } == "COOPERATIVE"
    let elements = KafkaPartitionList.lentElements(partitions)
    if err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
        if cooperative {
            if let error = rd_kafka_incremental_assign(rk, partitions) { rd_kafka_error_destroy(error) }
        } else {
            _ = rd_kafka_assign(rk, partitions)
            state.assigned = []
        }
        _ = rd_kafka_pause_partitions(rk, partitions)
        for element in elements { state.assigned.insert(element.partition) }
        state.assignments += 1
    } else {
        if rd_kafka_assignment_lost(rk) != 0 { state.lost = true }
        if cooperative {
            if let error = rd_kafka_incremental_unassign(rk, partitions) { rd_kafka_error_destroy(error) }
            for element in elements { state.assigned.remove(element.partition) }
        } else {
            _ = rd_kafka_assign(rk, nil)
            state.assigned = []
        }
    }
}
