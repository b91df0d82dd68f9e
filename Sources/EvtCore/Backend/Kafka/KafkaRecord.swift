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
