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
    /// Unescaped strings and names on their way into an encoded record or a comparison.
    var scratch: [UInt8] = []
    /// Where a record's JSON or Avro binary is built before it goes to the caller's buffer.
    var buffer: UnsafeMutablePointer<UInt8>
    var bufferCapacity = 4096

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
        buffer = .allocate(capacity: bufferCapacity)
    }

    deinit {
        buffer.deallocate()
    }
}

/// One type of the schema, worked out once: what AvroFlatPlan's tables are built from, and
/// the names the codec's messages show.
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
    /// Record field names, enum symbols, union branch names, unquoted.
    var names: [[UInt8]] = []
    /// Per record field, its default as JSON text from the schema; nil when it has none.
    var defaults: [[UInt8]?] = []
    /// The size of a fixed.
    var size = 0
}

/// One record's JSON text or Avro binary, built in the buffer the schema keeps: appends that
/// inline to stores, where each append to an Array checks its uniqueness and capacity (~4 000
/// instructions a record of the rich test schema).
struct AvroBytes {
    var base: UnsafeMutablePointer<UInt8>
    var count = 0
    var capacity: Int

    init(base: UnsafeMutablePointer<UInt8>, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    @inline(__always)
    mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(extra) }
    }

    mutating func grow(_ extra: Int) {
        let bigger = max(capacity * 2, count + extra)
        let moved = UnsafeMutablePointer<UInt8>.allocate(capacity: bigger)
        moved.update(from: base, count: count)
        base.deallocate()
        base = moved
        capacity = bigger
    }

    @inline(__always)
    mutating func byte(_ value: UInt8) {
        reserve(1)
        base[count] = value
        count += 1
    }

    @inline(__always)
    mutating func bytes(_ start: UnsafePointer<UInt8>, _ length: Int) {
        reserve(length)
        (base + count).update(from: start, count: length)
        count += length
    }

    @inline(__always)
    mutating func bytes(_ data: UnsafeRawBufferPointer) {
        guard let start = data.baseAddress else { return }
        bytes(start.assumingMemoryBound(to: UInt8.self), data.count)
    }

    /// A zigzag varint: Avro's int, long, and every count and length.
    @inline(__always)
    mutating func varint(_ value: Int64) {
        reserve(10)
        var rest = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        while rest >= 0x80 {
            base[count] = UInt8(truncatingIfNeeded: rest) | 0x80
            count += 1
            rest >>= 7
        }
        base[count] = UInt8(rest)
        count += 1
    }

    /// Writes the zigzag varint of `value` into the one byte kept for it at `offset`: a count
    /// or length known only once what follows is written. Up to 63 fits that byte; a larger
    /// value moves what follows to make room (once per array, map or long bytes value).
    mutating func setVarint(_ value: Int64, inSlotAt offset: Int) {
        if value >= 0 && value < 64 {
            base[offset] = UInt8(value << 1)
            return
        }
        let end = count
        varint(value)
        let length = count - end
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 10) { encoded in
            encoded.baseAddress!.update(from: base + end, count: length)
            (base + offset + length).update(from: base + offset + 1, count: end - offset - 1)   // memmove
            (base + offset).update(from: encoded.baseAddress!, count: length)
        }
        count = end + length - 1
    }

    mutating func decimal(_ value: Int64) {
        reserve(20)
        var magnitude = value.magnitude
        if value < 0 {
            base[count] = UInt8(ascii: "-")
            count += 1
        }
        var digits = 1
        var rest = magnitude / 10
        while rest > 0 { digits += 1; rest /= 10 }
        var position = count + digits - 1
        repeat {
            base[position] = UInt8(ascii: "0") &+ UInt8(magnitude % 10)
            magnitude /= 10
            position -= 1
        } while magnitude > 0
        count += digits
    }

    /// A JSON string of UTF-8 `text` (already checked): runs of plain bytes copied whole.
    mutating func quoted(_ text: UnsafeRawBufferPointer) {
        reserve(text.count + 2)
        base[count] = UInt8(ascii: "\"")
        count += 1
        guard let start = text.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            byte(UInt8(ascii: "\""))
            return
        }
        var runStart = 0
        for index in 0..<text.count {
            let value = start[index]
            if value >= 0x20 && value != 0x22 && value != 0x5C { continue }
            bytes(start + runStart, index - runStart)
            escape(value)
            runStart = index + 1
        }
        bytes(start + runStart, text.count - runStart)
        byte(UInt8(ascii: "\""))
    }

    /// Bytes as a JSON string of the code points 0–255: ASCII as JSON quotes it, 0x80–0xFF as
    /// the UTF-8 of U+0080–U+00FF.
    mutating func codePoints(_ data: UnsafeRawBufferPointer) {
        reserve(data.count * 2 + 2)
        byte(UInt8(ascii: "\""))
        for value in data {
            if value >= 0x80 {
                reserve(2)
                base[count] = 0xC0 | (value >> 6)
                base[count + 1] = 0x80 | (value & 0x3F)
                count += 2
            } else if value >= 0x20 && value != 0x22 && value != 0x5C {
                byte(value)
            } else {
                escape(value)
            }
        }
        byte(UInt8(ascii: "\""))
    }

    /// A control character, quote or backslash, as JSON escapes it.
    mutating func escape(_ value: UInt8) {
        reserve(6)
        base[count] = UInt8(ascii: "\\")
        switch value {
        case 0x22, 0x5C: base[count + 1] = value
        case 0x0A: base[count + 1] = UInt8(ascii: "n")
        case 0x0D: base[count + 1] = UInt8(ascii: "r")
        case 0x09: base[count + 1] = UInt8(ascii: "t")
        case 0x08: base[count + 1] = UInt8(ascii: "b")
        case 0x0C: base[count + 1] = UInt8(ascii: "f")
        default:
            let hex: StaticString = "0123456789abcdef"
            base[count + 1] = UInt8(ascii: "u")
            base[count + 2] = UInt8(ascii: "0")
            base[count + 3] = UInt8(ascii: "0")
            base[count + 4] = hex.utf8Start[Int(value >> 4)]
            base[count + 5] = hex.utf8Start[Int(value & 0xF)]
            count += 6
            return
        }
        count += 2
    }

    /// A float or double, or the string that stands for NaN or an infinity.
    mutating func number(_ value: Double, single: Bool) {
        if value.isNaN {
            text("\"NaN\"")
        } else if value.isInfinite {
            text(value < 0 ? "\"-Infinity\"" : "\"Infinity\"")
        } else {
            // Swift's description is the shortest text that reads back to the same value (of
            // a Float, for a float); up to 15 bytes it is a small string, with no allocation.
            var description = single ? Float(value).description : value.description
            description.withUTF8 { bytes($0.baseAddress!, $0.count) }
        }
    }

    mutating func text(_ literal: StaticString) {
        bytes(literal.utf8Start, literal.utf8CodeUnitCount)
    }
}

/// The node table with no reference-counted parts, so the walks in both directions cost no
/// retains: per node its kind, size (a fixed's bytes) and where its children and labels
/// (names) start in the shared tables.
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

    /// Per label, what the encoder reads JSON with: the name, unquoted, that a member, symbol
    /// or branch must spell, and a record field's default as JSON text (nil without one);
    /// both are ranges of `nameBytes`.
    struct Name {
        var name: Range<Int>
        var defaultText: Range<Int>?
    }

    var names: [Name] = []
    var nameBytes: [UInt8] = []

    init(_ table: [AvroNode]) {
        for node in table {
            nodes.append(Node(kind: node.kind, size: node.size, childStart: children.count, childCount: node.children.count,
                              labelStart: labelOffsets.count - 1, labelCount: node.labels.count))
            children += node.children
            for (index, label) in node.labels.enumerated() {
                labelBytes += label
                labelOffsets.append(labelBytes.count)
                let nameStart = nameBytes.count
                nameBytes += node.names[index]
                var name = Name(name: nameStart..<nameBytes.count)
                if node.kind == .record, let fallback = node.defaults[index] {
                    let defaultStart = nameBytes.count
                    nameBytes += fallback
                    name.defaultText = defaultStart..<nameBytes.count
                }
                names.append(name)
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
