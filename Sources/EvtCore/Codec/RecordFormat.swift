/// The records of CONTRACT.md ("Records: the NDJSON that evt writes"), appended to the
/// output buffer field by field — no intermediate objects, no re-serialisation of payloads.
extension OutputWriter {
    @inline(__always)
    func appendLiteral(_ text: StaticString) {
        buffer.append(contentsOf: UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// `{"list":"jobs","value":…}` and `{"channel":"news","pattern":"n*","value":…}`.
    /// `quotedName` is the JSON string literal of the name, built once per source.
    func appendSimpleRecord(kind: RedisKind, quotedName: [UInt8], value: UnsafeRawBufferPointer) {
        appendRecordHead(kind)
        buffer.append(contentsOf: quotedName)
        appendSimpleTail(pattern: nil, value: value)
    }

    /// The same, quoting a name that differs from record to record (pattern subscriptions).
    func appendSimpleRecord(kind: RedisKind, name: UnsafeRawBufferPointer, pattern: UnsafeRawBufferPointer? = nil,
                            value: UnsafeRawBufferPointer) {
        appendRecordHead(kind)
        JSONOutput.appendStringOrB64(name, to: &buffer)
        appendSimpleTail(pattern: pattern, value: value)
    }

    private func appendRecordHead(_ kind: RedisKind) {
        switch kind {
        case .list: appendLiteral("{\"list\":")
        case .channel: appendLiteral("{\"channel\":")
        case .stream: appendLiteral("{\"stream\":")
        }
    }

    private func appendSimpleTail(pattern: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer) {
        if let pattern {
            appendLiteral(",\"pattern\":")
            JSONOutput.appendQuoted(pattern, to: &buffer)
        }
        buffer.append(UInt8(ascii: ","))
        JSONOutput.appendPayload(value, name: .value, to: &buffer)
        appendLiteral("}\n")
    }

    /// `{"stream":"orders","id":"…","value":{` — then `appendStreamField` per field, then
    /// `endStreamEntry`.
    func beginStreamEntry(quotedName: UnsafeRawBufferPointer, id: UnsafeRawBufferPointer) {
        appendLiteral("{\"stream\":")
        buffer.append(contentsOf: quotedName)
        appendLiteral(",\"id\":\"")
        buffer.append(contentsOf: id)   // ids are digits and a dash: nothing to escape
        appendLiteral("\",\"value\":{")
    }

    func appendStreamField(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer?, first: Bool) {
        if !first { buffer.append(UInt8(ascii: ",")) }
        appendMemberName(name)
        buffer.append(UInt8(ascii: ":"))
        JSONOutput.appendStringOrB64(value, to: &buffer)
    }

    /// A stream field or Kafka header name as an object key. A JSON key must be a string,
    /// so a name that is not UTF-8 is written as "b64:BASE64" (documented in evt(1)).
    func appendMemberName(_ name: UnsafeRawBufferPointer) {
        if JSON.isValidUTF8(name) {
            JSONOutput.appendQuoted(name, to: &buffer)
        } else {
            appendLiteral("\"b64:")
            Base64.append(name, to: &buffer)
            buffer.append(UInt8(ascii: "\""))
        }
    }

    func endStreamEntry(deliveries: Int? = nil) {
        buffer.append(UInt8(ascii: "}"))
        if let deliveries {
            appendLiteral(",\"deliveries\":")
            JSONOutput.appendDecimal(deliveries, to: &buffer)
        }
        appendLiteral("}\n")
    }

    /// `{"topic":"orders","partition":0,"offset":42,"timestamp":…,"key":…,` — then headers
    /// (optional) and `endKafkaRecord(value:)`.
    func beginKafkaRecord(quotedTopic: [UInt8], partition: Int32, offset: Int64, timestamp: Int64?,
                          key: UnsafeRawBufferPointer?) {
        appendLiteral("{\"topic\":")
        buffer.append(contentsOf: quotedTopic)
        appendLiteral(",\"partition\":")
        JSONOutput.appendDecimal(Int(partition), to: &buffer)
        appendLiteral(",\"offset\":")
        JSONOutput.appendDecimal(Int(offset), to: &buffer)
        appendLiteral(",\"timestamp\":")
        if let timestamp { JSONOutput.appendDecimal(Int(timestamp), to: &buffer) } else { appendLiteral("null") }
        buffer.append(UInt8(ascii: ","))
        JSONOutput.appendPayload(key, name: .key, to: &buffer)
    }

    func endKafkaRecord(value: UnsafeRawBufferPointer?) {
        buffer.append(UInt8(ascii: ","))
        JSONOutput.appendPayload(value, name: .value, to: &buffer)
        appendLiteral("}\n")
    }

    /// `,"headers":{"a":"1","b":["2","3"]}` from `count` headers read by `header(i)` (none:
    /// nothing): a name that occurs more than once maps to an array of its values in order.
    func appendKafkaHeaders(count: Int, _ header: (Int) -> (name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer?)) {
        guard count > 0 else { return }
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
            let repeated = (index + 1..<count).contains { header($0).name.elementsEqual(current.name) }
            if !repeated {
                JSONOutput.appendStringOrB64(current.value, to: &buffer)
                continue
            }
            buffer.append(UInt8(ascii: "["))
            JSONOutput.appendStringOrB64(current.value, to: &buffer)
            for other in index + 1..<count where header(other).name.elementsEqual(current.name) {
                buffer.append(UInt8(ascii: ","))
                JSONOutput.appendStringOrB64(header(other).value, to: &buffer)
            }
            buffer.append(UInt8(ascii: "]"))
        }
        buffer.append(UInt8(ascii: "}"))
    }

    /// A record a source handed over (a Kafka record, a stream entry, a list item, a channel
    /// message), in the shape `tail` and `subscribe` print it.
    func appendRecord(_ record: Record) {
        switch record.origin {
        case .kafka:
            beginKafkaRecord(quotedTopic: record.quotedSource, partition: record.partition, offset: record.offset,
                             timestamp: record.timestamp, key: record.key)
            let headers = record.headers
            headers.bytes.withUnsafeBytes { bytes in
                appendKafkaHeaders(count: headers.entries.count) { index in
                    let entry = headers.entries[index]
                    return (UnsafeRawBufferPointer(rebasing: bytes[entry.name]),
                            entry.value.map { UnsafeRawBufferPointer(rebasing: bytes[$0]) })
                }
            }
            endKafkaRecord(value: record.value)
        case .stream:
            record.quotedSource.withUnsafeBytes { beginStreamEntry(quotedName: $0, id: record.id) }
            record.fields.forEachField { appendStreamField($0, $1, first: $2) }
            endStreamEntry(deliveries: record.deliveries)
        case .list:
            appendSimpleRecord(kind: .list, quotedName: record.quotedSource, value: record.value ?? UnsafeRawBufferPointer(start: nil, count: 0))
        case .channel:
            appendSimpleRecord(kind: .channel, name: record.channel, pattern: record.pattern,
                               value: record.value ?? UnsafeRawBufferPointer(start: nil, count: 0))
        }
    }

    /// The JSON string literal of a source name, built once.
    static func quoted(_ name: String) -> [UInt8] {
        var out: [UInt8] = []
        var name = name
        name.withUTF8 { JSONOutput.appendQuoted(UnsafeRawBufferPointer($0), to: &out) }
        return out
    }
}
