#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

extension Record {
    /// Points the record at one consumed message (CONTRACT.md): partition, offset, timestamp,
    /// key, headers, value. The topic is set by the reader, once per topic; the buffers are
    /// the message's, valid until it is destroyed.
    func point(at message: UnsafeMutablePointer<rd_kafka_message_t>) {
        let raw = message.pointee
        partition = raw.partition
        offset = raw.offset
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let time = rd_kafka_message_timestamp(message, &type)
        timestamp = type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : time
        key = raw.key.map { UnsafeRawBufferPointer(start: $0, count: raw.key_len) }
        value = raw.payload.map { UnsafeRawBufferPointer(start: $0, count: raw.len) }
        keySchemaID = nil
        valueSchemaID = nil
        headers.removeAll()
        var messageHeaders: OpaquePointer?
        if rd_kafka_message_headers(message, &messageHeaders) == RD_KAFKA_RESP_ERR_NO_ERROR, let messageHeaders {
            for index in 0..<rd_kafka_header_cnt(messageHeaders) {
                var name: UnsafePointer<CChar>?
                var headerValue: UnsafeRawPointer?
                var size = 0
                _ = rd_kafka_header_get_all(messageHeaders, index, &name, &headerValue, &size)
                headers.append(name: UnsafeRawBufferPointer(start: name, count: name.map { strlen($0) } ?? 0),
                               value: headerValue.map { UnsafeRawBufferPointer(start: $0, count: size) })
            }
        }
    }
}

/// What a consumed message that carries an error (`err`) instead of a record means for a
/// read, decided by librdkafka's code: the one place a reader (KafkaReader), a subscriber
/// (KafkaConsumer) and the lag's age probe (KafkaLag) tell such messages apart. What each
/// does with them is the caller's.
enum KafkaMessageError {
    /// The end of a partition was reached (enable.partition.eof): nothing to hand over.
    case partitionEnd
    /// The brokers refused the client (authentication, TLS, no broker at any address): filed
    /// with the run's broker errors, and the error that ends the command.
    case refused(EvtError)
    /// The topic or partition does not exist or may not be read: waiting does not help.
    case unreadable(EvtError)
    /// Anything else (a broker down, an offset out of range, …): librdkafka retries it.
    case transient(EvtError)

    /// Nil for a message that is a record. `topic`: the topic read, when the message does not
    /// name one.
    init?(_ message: UnsafeMutablePointer<rd_kafka_message_t>, client: KafkaClient, topic: String? = nil) {
        let raw = message.pointee
        switch raw.err {
        case RD_KAFKA_RESP_ERR_NO_ERROR:
            return nil
        case RD_KAFKA_RESP_ERR__PARTITION_EOF:
            self = .partitionEnd
            return
        default:
            break
        }
        if client.brokerErrors.noteRefusal(message, client: client.handle), let refused = client.brokerErrors.refused() {
            self = .refused(refused)
            return
        }
        let topic = raw.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? topic ?? "?"
        let error = KafkaConfig.error(raw.err, "reading \(topic)\(raw.partition >= 0 ? "/\(raw.partition)" : ""): \(KafkaConfig.errorText(raw.err)).")
        switch raw.err {
        case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
            self = .unreadable(error)
        default:
            self = .transient(error)
        }
    }
}
