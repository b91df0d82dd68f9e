internal import CRdKafka

/// A topic→topic copy's checkpoint: the offsets committed for consumer group NAME, as
/// kcat's offset tools do it (standalone commits, that group never joined), so that kcat or
/// any Kafka tool shows it as the group's position. Each commit carries
/// `evt copy-between;target=TARGET;owner=HOLDER` as its metadata: a NAME used again for
/// another target is refused, and a copy refused for a checkpoint in use names its holder.
///
/// The lease (CheckpointLease) is the membership of a second group, NAME.evt-lease, which
/// only ever has the running copy as its member: subscribed to the source topic with the
/// cooperative-sticky assignor (which leaves a member the partitions it has), fetching
/// nothing (every partition it is given stays paused), committing nothing (a commit in the
/// middle of a rebalance could cost a member its assignment). A copy holds the checkpoint
/// when, once it has joined, that group gave it every partition of the source topic: it is
/// then the only member, or the first of two that joined at once. Otherwise it leaves and
/// does not start. A killed copy's member is dropped by the broker when its session times out
/// (CheckpointLease.durationMs): a new copy's join completes then.
final class KafkaGroupCheckpoint: CheckpointStore {
    private let brokers: String
    private let kafka: KafkaSettings
    private let topic: String
    private let group: String
    private let target: String
    /// group.id NAME, never joined: reads and commits the group's offsets.
    private let client: KafkaClient
    /// The partitions copied (the one named, or all of the topic).
    private let partitions: [Int32]
    private var member: KafkaGroupMember?

    init(brokers: String, topic: String, partition: Int32?, group: String, target: Endpoint, kafka: KafkaSettings) throws {
        client = try KafkaClient(.consumer, brokers: brokers, [], settings: kafka.adding([("group.id", group)]))
        partitions = try partition.map { [$0] } ?? client.partitions(of: topic)
        self.brokers = brokers
        self.kafka = kafka
        self.topic = topic
        self.group = group
        self.target = target.identity
    }

    var name: String { "checkpoint (consumer group \(group))" }
    private var leaseGroup: String { group + ".evt-lease" }
    private var metadata: String { "evt copy-between;target=\(target);owner=\(CheckpointLease.owner)" }

    func claim(source identity: String) throws -> SourcePosition? {
        let recorded = try committed()
        if let other = recorded.target, other != target {
            throw EvtError.usage("\(name) belongs to a copy into \(other), not into \(target). Choose another --checkpoint NAME, or delete the group to start over (kafka-consumer-groups --delete --group \(group)).")
        }
        if let member, !member.lost { return recorded.position }   // claimed again after an outage
        member?.leave()
        member = nil
        let joined = try KafkaGroupMember(brokers: brokers, group: leaseGroup, topic: topic, kafka: kafka)
        try joined.waitUntilJoined()
        let all = try client.partitions(of: topic, refresh: true)
        guard joined.assigned.count >= all.count && !all.isEmpty else {
            joined.leave()
            throw CheckpointLease.inUse(name, holder: recorded.owner ?? "a member of consumer group \(leaseGroup)", freeInMs: nil)
        }
        member = joined
        // What the last holder committed until it left.
        return try committed().position
    }

    func save(_ position: SourcePosition) throws {
        try keepAlive()
        guard !position.offsets.isEmpty else { return }
        let list = KafkaPartitionList(capacity: position.offsets.count)
        for (partition, next) in position.offsets { list.add(topic, partition, offset: next, metadata: metadata) }
        let err = client.commit(list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaConfig.error(err, "cannot commit the checkpoint of topic \(topic): \(KafkaConfig.errorText(err)). Is consumer group \(group) in use by running consumers?")
        }
    }

    /// Serves the lease member's rebalances; throws when the broker dropped it.
    func keepAlive() throws {
        guard let member else { return }
        member.poll(waitMs: 0)
        if member.lost { throw CheckpointLease.lost(name, holder: nil) }
    }

    func release() {
        member?.leave()
        member = nil
    }

    /// The group's committed offsets of the partitions copied, and what their metadata says.
    private func committed() throws -> (position: SourcePosition?, target: String?, owner: String?) {
        let list = KafkaPartitionList(capacity: partitions.count)
        for partition in partitions { list.add(topic, partition) }
        let err = try client.committed(list, "the \(name) of topic \(topic) was read")
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaConfig.error(err, "cannot read the \(name) of topic \(topic): \(KafkaConfig.errorText(err)).")
        }
        var offsets: [Int32: Int64] = [:]
        var target: String?
        var owner: String?
        for element in list where element.offset >= 0 {
            offsets[element.partition] = element.offset
            for field in (element.metadata ?? "").split(separator: ";") {
                if field.hasPrefix("target=") { target = String(field.dropFirst("target=".count)) }
                if field.hasPrefix("owner=") { owner = String(field.dropFirst("owner=".count)) }
            }
        }
        return (offsets.isEmpty ? nil : SourcePosition(offsets: offsets), target, owner)
    }
}

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
