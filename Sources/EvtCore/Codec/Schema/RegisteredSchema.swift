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
