#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

/// `evt ls` on a Kafka cluster: one metadata request for every topic (brokers, partitions,
/// leaders, replicas, ISR; the controller and cluster id come with it), then the watermarks of
/// every listed partition in two ListOffsets rounds (earliest, then latest), each one request
/// per leader broker for all its partitions: `rd_kafka_offsets_for_times` with the timestamps
/// -2 and -1, which every broker (and librdkafka 2.0.2's mock) answers with the log start and
/// end. rd_kafka_query_watermark_offsets would cost two round trips per partition.
enum KafkaInventoryReader {
    static func read(brokers: String, topicGlobs: [String]?, kafka: KafkaSettings) throws -> KafkaInventory {
        // A consumer only because isolation.level is a consumer's property: read_uncommitted
        // makes "latest" the high watermark (what the log holds), not the last stable offset.
        let client = try KafkaClient(.consumer, brokers: brokers, [("isolation.level", "read_uncommitted")], settings: kafka)
        let handle = client.handle
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = try client.brokerErrors.request("the topics of the Kafka cluster at \(brokers) were known", client: handle) {
            rd_kafka_metadata(handle, 1, nil, &metadata, $0)
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaConfig.error(err, "cannot read the metadata of the Kafka cluster at \(brokers): \(KafkaConfig.errorText(err)).\(client.brokerErrors.unreachableHint)")
        }
        defer { rd_kafka_metadata_destroy(metadata) }

        var inventory = KafkaInventory(bootstrap: brokers, brokers: [], topics: [])
        for index in 0..<Int(metadata.pointee.broker_cnt) {
            let broker = metadata.pointee.brokers[index]
            inventory.brokers.append(.init(id: broker.id, host: String(cString: broker.host), port: Int(broker.port)))
        }
        inventory.brokers.sort { $0.id < $1.id }
        // Both came with the metadata answer (librdkafka keeps them): no further request.
        if let id = rd_kafka_clusterid(handle, 0) {
            inventory.clusterID = String(cString: id)
            rd_kafka_mem_free(handle, id)
        }
        let controller = rd_kafka_controllerid(handle, 0)
        inventory.controller = controller >= 0 ? controller : nil

        guard let globs = topicGlobs else { return inventory }
        for index in 0..<Int(metadata.pointee.topic_cnt) {
            let topic = metadata.pointee.topics[index]
            let name = String(cString: topic.topic)
            guard isListed(name, globs) else { continue }
            let partitions = (0..<Int(topic.partition_cnt)).map { at -> KafkaInventory.Partition in
                let partition = topic.partitions[at]
                return .init(partition: partition.id, leader: partition.leader,
                             replicas: Array(UnsafeBufferPointer(start: partition.replicas, count: Int(partition.replica_cnt))),
                             isr: Array(UnsafeBufferPointer(start: partition.isrs, count: Int(partition.isr_cnt))))
            }.sorted { $0.partition < $1.partition }
            inventory.topics.append(.init(name: name, partitions: partitions))
        }
        inventory.topics.sort { $0.name < $1.name }
        try readWatermarks(&inventory, client: client)
        return inventory
    }

    /// Internal topics (`__consumer_offsets`, `__transaction_state`, …) only when a pattern
    /// that starts with `__` names them.
    static func isListed(_ name: String, _ globs: [String]) -> Bool {
        if name.hasPrefix("__") {
            return InventoryPatterns.matches(name, globs.filter { $0.hasPrefix("__") })
        }
        return InventoryPatterns.matches(name, globs)
    }

    /// Fills in log_start and log_end of every partition that has a leader.
    private static func readWatermarks(_ inventory: inout KafkaInventory, client: KafkaClient) throws {
        var wanted: [(topic: Int, partition: Int)] = []
        for (topicIndex, topic) in inventory.topics.enumerated() {
            for (partitionIndex, partition) in topic.partitions.enumerated() where partition.leader >= 0 {
                wanted.append((topicIndex, partitionIndex))
            }
        }
        guard !wanted.isEmpty else { return }
        // Both rounds at once, the log starts on a thread of their own: librdkafka parses and
        // files each round's answer in the calling thread, and evt ls of 500 topics × 16
        // partitions on the mock spent ~0.4–0.6 s of CPU in its own process. Measured there,
        // best of 3 on a loaded 2-core machine: 0.51 s in parallel, 0.66 s one round after the
        // other, the same output.
        let snapshot = inventory
        let startRound = RoundResult()
        let thread = try BackgroundThread("to read the log starts") {
            startRound.result = Result { try offsets(Int64(RD_KAFKA_OFFSET_BEGINNING), of: wanted, in: snapshot, client: client) }
        }
        let endRound = Result { try offsets(Int64(RD_KAFKA_OFFSET_END), of: wanted, in: inventory, client: client) }
        thread.join()
        let starts = try startRound.result!.get()
        let ends = try endRound.get()
        var unknown: [String] = []
        for (at, place) in wanted.enumerated() {
            if let start = starts[at], let end = ends[at] {
                inventory.topics[place.topic].partitions[place.partition].logStart = start
                inventory.topics[place.topic].partitions[place.partition].logEnd = end
            } else {
                unknown.append("\(inventory.topics[place.topic].name)/\(inventory.topics[place.topic].partitions[place.partition].partition)")
            }
        }
        if !unknown.isEmpty {
            Diagnostics.print("warning: the leaders of \(unknown.count) partition\(unknown.count == 1 ? "" : "s") did not give their watermarks (\(unknown.prefix(5).joined(separator: ", "))\(unknown.count > 5 ? ", …" : "")); log_start and log_end are null there.")
        }
    }

    /// One round's answer, handed from its thread to the caller after the thread was joined.
    private final class RoundResult: @unchecked Sendable {
        var result: Result<[Int64?], Error>?
    }

    /// The offset each leader answers for `timestamp` (-2 the log start, -1 the log end), in
    /// the order of `wanted`; nil where a partition's answer was an error. A fresh list per
    /// attempt: librdkafka writes the answers into the list it is given, over the timestamps.
    private static func offsets(_ timestamp: Int64, of wanted: [(topic: Int, partition: Int)],
                                in inventory: KafkaInventory, client: KafkaClient) throws -> [Int64?] {
        var answered: KafkaPartitionList?
        let handle = client.handle
        let err = try client.brokerErrors.request("the watermarks of the topics were known", client: handle) { slice in
            let list = KafkaPartitionList(capacity: wanted.count)
            for place in wanted {
                list.add(inventory.topics[place.topic].name, inventory.topics[place.topic].partitions[place.partition].partition,
                         offset: timestamp)
            }
            answered = list
            return list.withListPointer { rd_kafka_offsets_for_times(handle, $0, slice) }
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let answered else {
            let hint = KafkaConfig.cause(err) == .connectionLost ? client.brokerErrors.unreachableHint : ""
            throw KafkaConfig.error(err, "cannot read the watermarks of the topics of \(inventory.bootstrap): \(KafkaConfig.errorText(err)).\(hint)")
        }
        var byPartition: [String: [Int32: Int64]] = [:]
        for element in answered where element.err == RD_KAFKA_RESP_ERR_NO_ERROR && element.offset >= 0 {
            byPartition[element.topic, default: [:]][element.partition] = element.offset
        }
        return wanted.map { place in
            let topic = inventory.topics[place.topic]
            return byPartition[topic.name]?[topic.partitions[place.partition].partition]
        }
    }
}
