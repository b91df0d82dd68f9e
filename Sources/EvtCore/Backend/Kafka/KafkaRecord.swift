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
            appendKafkaHeaders(headers)
        }
        endKafkaRecord(value: value)
    }

    /// `"headers":{"a":"1","b":["2","3"]}`: a name that occurs more than once maps to an
    /// array of its values in order.
    private func appendKafkaHeaders(_ headers: OpaquePointer) {
        let count = rd_kafka_header_cnt(headers)
        guard count > 0 else { return }
        func header(_ index: Int) -> (name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer?) {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            _ = rd_kafka_header_get_all(headers, index, &name, &value, &size)
            let nameBytes = UnsafeRawBufferPointer(start: name, count: name.map { strlen($0) } ?? 0)
            return (nameBytes, value.map { UnsafeRawBufferPointer(start: $0, count: size) })
        }
        appendLiteral(",\"headers\":{")
        var firstMember = true
        for index in 0..<count {
            let current = header(index)
            // Skip names already written as part of an earlier array.
            if (0..<index).contains(where: { header($0).name.elementsEqual(current.name) }) { continue }
            if !firstMember { buffer.append(UInt8(ascii: ",")) }
            firstMember = false
            appendMemberName(current.name)
            buffer.append(UInt8(ascii: ":"))
            let repeats = (index + 1..<count).filter { header($0).name.elementsEqual(current.name) }
            if repeats.isEmpty {
                JSONOutput.appendStringOrB64(current.value, to: &buffer)
            } else {
                buffer.append(UInt8(ascii: "["))
                JSONOutput.appendStringOrB64(current.value, to: &buffer)
                for other in repeats {
                    buffer.append(UInt8(ascii: ","))
                    JSONOutput.appendStringOrB64(header(other).value, to: &buffer)
                }
                buffer.append(UInt8(ascii: "]"))
            }
        }
        buffer.append(UInt8(ascii: "}"))
    }
}
