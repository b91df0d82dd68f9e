#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

/// Lag of Kafka consumer groups on one topic (or one partition of it), for `evt lag`
/// (CONTRACT.md, "Lag"): per partition the group's committed offset and the watermarks, the
/// records between them, and the age of the oldest record not consumed yet.
///
/// Every handle lives as long as the reader, because `--watch` calls `read()` again every few
/// seconds and a new librdkafka client costs threads, a connection and a metadata round trip:
/// - `probe`: metadata, watermarks, and the small fetches that read a record's timestamp. It
///   has a throwaway group.id only because librdkafka gives a consumer its queue through one;
///   it assigns partitions directly, never joins, never commits.
/// - one consumer per group, made with that group.id, only for `rd_kafka_committed`: an
///   OffsetFetch to the group's coordinator. It never subscribes, assigns or commits, so the
///   group's members see nothing of it.
/// - `lister`, a producer handle made only when no `--group` was given, for
///   `rd_kafka_list_groups`. Admin requests stay off the consumer handles: closing a consumer
///   after a failed admin call hung for over a minute on librdkafka 2.0.2 (SWIFT-C-NOTES).
final class KafkaLagReader: LagReader {
    private let brokers: String
    private let topic: String
    private let partition: Int32?
    private let query: LagQuery
    private let probe: KafkaClient
    /// group → its handle for committed offsets.
    private var groupClients: [String: KafkaClient] = [:]
    private var lister: KafkaClient?
    private var listerCreatedAt = 0
    /// Groups the broker listed with no members and no committed offset on this topic, so
    /// later rounds of `--watch` do not open a handle for each of them again. A group leaves
    /// this set once it has members again.
    private var emptyGroupsElsewhere: Set<String> = []
    /// Record timestamps by partition and offset, from earlier rounds: a record's timestamp
    /// never changes, and a group that stands still under `--watch` then costs no fetch.
    private var timestamps: [PartitionOffset: Int64] = [:]
    /// The topic was found in the cluster's metadata once (see checkTopicExists).
    private var topicSeen = false
    /// Brokers in the cluster, as its metadata said on the first read.
    private var brokerCount = 0

    /// Total time the timestamp fetches of one `read()` may take; what is not known by then
    /// is reported as unknown (`lag_ms` null) rather than holding up the counts.
    static let timestampBudgetMs = 3000
    /// Empty groups checked for offsets on this topic per round (each needs a handle of its
    /// own); more are left for the next round of `--watch`, or for `--group`.
    static let emptyGroupChecksPerRound = 32

    struct PartitionOffset: Hashable {
        let partition: Int32
        let offset: Int64
    }

    init(brokers: String, topic: String, partition: Int32?, query: LagQuery) throws {
        if query.processing != nil {
            throw EvtError.usage("--processing is for lists; a Kafka group's position is its committed offset.")
        }
        if query.deadLetter && !query.groups.isEmpty {
            throw EvtError.usage("a --dead-letter topic is shown with its depth (the records it holds), not a group's lag.")
        }
        self.brokers = brokers
        self.topic = topic
        self.partition = partition
        self.query = query
        probe = try KafkaClient(.consumer, brokers: brokers, [
            ("group.id", "evt-lag"),
            // A record deleted (retention) between the watermark query and the fetch: the
            // oldest record still there is then the oldest not consumed.
            ("auto.offset.reset", "earliest"),
            // One record per partition is wanted, not a prefetch: small fetches, a small queue
            // (fetch.max.bytes follows queued.max.messages.kbytes unless -X sets it).
            ("fetch.message.max.bytes", "65536"),
            ("queued.max.messages.kbytes", "1024"),
            ("queued.min.messages", "1"),
            ("fetch.wait.max.ms", "100"),
        ], settings: query.kafka)
        // The named groups' handles now: a property librdkafka refuses fails before any output.
        for group in Self.unique(query.groups) { _ = try groupClient(group) }
    }

    func read() throws -> [LagReport] {
        let partitions = try topicPartitions()
        var marks: [Int32: (low: Int64, high: Int64)] = [:]
        for partition in partitions {
            marks[partition] = try probe.watermarks(topic, partition)
        }
        // A dead-letter topic: its depth, the records it holds, as if no group had read any.
        let groups: [String?]
        if query.deadLetter {
            groups = [nil]
        } else {
            groups = query.groups.isEmpty ? try listedGroups(partitions) : Self.unique(query.groups)
        }

        var reports: [LagReport] = []
        var wanted: Set<PartitionOffset> = []
        for group in groups {
            let committed = try group.map { try committedOffsets($0, partitions) } ?? [:]
            // Beside other sources, a named group that committed nothing here is not this topic's.
            if query.groupsWhereFound && committed.isEmpty { continue }
            var report = LagReport(kind: "topic", name: topic, group: group, lag: 0)
            report.deadLetter = query.deadLetter
            for partition in partitions {
                let (low, high) = marks[partition]!
                let position = committed[partition]
                let lag = max(0, high - (position ?? low))
                report.partitions.append(PartitionLag(partition: partition, committed: position,
                                                      logStart: low, logEnd: high, lag: lag))
                report.lag += lag
                report.position = (report.position ?? 0) + (position ?? low)
                report.produced = (report.produced ?? 0) + high
                // The oldest record not consumed: at the committed offset, or the oldest there
                // is when retention deleted the records up to it (or nothing was committed).
                if lag > 0 { wanted.insert(PartitionOffset(partition: partition, offset: max(position ?? low, low))) }
            }
            reports.append(report)
        }

        timestamps = timestamps.filter { wanted.contains($0.key) }
        try fetchTimestamps(wanted.filter { timestamps[$0] == nil })
        let now = epochMilliseconds()
        for index in reports.indices {
            for slot in reports[index].partitions.indices {
                let lag = reports[index].partitions[slot]
                guard lag.lag > 0 else { continue }
                let at = PartitionOffset(partition: lag.partition, offset: max(lag.committed ?? lag.logStart, lag.logStart))
                // A producer's clock ahead of ours gives a record from the future: age 0.
                reports[index].partitions[slot].lagMs = timestamps[at].map { max(0, now - $0) }
            }
            reports[index].lagMs = reports[index].partitions.compactMap(\.lagMs).max()
        }
        return reports
    }

    /// The partitions asked about: all of the topic, or the one named. A topic that does not
    /// exist is a refusal that names it.
    private func topicPartitions() throws -> [Int32] {
        let all: [Int32]
        do {
            if !topicSeen {
                try checkTopicExists()
                topicSeen = true
            }
            // By name, also after the check above: that lookup is what gives librdkafka the
            // topic's leaders at once (without it, the first fetch waited ~1 s for them; so
            // did every first fetch with enable.sparse.connections=false on this handle).
            all = try probe.partitions(of: topic, refresh: true)
        } catch let error as EvtError where error.cause == .refused(code: "UNKNOWN_TOPIC_OR_PART")
                    || error.cause == .refused(code: "_UNKNOWN_TOPIC") {
            throw EvtError(error.cause, "topic \(topic) does not exist, so it has no lag (brokers \(brokers)).")
        }
        guard !all.isEmpty else {
            throw EvtError(.refused(code: "UNKNOWN_TOPIC_OR_PART"), "topic \(topic) does not exist, so it has no lag (brokers \(brokers)).")
        }
        guard let partition else { return all }
        guard all.contains(partition) else {
            throw EvtError(.refused(code: "UNKNOWN_PARTITION"), "topic \(topic) has no partition \(partition) (it has \(all.count): \(all.first!)–\(all.last!)).")
        }
        return [partition]
    }

    /// The first read asks for the metadata of every topic and looks for this one there:
    /// naming the topic would create it on a broker that answers Metadata below v4 with
    /// auto-creation on (librdkafka's mock among them; newer brokers honour the consumer's
    /// allow.auto.create.topics=false), and `evt lag topic:typo` must not make a topic typo.
    /// Later reads (`--watch`) only ask for this topic.
    private func checkTopicExists() throws {
        let cluster = try probe.clusterTopics(failure: "cannot read the partitions of topic \(topic) (brokers \(brokers))")
        brokerCount = cluster.brokerCount
        // A topic listed with an error of its own (a leader not elected yet) exists: the
        // lookup by name says what is wrong with it.
        guard cluster.topics.contains(topic) else {
            throw EvtError(.refused(code: "UNKNOWN_TOPIC_OR_PART"), "topic \(topic) does not exist, so it has no lag (brokers \(brokers)).")
        }
    }

    private func groupClient(_ group: String) throws -> KafkaClient {
        if let client = groupClients[group] { return client }
        let client = try KafkaClient(.consumer, brokers: brokers, [("group.id", group)], settings: query.kafka)
        groupClients[group] = client
        return client
    }

    /// The group's committed offset per partition; a partition without one is left out
    /// (librdkafka answers RD_KAFKA_OFFSET_INVALID there).
    private func committedOffsets(_ group: String, _ partitions: [Int32]) throws -> [Int32: Int64] {
        let client = try groupClient(group)
        let list = KafkaPartitionList(capacity: partitions.count)
        for partition in partitions { list.add(topic, partition) }
        let err = try client.committed(list, "the committed offsets of group \(group) on \(topic) were known")
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            let hint = KafkaConfig.cause(err) == .connectionLost ? client.brokerErrors.unreachableHint : ""
            throw KafkaConfig.error(err, "cannot read the committed offsets of group \(group) on \(topic): \(KafkaConfig.errorText(err)).\(hint)")
        }
        var offsets: [Int32: Int64] = [:]
        for element in list {
            if element.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaConfig.error(element.err, "cannot read the committed offset of \(topic)/\(element.partition) for group \(group): \(KafkaConfig.errorText(element.err)).")
            }
            if element.offset >= 0 { offsets[element.partition] = element.offset }
        }
        return offsets
    }

    // MARK: Record timestamps

    /// Reads the timestamp of the record at each (partition, offset) into `timestamps`: the
    /// partitions assigned on `probe` at those offsets, one record taken from each. A
    /// partition wanted at several offsets (groups at different positions) is read in rounds,
    /// since an assignment holds a partition once. Bounded by `timestampBudgetMs` in all;
    /// what is not read by then stays unknown.
    private func fetchTimestamps(_ wanted: Set<PartitionOffset>) throws {
        guard !wanted.isEmpty else { return }
        var offsetsByPartition: [Int32: [Int64]] = [:]
        for at in wanted { offsetsByPartition[at.partition, default: []].append(at.offset) }
        for partition in offsetsByPartition.keys { offsetsByPartition[partition]!.sort() }
        let deadline = monotonicMilliseconds() + Self.timestampBudgetMs
        var round = 0
        while monotonicMilliseconds() < deadline {
            var targets: [Int32: Int64] = [:]
            for (partition, offsets) in offsetsByPartition where round < offsets.count {
                targets[partition] = offsets[round]
            }
            guard !targets.isEmpty else { return }
            try fetchRound(targets, deadline: deadline)
            round += 1
        }
    }

    private func fetchRound(_ targets: [Int32: Int64], deadline: Int) throws {
        let assignment = KafkaPartitionList(capacity: targets.count)
        for (partition, offset) in targets { assignment.add(topic, partition, offset: offset) }
        try probe.assign(assignment, reading: "\(topic) to find the age of the lag")
        // Unassigning also drops what was prefetched past the one record wanted.
        defer { probe.unassign() }
        // librdkafka 2.0.2 often fetches a newly assigned partition only when its broker
        // thread next wakes up by itself, about a second later (measured on the mock: 1 s for
        // 6 of 8 first reads). A request to the leaders wakes it (see KafkaFetchWaker): sent
        // after each short empty wait, at first often, then every half second.
        let waker = KafkaFetchWaker(probe)
        var wakes = 0
        var lastWake = 0
        var missing = targets
        while !missing.isEmpty {
            if Signals.stopRequested { throw EvtError(.stopped, "stopped before the lag of topic \(topic) was read.") }
            let left = deadline - monotonicMilliseconds()
            guard left > 0 else { return }
            guard let message = rd_kafka_consumer_poll(probe.handle, Int32(min(10, left))) else {
                // The main queue is not forwarded: its errors (a refusal) are served here.
                try probe.brokerErrors.serve(probe.handle)
                if wakes < 5 || monotonicMilliseconds() - lastWake >= 500 {
                    waker.wake()
                    wakes += 1
                    lastWake = monotonicMilliseconds()
                }
                continue
            }
            defer { rd_kafka_message_destroy(message) }
            if let problem = KafkaMessageError(message, client: probe, topic: topic) {
                if case .refused(let error) = problem { throw error }
                continue   // a partition that cannot be read now: its age stays unknown
            }
            let record = message.pointee
            // The first record at or after the position is the oldest one not consumed
            // (compaction or a transaction marker can leave the position itself empty).
            guard let wantedOffset = missing[record.partition], record.offset >= wantedOffset else { continue }
            missing[record.partition] = nil
            var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            let timestamp = rd_kafka_message_timestamp(message, &type)
            if type != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && timestamp >= 0 {
                timestamps[PartitionOffset(partition: record.partition, offset: wantedOffset)] = timestamp
            }
        }
    }

    // MARK: Groups the broker lists

    /// The consumer groups that read this topic, as the brokers list them: those whose
    /// members are assigned (or subscribed to) the topic, and those without members that have
    /// committed offsets on it. A broker that does not list groups (librdkafka's mock) makes
    /// `--group` necessary.
    private func listedGroups(_ partitions: [Int32]) throws -> [String] {
        let client = try listerClient()
        var listed: UnsafePointer<rd_kafka_group_list>?
        let budgetMs = 5000
        let started = monotonicMilliseconds()
        var slice = 500
        var err: rd_kafka_resp_err_t
        while true {
            let left = started + budgetMs - monotonicMilliseconds()
            // Each call asks every broker again: slices that grow, so that a slow but
            // answering cluster completes one, while a stop signal waits at most one slice.
            err = rd_kafka_list_groups(client.handle, nil, &listed, Int32(max(1, min(slice, left))))
            if err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__PARTIAL { break }
            try client.brokerErrors.serve(client.handle)
            if Signals.stopRequested { throw EvtError(.stopped, "stopped before the groups of topic \(topic) were listed; nothing was read.") }
            let retriable = err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT
            // librdkafka answers UNSUPPORTED_FEATURE for a broker it has not talked to yet (it
            // does not know its API versions); the lister connects to every broker at once,
            // so that only a broker that really lacks ListGroups still says it a second later.
            // With one broker, it is the one that answered the metadata: its answer stands.
            let notConnectedYet = err == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE && brokerCount > 1
                && monotonicMilliseconds() - listerCreatedAt < 1000
            guard (retriable || notConnectedYet) && monotonicMilliseconds() < started + budgetMs else { break }
            Signals.sleep(milliseconds: notConnectedYet ? 100 : 50)
            slice += 500
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__PARTIAL, let listed else {
            throw EvtError.usage("Kafka needs --group here: the broker did not list its consumer groups (librdkafka: \(KafkaConfig.errorText(err)), \(String(cString: rd_kafka_err2name(err)))). Name the groups to show: evt lag topic:\(topic) --group GROUP [--group GROUP]…")
        }
        defer { rd_kafka_group_list_destroy(listed) }
        if err == RD_KAFKA_RESP_ERR__PARTIAL {
            Diagnostics.print("warning: not every Kafka broker listed its groups within \(budgetMs / 1000) s; the groups they coordinate are missing from this round.")
        }

        var readers: [String] = []
        var empty: [String] = []
        for index in 0..<Int(listed.pointee.group_cnt) {
            let info = listed.pointee.groups[index]
            guard info.err == RD_KAFKA_RESP_ERR_NO_ERROR, let name = info.group.map({ String(cString: $0) }) else { continue }
            let protocolType = info.protocol_type.map { String(cString: $0) } ?? ""
            // "consumer" is the protocol of consumer groups; a group that only ever committed
            // offsets (standalone, as kcat's offset tools or evt group-create do) has none.
            guard protocolType == "consumer" || protocolType.isEmpty else { continue }
            if info.member_cnt == 0 {
                empty.append(name)
                continue
            }
            emptyGroupsElsewhere.remove(name)
            let members = UnsafeBufferPointer(start: info.members, count: Int(info.member_cnt))
            if members.contains(where: { member in memberReads(member, topic) }) { readers.append(name) }
        }

        // Groups without members (their consumers stopped: the lag that grows) are known to
        // read the topic only by their committed offsets, one handle each.
        var checked = 0
        var unchecked = 0
        for name in empty where !emptyGroupsElsewhere.contains(name) {
            if groupClients[name] == nil {
                guard checked < Self.emptyGroupChecksPerRound else {
                    unchecked += 1
                    continue
                }
                checked += 1
            }
            if try !committedOffsets(name, partitions).isEmpty {
                readers.append(name)
            } else {
                emptyGroupsElsewhere.insert(name)
                groupClients.removeValue(forKey: name)
            }
        }
        if unchecked > 0 {
            Diagnostics.print("warning: \(unchecked) consumer groups without members were not checked for offsets on \(topic) this round (at most \(Self.emptyGroupChecksPerRound) a round); name them with --group.")
        }
        return readers.sorted()
    }

    private func listerClient() throws -> KafkaClient {
        if let lister { return lister }
        let client = try KafkaClient(.producer, brokers: brokers, [
            // ListGroups goes to every broker, and librdkafka sends it only to brokers whose
            // API versions it knows (see listedGroups).
            ("enable.sparse.connections", "false"),
        ], settings: query.kafka)
        lister = client
        listerCreatedAt = monotonicMilliseconds()
        return client
    }

    /// Whether a member of a "consumer" group reads `topic`: its assignment names it, or,
    /// while it has none yet (a rebalance), its subscription does.
    private func memberReads(_ member: rd_kafka_group_member_info, _ topic: String) -> Bool {
        if let bytes = member.member_assignment, member.member_assignment_size > 0,
           let assigned = Self.assignedPartitions(UnsafeRawBufferPointer(start: bytes, count: Int(member.member_assignment_size))),
           !assigned.isEmpty {
            return assigned[topic] != nil
        }
        if let bytes = member.member_metadata, member.member_metadata_size > 0,
           let subscribed = Self.subscribedTopics(UnsafeRawBufferPointer(start: bytes, count: Int(member.member_metadata_size))) {
            return subscribed.contains(topic)
        }
        return false
    }

    // MARK: ConsumerProtocol bytes

    /// A ConsumerProtocol Assignment (big-endian): int16 version, then an array (int32 count)
    /// of [string topic (int16 length), array of int32 partitions]; user data follows and is
    /// not read. nil when the bytes are not one.
    static func assignedPartitions(_ bytes: UnsafeRawBufferPointer) -> [String: [Int32]]? {
        var reader = ProtocolReader(bytes)
        guard reader.int16() != nil, let topics = reader.arrayCount() else { return nil }
        var result: [String: [Int32]] = [:]
        for _ in 0..<topics {
            guard let topic = reader.string(), let count = reader.arrayCount() else { return nil }
            var partitions: [Int32] = []
            for _ in 0..<count {
                guard let partition = reader.int32() else { return nil }
                partitions.append(partition)
            }
            result[topic, default: []] += partitions
        }
        return result
    }

    /// A ConsumerProtocol Subscription: int16 version, then an array of string topics (user
    /// data and, from version 1, owned partitions follow). nil when the bytes are not one.
    static func subscribedTopics(_ bytes: UnsafeRawBufferPointer) -> [String]? {
        var reader = ProtocolReader(bytes)
        guard reader.int16() != nil, let count = reader.arrayCount() else { return nil }
        var topics: [String] = []
        for _ in 0..<count {
            guard let topic = reader.string() else { return nil }
            topics.append(topic)
        }
        return topics
    }

    private static func unique(_ groups: [String]) -> [String] {
        var seen: Set<String> = []
        return groups.filter { seen.insert($0).inserted }
    }
}

/// Reads Kafka protocol primitives (big-endian) from bytes a broker sent, never past their end.
private struct ProtocolReader {
    let bytes: UnsafeRawBufferPointer
    var at = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func int16() -> Int16? {
        guard at + 2 <= bytes.count else { return nil }
        defer { at += 2 }
        return Int16(bitPattern: UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]))
    }

    mutating func int32() -> Int32? {
        guard at + 4 <= bytes.count else { return nil }
        defer { at += 4 }
        return Int32(bitPattern: (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(bytes[at + $1]) })
    }

    /// An array's element count; a null array (-1) is empty. A count that the remaining bytes
    /// cannot hold (each element takes at least 2 bytes) is not an array.
    mutating func arrayCount() -> Int? {
        guard let count = int32() else { return nil }
        if count < 0 { return 0 }
        guard Int(count) <= (bytes.count - at) / 2 else { return nil }
        return Int(count)
    }

    mutating func string() -> String? {
        guard let length = int16(), length >= 0, at + Int(length) <= bytes.count else { return nil }
        defer { at += Int(length) }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[at..<at + Int(length)]), as: UTF8.self)
    }
}
