/// `--value-schema`/`--key-schema` on a write (publish; copies and replays into a topic), and
/// an envelope's `value_schema_id`/`key_schema_id` (CONTRACT.md, "Schemas"): each JSON value
/// (key) is encoded with its schema and framed with the schema's id. A value that does not fit
/// is a bad line, with the path of the field and what was expected there.
final class SchemaEncoding {
    private let codecs: SchemaCodecs
    /// The schema every value (key) is written with; nil leaves it to the event's own id.
    private let valueSchema: Int32?
    private let keySchema: Int32?
    /// What the schemas are called in messages: `Avro schema 7 (orders-value)`.
    private let names: [Int32: String]
    private var valueBytes: [UInt8] = []
    private var keyBytes: [UInt8] = []
    private var quoted: [UInt8] = []

    init(codecs: SchemaCodecs, valueSchema: Int32?, keySchema: Int32?, names: [Int32: String] = [:]) {
        self.codecs = codecs
        self.valueSchema = valueSchema
        self.keySchema = keySchema
        self.names = names
    }

    /// Calls `body` with `event`, its value and key encoded where a schema applies.
    func encode(_ event: borrowing OutgoingEvent, _ body: (borrowing OutgoingEvent) throws -> Void) throws {
        let valueID = event.valueIsNull ? nil : valueSchema ?? event.valueSchemaID
        let keyID = event.key == nil ? nil : keySchema ?? event.keySchemaID
        if valueID == nil && keyID == nil { return try body(event) }
        if let valueID {
            try encode(event.value, kind: event.valueKind, id: valueID, into: &valueBytes, what: "value")
        }
        if let keyID, let key = event.key {
            try encode(key, kind: event.keyKind, id: keyID, into: &keyBytes, what: "key")
        }
        var encoded = copy event
        try valueBytes.withUnsafeBytes { value in
            try keyBytes.withUnsafeBytes { key in
                if valueID != nil {
                    encoded.value = value
                    encoded.valueKind = nil   // framed bytes now, not JSON to interpret
                }
                if keyID != nil {
                    encoded.key = key
                    encoded.keyKind = nil
                }
                encoded.valueSchemaID = nil
                encoded.keySchemaID = nil
                try body(encoded)
            }
        }
    }

    /// `json` (of `kind`; nil: the text of a string) encoded with schema `id`, framed, into `out`.
    private func encode(_ json: UnsafeRawBufferPointer, kind: JSONKind?, id: Int32, into out: inout [UInt8], what: String) throws {
        guard kind == nil else { return try encode(json: json, id: id, into: &out, what: what) }
        // The text of a string (`--raw`, an envelope's string value): as a JSON string.
        var quoted = self.quoted
        self.quoted = []
        defer { self.quoted = quoted }
        quoted.removeAll(keepingCapacity: true)
        JSONOutput.appendQuoted(json, to: &quoted)
        try quoted.withUnsafeBytes { try encode(json: $0, id: id, into: &out, what: what) }
    }

    private func encode(json: UnsafeRawBufferPointer, id: Int32, into out: inout [UInt8], what: String) throws {
        out.removeAll(keepingCapacity: true)
        SchemaFraming.appendHeader(id: id, to: &out)
        switch codecs.codec(id: id) {
        case .avro(let schema):
            do {
                try schema.encode(json: json, appendingTo: &out)
            } catch {
                throw BadLine(reason: "the \(what) does not fit \(name(id, "Avro")): \(error)", column: nil)
            }
        case .json(let validator):
            switch validator {
            case .success(let validator):
                if let mismatch = validator.check(json) {
                    throw BadLine(reason: "the \(what) does not fit \(name(id, "JSON")): \(mismatch)", column: nil)
                }
                out.append(contentsOf: json)
            case .failure(let error):
                throw EvtError(error.cause, "cannot check values against JSON schema \(id): \(error.message)")
            }
        case .unusable(let error):
            throw EvtError(error.cause, "cannot encode with schema \(id): \(error.message)")
        }
    }

    /// `Avro schema 7 (orders-value)`; a local file's (a dry run's, id < 0): `Avro schema order.avsc`.
    private func name(_ id: Int32, _ kind: String) -> String {
        if id < 0, let name = names[id] { return "\(kind) schema \(name)" }
        return "\(kind) schema \(id)" + (names[id].map { " (\($0))" } ?? "")
    }
}
