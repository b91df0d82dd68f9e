#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

/// Kafka consumer groups without consuming: `group-create` commits a group's starting
/// offsets, so a later `subscribe --group` begins there.
enum KafkaGroups {
    /// Joins `group` (it has no other members), waits for the assignment, commits `list`.
    private static func commitAsMember(_ list: KafkaPartitionList, group: String,
                                       brokers: String, topic: String, allPartitions: Int32,
                                       kafka: KafkaSettings) throws -> rd_kafka_resp_err_t {
        let member = try KafkaClient(.consumer, brokers: brokers, [
            ("group.id", group), ("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500"),
        ], settings: kafka)
        rd_kafka_poll_set_consumer(member.handle)
        try member.subscribe([topic], failure: "cannot join group \(group) to commit its offsets")
        let deadline = monotonicMilliseconds() + 30_000
        while monotonicMilliseconds() < deadline && !Signals.stopRequested {
            if let message = rd_kafka_consumer_poll(member.handle, 100) { rd_kafka_message_destroy(message) }
            // The consumer poll serves the error callback: a refusal ends the join.
            try member.brokerErrors.check()
            guard let count = KafkaPartitionList(assignmentOf: member.handle)?.count else { continue }
            if count > 0 {
                // Alone in the group, we get every partition; fewer means other members
                // (a broker without ListGroups, like the mock, hid them from the check).
                guard count >= allPartitions else {
                    throw EvtError(.refused(code: ""), "group \(group) has other active members (this join got \(count) of \(allPartitions) partitions); stop its consumers first.")
                }
                return member.commit(list)
            }
        }
        if Signals.stopRequested { throw EvtError(.stopped, "stopped before the offsets of group \(group) were committed; nothing changed.") }
        throw EvtError(.connectionLost, "could not join group \(group) to commit its offsets within 30 s.")
    }

    /// `evt group-create topic:T GROUP [--from POSITION] [--reset [--shift-by N] [--dry-run]]`.
    /// Returns the plan of a dry run (nothing else does).
    static func create(group: String, brokers: String, topic: String, partition: Int32?, from: Position,
                       reset: GroupReset?, kafka: KafkaSettings) throws -> [GroupPosition] {
        let client = try KafkaClient(.consumer, brokers: brokers, [("group.id", group)], settings: kafka)
        // First, in half-second slices: a broker that refuses evt (or none at all) ends the
        // command here, not in ListGroups' 10 s wait.
        let topicPartitions = try client.partitions(of: topic)
        let partitions = partition.map { [$0] } ?? topicPartitions

        // Committing for a group whose members are reading would fight their own commits.
        var groups: UnsafePointer<rd_kafka_group_list>?
        let listed = rd_kafka_list_groups(client.handle, group, &groups, 10_000)
        if listed == RD_KAFKA_RESP_ERR_NO_ERROR, let groups {
            defer { rd_kafka_group_list_destroy(groups) }
            for index in 0..<Int(groups.pointee.group_cnt) {
                let info = groups.pointee.groups[index]
                if String(cString: info.group) == group && info.member_cnt > 0 {
                    throw EvtError(.refused(code: ""), "group \(group) has \(info.member_cnt) active member\(info.member_cnt == 1 ? "" : "s"); stop its consumers first (a group's offsets can only be set while it is empty).")
                }
            }
        }

        guard !partitions.isEmpty else { throw EvtError(.refused(code: "UNKNOWN_TOPIC_OR_PART"), "topic \(topic) has no partitions (does it exist?).") }
        let list = KafkaPartitionList(capacity: partitions.count)
        for partition in partitions { list.add(topic, partition) }

        let err = try client.committed(list, "the committed offsets of group \(group) on \(topic) were read")
        if err != RD_KAFKA_RESP_ERR_NO_ERROR && (reset?.shiftBy != nil || reset?.dryRun == true) {
            throw KafkaConfig.error(err, "cannot read the committed offsets of group \(group) on \(topic): \(KafkaConfig.errorText(err)).")
        }
        let current: [Int64?] = list.map { err == RD_KAFKA_RESP_ERR_NO_ERROR && $0.offset >= 0 ? $0.offset : nil }
        if reset == nil && current.contains(where: { $0 != nil }) {
            Diagnostics.print("group \(group) already has committed offsets on \(topic); left as they are (--reset moves them to --from).")
            return []
        }
        let offsets: [Int64]
        if let shift = reset?.shiftBy {
            offsets = try shifted(current, by: shift, group: group, topic: topic, partitions: partitions, client: client)
        } else {
            offsets = try KafkaOffsets.resolve(from, topic: topic, partitions: partitions, client: client)
        }
        if reset?.dryRun == true {
            return partitions.indices.map {
                .partition(topic: topic, group: group, partition: partitions[$0], current: current[$0], new: offsets[$0])
            }
        }
        for (index, offset) in offsets.enumerated() {
            list.setOffset(offset, at: index)
            list.setError(RD_KAFKA_RESP_ERR_NO_ERROR, at: index)
        }
        var committed = client.commit(list)
        if committed == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID {
            // Some brokers (librdkafka's mock among them) take commits for a group that has
            // had members only from a member: join it alone, then commit as that member.
            let allPartitions = Int32(topicPartitions.count)
            committed = try commitAsMember(list, group: group, brokers: brokers, topic: topic, allPartitions: allPartitions,
                                           kafka: kafka)
        }
        guard committed == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaConfig.error(committed, "cannot commit offsets for group \(group) on \(topic): \(KafkaConfig.errorText(committed)).")
        }
        for element in list where element.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaConfig.error(element.err, "cannot commit the offset of \(topic)/\(element.partition) for group \(group): \(KafkaConfig.errorText(element.err)).")
        }
        let shown = zip(partitions, offsets).map { "\($0.0):\($0.1)" }.joined(separator: " ")
        Diagnostics.print("group \(group) on \(topic) starts at partition:offset \(shown)")
        return []
    }

    /// Each committed offset moved by `shift`, kept between the partition's log start and end
    /// as kafka-consumer-groups --shift-by does (a note on stderr says where that happened).
    /// A partition without a committed offset has nothing to shift from: refused, as there.
    private static func shifted(_ current: [Int64?], by shift: Int64, group: String, topic: String, partitions: [Int32],
                                client: KafkaClient) throws -> [Int64] {
        let missing = partitions.indices.filter { current[$0] == nil }.map { String(partitions[$0]) }
        guard missing.isEmpty else {
            throw EvtError(.refused(code: ""), "group \(group) has no committed offset on \(topic) partition\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", ")), so there is nothing to shift from; set one with --reset --from POSITION first.")
        }
        return try partitions.indices.map { index in
            let (low, high) = try client.watermarks(topic, partitions[index])
            let (offset, overflow) = current[index]!.addingReportingOverflow(shift)
            let wanted = overflow ? (shift < 0 ? Int64.min : Int64.max) : offset
            let kept = min(max(wanted, low), high)
            if kept != wanted {
                Diagnostics.print("\(topic)/\(partitions[index]): \(current[index]!) shifted by \(shift) is \(wanted), beyond the log (\(low)..\(high)); using \(kept), as kafka-consumer-groups does.")
            }
            return kept
        }
    }
}
