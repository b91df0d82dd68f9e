/// The records of CONTRACT.md ("Records: the NDJSON that evt writes"), appended to the
/// output buffer field by field — no intermediate objects, no re-serialisation of payloads.
extension OutputWriter {
    @inline(__always)
    func appendLiteral(_ text: StaticString) {
        buffer.append(contentsOf: UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    private func appendRecordHead(_ kind: RedisKind) {
        switch kind {
        case .list: appendLiteral("{\"list\":")
        case .channel: appendLiteral("{\"channel\":")
        case .stream: appendLiteral("{\"stream\":")
        }
    }

    /// The rest of `{"list":"jobs","value":…}` and `{"channel":"news","pattern":"n*","value":…}`,
    /// after the name.
    private func appendSimpleTail(pattern: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer,
                                  valueSchemaID: Int32? = nil) {
        if let pattern {
            appendLiteral(",\"pattern\":")
            JSONOutput.appendQuoted(pattern, to: &buffer)
        }
        buffer.append(UInt8(ascii: ","))
        appendPayload(value, name: .value, schemaID: valueSchemaID)
        appendLiteral("}\n")
    }

    /// `"value":…` (or `"key":…`), and for a payload a schema decoded, its JSON text as it is
    /// and `,"value_schema_id":N` after it.
    @inline(__always)
    private func appendPayload(_ bytes: UnsafeRawBufferPointer?, name: JSONOutput.PayloadName, schemaID: Int32?) {
        guard let schemaID, let bytes else { return JSONOutput.appendPayload(bytes, name: name, to: &buffer) }
        appendLiteral(name == .value ? "\"value\":" : "\"key\":")
        buffer.append(contentsOf: bytes)
        appendLiteral(name == .value ? ",\"value_schema_id\":" : ",\"key_schema_id\":")
        JSONOutput.appendDecimal(Int(schemaID), to: &buffer)
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
                          key: UnsafeRawBufferPointer?, keySchemaID: Int32? = nil) {
        appendLiteral("{\"topic\":")
        buffer.append(contentsOf: quotedTopic)
        appendLiteral(",\"partition\":")
        JSONOutput.appendDecimal(Int(partition), to: &buffer)
        appendLiteral(",\"offset\":")
        JSONOutput.appendDecimal(Int(offset), to: &buffer)
        appendLiteral(",\"timestamp\":")
        if let timestamp { JSONOutput.appendDecimal(Int(timestamp), to: &buffer) } else { appendLiteral("null") }
        buffer.append(UInt8(ascii: ","))
        appendPayload(key, name: .key, schemaID: keySchemaID)
    }

    func endKafkaRecord(value: UnsafeRawBufferPointer?, valueSchemaID: Int32? = nil) {
        buffer.append(UInt8(ascii: ","))
        appendPayload(value, name: .value, schemaID: valueSchemaID)
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
                             timestamp: record.timestamp, key: record.key, keySchemaID: record.keySchemaID)
            let headers = record.headers
            headers.bytes.withUnsafeBytes { bytes in
                appendKafkaHeaders(count: headers.entries.count) { index in
                    let entry = headers.entries[index]
                    return (UnsafeRawBufferPointer(rebasing: bytes[entry.name]),
                            entry.value.map { UnsafeRawBufferPointer(rebasing: bytes[$0]) })
                }
            }
            endKafkaRecord(value: record.value, valueSchemaID: record.valueSchemaID)
        case .stream:
            record.quotedSource.withUnsafeBytes { beginStreamEntry(quotedName: $0, id: record.id) }
            record.fields.forEachField { appendStreamField($0, $1, first: $2) }
            endStreamEntry(deliveries: record.deliveries)
        case .list:
            appendRecordHead(.list)
            buffer.append(contentsOf: record.quotedSource)
            appendSimpleTail(pattern: nil, value: record.value ?? UnsafeRawBufferPointer(start: nil, count: 0),
                             valueSchemaID: record.valueSchemaID)
        case .channel:
            appendRecordHead(.channel)
            JSONOutput.appendStringOrB64(record.channel, to: &buffer)
            appendSimpleTail(pattern: record.pattern, value: record.value ?? UnsafeRawBufferPointer(start: nil, count: 0),
                             valueSchemaID: record.valueSchemaID)
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
