#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

/// `evt group-delete topic:T GROUP`: librdkafka's admin DeleteGroups (rd_kafka_DeleteGroups),
/// on a client of its own, its answer read from a queue of its own in half-second slices so
/// that a stop signal or a refusing broker ends the wait.
///
/// Written as librdkafka 2.0.2 documents it; only the refusal of its mock cluster (which has
/// no DeleteGroups) was run here, not a real broker's deletion.
enum KafkaGroupDeletion {
    static func delete(group: String, brokers: String, kafka: KafkaSettings) throws {
        // librdkafka 2.0.2 aborts the process on a broker without DeleteGroups (see
        // KafkaApiVersions): ask a plaintext broker first. Over TLS or SASL it is not asked.
        let protocolName = kafka.properties.last { $0.0 == "security.protocol" }?.1.lowercased() ?? "plaintext"
        if protocolName == "plaintext", let keys = KafkaApiVersions.keys(of: brokers),
           !keys.contains(KafkaApiVersions.deleteGroups) {
            throw refusal(RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE, detail: "its ApiVersions answer lists no DeleteGroups (API key 42)",
                          group: group, brokers: brokers)
        }
        let client = try KafkaClient(.producer, brokers: brokers, [], settings: kafka)
        guard let queue = rd_kafka_queue_new(client.handle) else {
            throw EvtError(.refused(code: ""), "cannot make a librdkafka queue to delete group \(group).")
        }
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(client.handle, RD_KAFKA_ADMIN_OP_DELETEGROUPS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        var errorText = [CChar](repeating: 0, count: 256)
        _ = rd_kafka_AdminOptions_set_request_timeout(options, 15_000, &errorText, errorText.count)
        let request = rd_kafka_DeleteGroup_new(group)
        defer { rd_kafka_DeleteGroup_destroy(request) }
        var requests: [OpaquePointer?] = [request]
        requests.withUnsafeMutableBufferPointer { rd_kafka_DeleteGroups(client.handle, $0.baseAddress, 1, options, queue) }

        let deadline = monotonicMilliseconds() + 20_000
        while monotonicMilliseconds() < deadline {
            if Signals.stopRequested { throw EvtError(.stopped, "stopped before the broker answered; group \(group) may or may not have been deleted (kafka-consumer-groups --list shows).") }
            try client.brokerErrors.serve(client.handle)
            guard let event = rd_kafka_queue_poll(queue, 500) else { continue }
            defer { rd_kafka_event_destroy(event) }
            let err = rd_kafka_event_error(event)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                let detail = rd_kafka_event_error_string(event).map { String(cString: $0) } ?? KafkaConfig.errorText(err)
                throw refusal(err, detail: detail, group: group, brokers: brokers)
            }
            guard let result = rd_kafka_event_DeleteGroups_result(event) else { continue }
            var count = 0
            guard let groups = rd_kafka_DeleteGroups_result_groups(result, &count) else { return }
            for index in 0..<count {
                guard let answer = groups[index], let error = rd_kafka_group_result_error(answer) else { continue }
                let code = rd_kafka_error_code(error)
                guard code != RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
                let detail = rd_kafka_error_string(error).map { String(cString: $0) } ?? KafkaConfig.errorText(code)
                throw refusal(code, detail: detail, group: group, brokers: brokers)
            }
            return
        }
        throw EvtError(.connectionLost, "the brokers at \(brokers) did not answer the deletion of group \(group) within 20 s; it may or may not have been deleted (kafka-consumer-groups --list shows).")
    }

    /// The broker's (or librdkafka's) refusal, explained, with its code as the cause.
    private static func refusal(_ err: rd_kafka_resp_err_t, detail: String, group: String, brokers: String) -> EvtError {
        let why: String
        switch err {
        case RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND:
            why = "Kafka has no group \(group) (kafka-consumer-groups --list lists them)."
        case RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP:
            why = "group \(group) has active members, and Kafka deletes only an empty group: stop its consumers first."
        case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE, RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
            why = "the broker at \(brokers) does not support DeleteGroups (Kafka 1.1 and newer do; librdkafka's mock cluster, which evt sandbox runs, does not). Nothing was deleted; on such a broker a group without members expires after offsets.retention.minutes."
        case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
            why = "the broker does not allow this client to delete group \(group) (it needs the DELETE permission on the group)."
        case RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
            why = "the group's coordinator is not available now; try again."
        default:
            why = "the broker refused."
        }
        return KafkaConfig.error(err, "cannot delete group \(group): \(why) (\(KafkaConfig.errorText(err)): \(detail))")
    }
}
