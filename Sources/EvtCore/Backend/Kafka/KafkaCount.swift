internal import CRdKafka

/// `evt count` of a topic (or one partition) from its watermarks: log_end − log_start per
/// partition. Exact only when every offset holds a record: a compacted topic has gaps, and
/// transactional markers occupy offsets too, so the count is called exact only when the
/// topic's cleanup.policy (DescribeConfigs) is known and has no `compact`.
enum KafkaCount {
    static func fromWatermarks(brokers: String, topic: String, partition: Int32?, kafka: KafkaSettings) throws -> SourceCount {
        let client = try KafkaClient(.consumer, brokers: brokers, [("group.id", "evt-count")], settings: kafka)
        let partitions = try partition.map { [$0] } ?? client.partitions(of: topic)
        var result = SourceCount(kind: "topic", name: topic, partitions: [:])
        for partition in partitions {
            let (low, high) = try client.watermarks(topic, partition)
            result.partitions![partition] = max(0, high - low)
            result.count += max(0, high - low)
        }
        switch cleanupPolicy(topic, client: client) {
        case .success(let policy):
            result.exact = !policy.split(separator: ",").contains { $0.filter { $0 != " " } == "compact" }
            if !result.exact {
                Diagnostics.print("note: topic \(topic) is compacted (cleanup.policy=\(policy)), so its offsets have gaps; evt count --exact counts its records by reading them.")
            }
        case .failure(let reason):
            result.exact = false
            Diagnostics.print("note: cannot tell whether topic \(topic) is compacted (DescribeConfigs: \(reason.reason)), so the count from its watermarks may include offsets without a record; evt count --exact counts by reading.")
        }
        return result
    }

    private struct Unknown: Error { let reason: String }

    /// How long DescribeConfigs may take before the topic's compaction is called unknown.
    static let answerWaitMs = 2000

    /// The topic's cleanup.policy, asked of the cluster with DescribeConfigs.
    private static func cleanupPolicy(_ topic: String, client: KafkaClient) -> Result<String, Unknown> {
        guard let resource = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic) else {
            return .failure(Unknown(reason: "cannot make the request"))
        }
        defer { rd_kafka_ConfigResource_destroy(resource) }
        let queue = rd_kafka_queue_new(client.handle)!
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(client.handle, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        var errorText = [CChar](repeating: 0, count: 256)
        // A broker answers at once; librdkafka's mock never does (it lacks DescribeConfigs).
        _ = rd_kafka_AdminOptions_set_request_timeout(options, Int32(answerWaitMs), &errorText, errorText.count)
        var resources: [OpaquePointer?] = [resource]
        rd_kafka_DescribeConfigs(client.handle, &resources, 1, options, queue)
        guard let event = rd_kafka_queue_poll(queue, Int32(answerWaitMs + 1000)) else {
            return .failure(Unknown(reason: "no answer in \(answerWaitMs / 1000) s"))
        }
        defer { rd_kafka_event_destroy(event) }
        let err = rd_kafka_event_error(event)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let answer = rd_kafka_event_DescribeConfigs_result(event) else {
            return .failure(Unknown(reason: KafkaConfig.errorText(err)))
        }
        var count = 0
        guard let described = rd_kafka_DescribeConfigs_result_resources(answer, &count), count == 1,
              let config = described[0] else {
            return .failure(Unknown(reason: "an empty answer"))
        }
        let configErr = rd_kafka_ConfigResource_error(config)
        guard configErr == RD_KAFKA_RESP_ERR_NO_ERROR else { return .failure(Unknown(reason: KafkaConfig.errorText(configErr))) }
        var entryCount = 0
        guard let entries = rd_kafka_ConfigResource_configs(config, &entryCount) else { return .failure(Unknown(reason: "no entries")) }
        for index in 0..<entryCount {
            guard let entry = entries[index], let name = rd_kafka_ConfigEntry_name(entry),
                  String(cString: name) == "cleanup.policy" else { continue }
            return .success(rd_kafka_ConfigEntry_value(entry).map { String(cString: $0) } ?? "delete")
        }
        return .failure(Unknown(reason: "no cleanup.policy in the answer"))
    }
}
