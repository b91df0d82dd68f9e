#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

/// Kafka consumer groups without consuming: `group-create` commits a group's starting
/// offsets, so a later `subscribe --group` begins there.
enum KafkaGroups {
    /// Joins `group` (it has no other members), waits for the assignment, commits `list`.
    private static func commitAsMember(_ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>, group: String,
                                       brokers: String, topic: String, allPartitions: Int32,
                                       properties: [(String, String)]) throws -> rd_kafka_resp_err_t {
        let conf = try KafkaConfig.make([
            ("bootstrap.servers", brokers), ("client.id", "evt"), ("group.id", group),
            ("enable.auto.commit", "false"), ("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500"),
        ] + properties)
        let member = try KafkaConfig.client(RD_KAFKA_CONSUMER, conf)
        defer { rd_kafka_destroy(member) }
        rd_kafka_poll_set_consumer(member)
        let topics = rd_kafka_topic_partition_list_new(1)!
        defer { rd_kafka_topic_partition_list_destroy(topics) }
        rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA)
        var err = rd_kafka_subscribe(member, topics)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { return err }
        defer { _ = rd_kafka_consumer_close(member) }
        let deadline = monotonicMilliseconds() + 30_000
        while monotonicMilliseconds() < deadline && !Signals.stopRequested {
            if let message = rd_kafka_consumer_poll(member, 100) { rd_kafka_message_destroy(message) }
            var assignment: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
            guard rd_kafka_assignment(member, &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR, let assignment else { continue }
            let count = assignment.pointee.cnt
            rd_kafka_topic_partition_list_destroy(assignment)
            if count > 0 {
                // Alone in the group, we get every partition; fewer means other members
                // (a broker without ListGroups, like the mock, hid them from the check).
                guard count >= allPartitions else {
                    throw EvtError.failure("group \(group) has other active members (this join got \(count) of \(allPartitions) partitions); stop its consumers first.")
                }
                err = rd_kafka_commit(member, list, 0)
                return err
            }
        }
        if Signals.stopRequested { throw EvtError.failure("stopped before the offsets of group \(group) were committed; nothing changed.") }
        throw EvtError.failure("could not join group \(group) to commit its offsets within 30 s.")
    }

    static func create(group: String, brokers: String, topic: String, partition: Int32?, from: Position,
                       reset: Bool, properties: [(String, String)]) throws -> ExitStatus {
        let conf = try KafkaConfig.make([
            ("bootstrap.servers", brokers), ("client.id", "evt"), ("group.id", group),
            ("enable.auto.commit", "false"),
        ] + properties)
        let client = try KafkaConfig.client(RD_KAFKA_CONSUMER, conf)
        defer { rd_kafka_destroy(client) }

        // Committing for a group whose members are reading would fight their own commits.
        var groups: UnsafePointer<rd_kafka_group_list>?
        let listed = rd_kafka_list_groups(client, group, &groups, 10_000)
        if listed == RD_KAFKA_RESP_ERR_NO_ERROR, let groups {
            defer { rd_kafka_group_list_destroy(groups) }
            for index in 0..<Int(groups.pointee.group_cnt) {
                let info = groups.pointee.groups[index]
                if String(cString: info.group) == group && info.member_cnt > 0 {
                    throw EvtError.failure("group \(group) has \(info.member_cnt) active member\(info.member_cnt == 1 ? "" : "s"); stop its consumers first (a group's offsets can only be set while it is empty).")
                }
            }
        }

        let partitions = try partition.map { [$0] } ?? KafkaOffsets.partitions(of: topic, client: client)
        guard !partitions.isEmpty else { throw EvtError.failure("topic \(topic) has no partitions (does it exist?).") }
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in partitions { rd_kafka_topic_partition_list_add(list, topic, partition) }

        if !reset {
            let err = rd_kafka_committed(client, list, 10_000)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                let existing = (0..<Int(list.pointee.cnt)).filter { list.pointee.elems[$0].offset >= 0 }
                if !existing.isEmpty {
                    Diagnostics.print("group \(group) already has committed offsets on \(topic); left as they are (--reset moves them to --from).")
                    return .success
                }
            }
        }
        let offsets = try KafkaOffsets.resolve(from, topic: topic, partitions: partitions, client: client)
        for (index, offset) in offsets.enumerated() {
            list.pointee.elems[index].offset = offset
            list.pointee.elems[index].err = RD_KAFKA_RESP_ERR_NO_ERROR
        }
        var err = rd_kafka_commit(client, list, 0)
        if err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID {
            // Some brokers (librdkafka's mock among them) take commits for a group that has
            // had members only from a member: join it alone, then commit as that member.
            let allPartitions = Int32(try KafkaOffsets.partitions(of: topic, client: client).count)
            err = try commitAsMember(list, group: group, brokers: brokers, topic: topic, allPartitions: allPartitions,
                                     properties: properties)
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaConfig.error(err, "cannot commit offsets for group \(group) on \(topic): \(KafkaConfig.errorText(err)).")
        }
        for index in 0..<Int(list.pointee.cnt) where list.pointee.elems[index].err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaConfig.error(list.pointee.elems[index].err, "cannot commit the offset of \(topic)/\(list.pointee.elems[index].partition) for group \(group): \(KafkaConfig.errorText(list.pointee.elems[index].err)).")
        }
        let shown = zip(partitions, offsets).map { "\($0.0):\($0.1)" }.joined(separator: " ")
        Diagnostics.print("group \(group) on \(topic) starts at partition:offset \(shown)")
        return .success
    }
}
