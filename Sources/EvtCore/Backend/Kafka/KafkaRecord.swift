#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

extension OutputWriter {
    /// One consumed message as a record (CONTRACT.md): topic, partition, offset, timestamp,
    /// key, headers when there are any, value.
    func appendKafkaRecord(_ message: UnsafeMutablePointer<rd_kafka_message_t>, quotedTopic: [UInt8]) {
        let record = message.pointee
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &timestampType)
        let key = record.key.map { UnsafeRawBufferPointer(start: $0, count: record.key_len) }
        let value = record.payload.map { UnsafeRawBufferPointer(start: $0, count: record.len) }
        beginKafkaRecord(quotedTopic: quotedTopic, partition: record.partition, offset: record.offset,
                                timestamp: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp,
                                key: key)
        var headers: OpaquePointer?
        if rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers {
            appendKafkaHeaders(count: rd_kafka_header_cnt(headers)) { index in
                var name: UnsafePointer<CChar>?
                var value: UnsafeRawPointer?
                var size = 0
                _ = rd_kafka_header_get_all(headers, index, &name, &value, &size)
                return (UnsafeRawBufferPointer(start: name, count: name.map { strlen($0) } ?? 0),
                        value.map { UnsafeRawBufferPointer(start: $0, count: size) })
            }
        }
        endKafkaRecord(value: value)
    }
}
