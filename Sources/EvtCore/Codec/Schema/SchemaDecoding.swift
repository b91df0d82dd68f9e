/// `--schema-registry` on a read (tail, subscribe, replay-from-offset, claim-pending, and a
/// copy's source): a record's framed key and value whose schema the registry knows are
/// handed on as their JSON (CONTRACT.md, "Schemas"), with the schema ids on the record, before
/// `--match` looks at them and before a target writes them.
///
/// Anything else goes on as it came: a key or value without the framing, with an id the
/// registry does not know, or whose payload does not decode. Stderr says so once per schema
/// id; reading never stops for it.
final class SchemaDecoding {
    private let codecs: SchemaCodecs
    private let warn: (String) -> Void
    private var keyText: [UInt8] = []
    private var valueText: [UInt8] = []
    private var warned: Set<Int32> = []
    private var entryFields: [StreamFields.Field] = []
    private var idText: [UInt8] = []

    init(codecs: SchemaCodecs, warn: @escaping (String) -> Void = Diagnostics.print) {
        self.codecs = codecs
        self.warn = warn
    }

    /// Calls `body` with `record`, its key and value decoded where they can be; the record
    /// points at its own bytes again afterwards.
    @inline(__always)
    func handOver<Result>(_ record: Record, _ body: (Record) throws -> Result) rethrows -> Result {
        if record.origin == .stream { return try handOverEntry(record, body) }
        let keyID = decode(record.key, into: &keyText, record: record, what: "key")
        let valueID = decode(record.value, into: &valueText, record: record, what: "value")
        if keyID == nil && valueID == nil { return try body(record) }
        let key = record.key
        let value = record.value
        defer {
            record.key = key
            record.value = value
            record.keySchemaID = nil
            record.valueSchemaID = nil
        }
        return try keyText.withUnsafeBytes { keyText in
            try valueText.withUnsafeBytes { valueText in
                if let keyID {
                    record.key = keyText
                    record.keySchemaID = keyID
                }
                if let valueID {
                    record.value = valueText
                    record.valueSchemaID = valueID
                }
                return try body(record)
            }
        }
    }

    /// A stream entry whose `value` (`key`) field is framed: the field holds its JSON text,
    /// with a `value.schema_id` (`key.schema_id`) field after it, as a copy from a topic
    /// writes it (RecordMapping).
    private func handOverEntry<Result>(_ record: Record, _ body: (Record) throws -> Result) rethrows -> Result {
        var valueID: Int32?
        var keyID: Int32?
        for field in record.fields {
            if field.name.elementsEqual(RecordMapping.value) {
                valueID = decode(field.value, into: &valueText, record: record, what: "value field")
            } else if field.name.elementsEqual(RecordMapping.key) {
                keyID = decode(field.value, into: &keyText, record: record, what: "key field")
            }
        }
        if valueID == nil && keyID == nil { return try body(record) }
        // Kept from entry to entry: no allocation per entry once they have grown.
        var original = entryFields
        entryFields = []
        original.removeAll(keepingCapacity: true)
        original.append(contentsOf: record.fields)
        defer {
            record.fields.replace(with: original)
            entryFields = original
        }
        idText.removeAll(keepingCapacity: true)
        if let valueID { JSONOutput.appendDecimal(Int(valueID), to: &idText) }
        let valueIDEnd = idText.count
        if let keyID { JSONOutput.appendDecimal(Int(keyID), to: &idText) }
        return try keyText.withUnsafeBytes { keyText in
            try valueText.withUnsafeBytes { valueText in
                try idText.withUnsafeBytes { ids in
                    record.fields.removeAll()
                    for field in original {
                        if valueID != nil, field.name.elementsEqual(RecordMapping.value) {
                            record.fields.append(field.name, valueText)
                            RecordMapping.valueSchemaID.withUnsafeBytes { record.fields.append($0, UnsafeRawBufferPointer(rebasing: ids[..<valueIDEnd])) }
                        } else if keyID != nil, field.name.elementsEqual(RecordMapping.key) {
                            record.fields.append(field.name, keyText)
                            RecordMapping.keySchemaID.withUnsafeBytes { record.fields.append($0, UnsafeRawBufferPointer(rebasing: ids[valueIDEnd...])) }
                        } else {
                            record.fields.append(field.name, field.value)
                        }
                    }
                    return try body(record)
                }
            }
        }
    }

    /// The schema id of `bytes` when they decode, their JSON text then in `text`.
    @inline(__always)
    private func decode(_ bytes: UnsafeRawBufferPointer?, into text: inout [UInt8], record: Record, what: String) -> Int32? {
        guard let bytes, let (id, payload) = SchemaFraming.unframe(bytes) else { return nil }
        text.removeAll(keepingCapacity: true)
        switch codecs.codec(id: id) {
        case .avro(let schema):
            if schema.appendJSON(of: payload, to: &text) { return id }
            warnOnce(id, record, what, "it is framed with Avro schema \(id) but does not decode with it")
        case .json:
            if QuickCheck.kind(of: payload) != nil {
                text.append(contentsOf: payload)
                return id
            }
            warnOnce(id, record, what, "it is framed with JSON schema \(id) but is not JSON")
        case .unusable(let error):
            warnOnce(id, record, what, "it is framed with schema \(id), which evt cannot use: \(clause(error.message))")
        }
        return nil
    }

    private func warnOnce(_ id: Int32, _ record: Record, _ what: String, _ reason: String) {
        guard warned.insert(id).inserted else { return }
        warn("the \(what) of \(Self.place(of: record)) is printed as it is: \(reason). Other records with schema \(id) are printed the same way, without another warning.")
    }

    /// `topic orders partition 3 offset 42`, `list jobs`, `channel news`.
    static func place(of record: Record) -> String {
        let name = String(decoding: record.quotedSource.dropFirst().dropLast(), as: UTF8.self)
        switch record.origin {
        case .kafka: return "topic \(String(decoding: record.topic, as: UTF8.self)) partition \(record.partition) offset \(record.offset)"
        case .stream: return "stream \(name) entry \(String(decoding: record.id, as: UTF8.self))"
        case .list: return "list \(name)"
        case .channel: return "channel \(String(decoding: record.channel, as: UTF8.self))"
        }
    }
}
