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
