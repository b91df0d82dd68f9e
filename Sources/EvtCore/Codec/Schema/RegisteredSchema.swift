/// The kinds of schema a Confluent registry holds: its `schemaType`, which it leaves out
/// for Avro.
enum SchemaType: String, Sendable, Equatable {
    case avro = "AVRO"
    case json = "JSON"
    case protobuf = "PROTOBUF"
}

/// A schema as the registry holds it: the id that frames records written with it, and its
/// text exactly as it was registered (the registry normalises nothing by default).
struct RegisteredSchema: Sendable, Equatable {
    var id: Int32
    var type: SchemaType
    var text: String
}

extension SchemaType {
    /// What the registry takes to register or look up `schema`: `{"schema":"…","schemaType":"…"}`,
    /// Avro's type left out, as Confluent's clients do.
    func registrationBody(_ schema: String) -> [UInt8] {
        var body = Array(#"{"schema":"#.utf8)
        var schema = schema
        schema.withUTF8 { JSONOutput.appendQuoted(UnsafeRawBufferPointer($0), to: &body) }
        if self != .avro { body += Array(#","schemaType":""#.utf8) + Array(rawValue.utf8) + [UInt8(ascii: "\"")] }
        body.append(UInt8(ascii: "}"))
        return body
    }
}
