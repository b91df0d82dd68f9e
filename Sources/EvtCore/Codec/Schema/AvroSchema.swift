internal import CAvro

/// An Avro schema, ready to turn payloads of it into evt's JSON and JSON back into payloads
/// (AvroDecoding.swift, AvroEncoding.swift). Payloads carry no framing: the caller strips the
/// registry's magic byte and schema id.
///
/// libavro parses the schema (and says what is wrong with one); evt then walks a table of its
/// types in both directions itself, which measured 3 to 5 times fewer instructions than
/// libavro's generic values (the two files say how). An instance keeps the buffers a record
/// is built in, so a record allocates nothing: that reuse makes it single-threaded, one per
/// reader or writer loop.
final class AvroSchema {
    /// The schema's types: node 0 is the root.
    let nodes: [AvroNode]
    /// The same table as plain numbers and bytes, for the decoder's walk.
    let flat: AvroFlatPlan
    /// Unescaped strings and numbers on their way into an encoded record.
    var scratch: [UInt8] = []
    /// Where the decoder writes a record's JSON before it goes to the caller's buffer.
    var decodeBuffer: UnsafeMutablePointer<UInt8>
    var decodeCapacity = 4096

    /// Parses `json`, an Avro schema. A schema libavro rejects throws its reason, with
    /// `invalidCause` as the cause: `.usage` for a schema file named on the command line,
    /// `.badInput` for one that came with the data; the caller knows which.
    init(json: UnsafeRawBufferPointer, invalidCause: FailureCause = .usage) throws(EvtError) {
        var parsed: avro_schema_t?
        let status = json.withMemoryRebound(to: CChar.self) { text in
            avro_schema_from_json_length(text.baseAddress, text.count, &parsed)
        }
        guard status == 0, let parsed else {
            let reason = avro_strerror().map { String(cString: $0) } ?? "no reason given"
            throw EvtError(invalidCause, "the Avro schema does not parse: \(reason); fix its JSON (the Avro specification, \"Schema Declaration\", says what it may hold)")
        }
        defer { avro_schema_decref(parsed) }
        var builder = AvroPlanBuilder(defaults: AvroFieldDefaults.collect(fromSchemaJSON: json))
        _ = builder.node(for: parsed)
        nodes = builder.nodes
        flat = AvroFlatPlan(nodes)
        decodeBuffer = .allocate(capacity: decodeCapacity)
    }

    deinit {
        decodeBuffer.deallocate()
    }
}

/// One type of the schema, with what the walks in both directions need of it, worked out once.
struct AvroNode {
    enum Kind { case null, boolean, int, long, float, double, bytes, string, record, enumeration, array, map, union, fixed }

    var kind: Kind
    /// The name a union branch of this type has in the JSON encoding: the primitive's name
    /// (`string`, `array`, `map`) or a named type's full name (`com.acme.Customer`).
    var name: String
    /// Record fields, union branches, or the one type of array items and map values.
    var children: [Int] = []
    /// What the decoder writes, pre-quoted: per record field `"name":` (with the comma that
    /// separates it from the one before), per enum symbol `"SYMBOL"`, per union branch
    /// `{"BRANCH":` (`null` for the null branch).
    var labels: [[UInt8]] = []
    /// Record field names, enum symbols, union branch names, unquoted: what the encoder
    /// matches JSON against.
    var names: [[UInt8]] = []
    /// Per record field, its default as JSON text from the schema; nil when it has none.
    var defaults: [[UInt8]?] = []
    /// The size of a fixed.
    var size = 0
}

/// The node table with no reference-counted parts, so the decoder's walk costs no retains:
/// per node its kind, size (a fixed's bytes) and where its children and labels start in
/// the shared tables.
struct AvroFlatPlan {
    struct Node {
        var kind: AvroNode.Kind
        var size: Int
        var childStart: Int
        var childCount: Int
        var labelStart: Int
        var labelCount: Int
    }

    var nodes: [Node] = []
    var children: [Int] = []
    /// Label i is labelBytes[labelOffsets[i]..<labelOffsets[i + 1]].
    var labelOffsets: [Int] = [0]
    var labelBytes: [UInt8] = []

    init(_ table: [AvroNode]) {
        for node in table {
            nodes.append(Node(kind: node.kind, size: node.size, childStart: children.count, childCount: node.children.count,
                              labelStart: labelOffsets.count - 1, labelCount: node.labels.count))
            children += node.children
            for label in node.labels {
                labelBytes += label
                labelOffsets.append(labelBytes.count)
            }
        }
    }
}

/// Builds the node table from libavro's schema: one node per named type (references, which
/// libavro gives as links, point at it), so recursive schemas make a finite table.
private struct AvroPlanBuilder {
    var nodes: [AvroNode] = []
    var namedNodes: [UnsafeMutableRawPointer: Int] = [:]
    let defaults: [String: [[UInt8]: [UInt8]]]

    init(defaults: [String: [[UInt8]: [UInt8]]]) { self.defaults = defaults }

    mutating func node(for given: avro_schema_t) -> Int {
        var schema = given
        while evt_avro_schema_type(schema) == AVRO_LINK { schema = avro_schema_link_target(schema) }
        let key = UnsafeMutableRawPointer(schema)
        if let known = namedNodes[key] { return known }
        let type = evt_avro_schema_type(schema)
        let index = nodes.count
        var node: AvroNode
        switch type {
        case AVRO_RECORD, AVRO_ENUM, AVRO_FIXED:
            let name = String(cString: avro_schema_name(schema))
            let space = avro_schema_namespace(schema).map { String(cString: $0) } ?? ""
            let fullName = space.isEmpty || name.contains(".") ? name : space + "." + name
            node = AvroNode(kind: type == AVRO_RECORD ? .record : type == AVRO_ENUM ? .enumeration : .fixed, name: fullName)
            namedNodes[key] = index
        case AVRO_UNION: node = AvroNode(kind: .union, name: "union")
        case AVRO_ARRAY: node = AvroNode(kind: .array, name: "array")
        case AVRO_MAP: node = AvroNode(kind: .map, name: "map")
        case AVRO_STRING: node = AvroNode(kind: .string, name: "string")
        case AVRO_BYTES: node = AvroNode(kind: .bytes, name: "bytes")
        case AVRO_INT32: node = AvroNode(kind: .int, name: "int")
        case AVRO_INT64: node = AvroNode(kind: .long, name: "long")
        case AVRO_FLOAT: node = AvroNode(kind: .float, name: "float")
        case AVRO_DOUBLE: node = AvroNode(kind: .double, name: "double")
        case AVRO_BOOLEAN: node = AvroNode(kind: .boolean, name: "boolean")
        default: node = AvroNode(kind: .null, name: "null")
        }
        nodes.append(node)   // a placeholder while the children are built
        switch node.kind {
        case .record:
            let fieldDefaults = defaults[node.name] ?? [:]
            for field in 0..<avro_schema_record_size(schema) {
                let name = Array(String(cString: avro_schema_record_field_name(schema, Int32(field))).utf8)
                node.children.append(self.node(for: avro_schema_record_field_get_by_index(schema, Int32(field))))
                node.names.append(name)
                node.labels.append((field == 0 ? [] : [UInt8(ascii: ",")]) + quoted(name) + [UInt8(ascii: ":")])
                node.defaults.append(fieldDefaults[name])
            }
        case .enumeration:
            for symbol in 0..<avro_schema_enum_number_of_symbols(schema) {
                let name = Array(String(cString: avro_schema_enum_get(schema, symbol)).utf8)
                node.names.append(name)
                node.labels.append(quoted(name))
            }
        case .union:
            for branch in 0..<avro_schema_union_size(schema) {
                let child = self.node(for: avro_schema_union_branch(schema, Int32(branch)))
                let name = Array(nodes[child].name.utf8)
                node.children.append(child)
                node.names.append(name)
                node.labels.append(nodes[child].kind == .null ? Array("null".utf8) : [UInt8(ascii: "{")] + quoted(name) + [UInt8(ascii: ":")])
            }
        case .array:
            node.children = [self.node(for: avro_schema_array_items(schema))]
        case .map:
            node.children = [self.node(for: avro_schema_map_values(schema))]
        case .fixed:
            node.size = Int(avro_schema_fixed_size(schema))
        default:
            break
        }
        nodes[index] = node
        return index
    }

    private func quoted(_ name: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        name.withUnsafeBytes { JSONOutput.appendQuoted($0, to: &out) }
        return out
    }
}

/// Record fields' defaults, read from the schema's JSON text: libavro parses them but keeps
/// no way to ask for them.
enum AvroFieldDefaults {
    /// Record full name → field name → the default's JSON text. Empty for text that is not
    /// JSON (libavro has refused it by then).
    static func collect(fromSchemaJSON json: UnsafeRawBufferPointer) -> [String: [[UInt8]: [UInt8]]] {
        guard (try? JSON.validate(json)) != nil else { return [:] }
        var found: [String: [[UInt8]: [UInt8]]] = [:]
        visit(JSON.trimmedValue(json), in: json, namespace: "", into: &found)
        return found
    }

    private static func visit(_ value: (range: Range<Int>, kind: JSONKind), in bytes: UnsafeRawBufferPointer,
                              namespace: String, into found: inout [String: [[UInt8]: [UInt8]]]) {
        let text = UnsafeRawBufferPointer(rebasing: bytes[value.range])
        switch value.kind {
        case .array:
            JSON.forEachElement(ofArray: text) { range, kind in
                visit((shift(range, by: value.range.lowerBound), kind), in: bytes, namespace: namespace, into: &found)
            }
        case .object:
            var inner = namespace
            let type = string(member: "type", of: value, in: bytes)
            if let type, ["record", "error", "enum", "fixed"].contains(type), let name = string(member: "name", of: value, in: bytes) {
                let space: String
                if let dot = name.lastIndex(of: ".") {
                    space = String(name[..<dot])
                } else {
                    space = string(member: "namespace", of: value, in: bytes) ?? namespace
                }
                let fullName = name.contains(".") || space.isEmpty ? name : space + "." + name
                inner = space
                if type != "enum" && type != "fixed", let fields = JSON.member(Array("fields".utf8), of: value, in: bytes), fields.kind == .array {
                    var defaults: [[UInt8]: [UInt8]] = [:]
                    JSON.forEachElement(ofArray: UnsafeRawBufferPointer(rebasing: bytes[fields.range])) { range, kind in
                        let field = (shift(range, by: fields.range.lowerBound), kind)
                        if let fieldName = string(member: "name", of: field, in: bytes),
                           let fallback = JSON.member(Array("default".utf8), of: field, in: bytes) {
                            defaults[Array(fieldName.utf8)] = Array(bytes[fallback.range])
                        }
                    }
                    found[fullName] = defaults
                }
            }
            JSON.forEachMember(ofObject: text) { key, range, kind in
                // A default is data, not schema: a record in it names no type.
                guard kind == .object || kind == .array, !text[key].elementsEqual("\"default\"".utf8) else { return }
                visit((shift(range, by: value.range.lowerBound), kind), in: bytes, namespace: inner, into: &found)
            }
        default:
            break
        }
    }

    private static func shift(_ range: Range<Int>, by offset: Int) -> Range<Int> {
        (range.lowerBound + offset)..<(range.upperBound + offset)
    }

    private static func string(member name: String, of value: (range: Range<Int>, kind: JSONKind),
                               in bytes: UnsafeRawBufferPointer) -> String? {
        guard let found = JSON.member(Array(name.utf8), of: value, in: bytes), found.kind == .string else { return nil }
        var out: [UInt8] = []
        JSON.appendUnescaped(stringLiteral: UnsafeRawBufferPointer(rebasing: bytes[found.range]), to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
