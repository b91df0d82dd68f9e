/// The schemas of one run by id, each parsed once, ready to decode and encode (CONTRACT.md,
/// "Schemas": a schema fetched by id is cached for the run). What cannot be used (an id the
/// registry does not know, a schema that does not parse, a kind evt does not read) is kept
/// too, with its reason, so it is asked for once.
final class SchemaCodecs {
    enum Codec {
        case avro(AvroSchema)
        /// JSON Schema: the payload is the JSON text itself. Writing validates it first, with
        /// the schema compiled, or refuses with why it does not compile.
        case json(Result<JSONSchemaValidator, EvtError>)
        case unusable(EvtError)
    }

    private let fetch: (Int32) throws(EvtError) -> RegisteredSchema
    private var byID: [Int32: Codec] = [:]
    // The last id asked for: most runs read one schema, and a dictionary lookup per record
    // would cost more than the check.
    private var lastID: Int32 = 0
    private var lastCodec: Codec = .unusable(EvtError(.usage, "no schema"))

    /// `fetch`: the registry's schema for an id (SchemaRegistry.schema(id:)).
    init(fetch: @escaping (Int32) throws(EvtError) -> RegisteredSchema) {
        self.fetch = fetch
    }

    func codec(id: Int32) -> Codec {
        if id == lastID { return lastCodec }
        let codec = byID[id] ?? load(id)
        lastID = id
        lastCodec = codec
        return codec
    }

    private func load(_ id: Int32) -> Codec {
        let codec: Codec
        do {
            let schema = try fetch(id)
            switch schema.type {
            case .avro:
                var text = schema.text
                codec = try text.withUTF8 { (bytes) throws(EvtError) -> Codec in
                    .avro(try AvroSchema(json: UnsafeRawBufferPointer(bytes), invalidCause: .badInput))
                }
            case .json:
                var text = schema.text
                codec = .json(text.withUTF8 { bytes in
                    Result { () throws(EvtError) in try JSONSchemaValidator(schema: UnsafeRawBufferPointer(bytes)) }
                })
            case .protobuf:
                codec = .unusable(EvtError(.refused(code: "PROTOBUF"), "schema \(id) is a Protobuf schema, which evt does not decode yet"))
            }
        } catch let error as EvtError {
            codec = .unusable(error)
        } catch {
            codec = .unusable(EvtError(.badInput, "schema \(id): \(error)"))
        }
        byID[id] = codec
        return codec
    }
}
