internal import CAvro
#if canImport(Glibc)
import Glibc
#endif

extension AvroSchema {
    /// Decodes one Avro binary payload of this schema and appends the Avro specification's
    /// JSON encoding of it, as kafka-avro-console-consumer and fastavro's json_writer write it:
    /// records as objects in field order; an enum as its symbol; a union's null as `null` and
    /// any other branch as `{"BRANCH": value}` (a primitive's name, or a named type's full
    /// name); bytes and fixed as strings of the code points 0–255, one per byte; logical types
    /// (decimal, timestamp-millis, date, uuid, …) as their underlying type.
    ///
    /// Floats and doubles are JSON numbers, as short as reads back to the same value. JSON has
    /// no NaN or infinities: those become the strings `"NaN"`, `"Infinity"` and `"-Infinity"`
    /// (as Jackson writes them for the Java tools), which the encoder reads back.
    ///
    /// Returns false, with `out` as it was, when the payload does not decode: too short,
    /// bytes left over after the value, a branch or symbol the schema does not have, a string
    /// that is not UTF-8. Printing those as raw bytes instead loses nothing.
    func appendJSON(of payload: UnsafeRawBufferPointer, to out: inout [UInt8]) -> Bool {
        // An empty payload still needs an address: any will do for no bytes.
        let source = (payload.baseAddress ?? UnsafeRawPointer(writeBuffer.baseAddress!)).assumingMemoryBound(to: CChar.self)
        avro_reader_memory_set_source(reader, source, Int64(payload.count))
        guard avro_value_read(reader, &value) == 0,
              avro_skip(reader, 1) != 0 else {   // skipping one more byte works only if one is left
            return false
        }
        let start = out.count
        let written = nodes.withUnsafeBufferPointer { nodes in
            withUnsafePointer(to: &value) { AvroJSONWriter(nodes: nodes).append($0, node: 0, to: &out) }
        }
        if !written { out.removeSubrange(start...) }
        return written
    }
}

/// The walk of a value libavro has read, beside the schema's node table, into JSON text.
private struct AvroJSONWriter {
    let nodes: UnsafeBufferPointer<AvroNode>

    func append(_ value: UnsafePointer<avro_value_t>, node index: Int, to out: inout [UInt8]) -> Bool {
        let node = nodes.baseAddress! + index
        switch node.pointee.kind {
        case .null:
            out.append(contentsOf: AvroJSONWriter.null)
        case .boolean:
            var flag: Int32 = 0
            guard evt_avro_get_boolean(value, &flag) == 0 else { return false }
            out.append(contentsOf: flag != 0 ? AvroJSONWriter.true : AvroJSONWriter.false)
        case .int:
            var number: Int32 = 0
            guard evt_avro_get_int(value, &number) == 0 else { return false }
            JSONOutput.appendDecimal(Int(number), to: &out)
        case .long:
            var number: Int64 = 0
            guard evt_avro_get_long(value, &number) == 0 else { return false }
            JSONOutput.appendDecimal(Int(number), to: &out)
        case .float:
            var number: Float = 0
            guard evt_avro_get_float(value, &number) == 0 else { return false }
            if number.isFinite { out.append(contentsOf: number.description.utf8) } else { appendNonFinite(Double(number), to: &out) }
        case .double:
            var number: Double = 0
            guard evt_avro_get_double(value, &number) == 0 else { return false }
            if number.isFinite { out.append(contentsOf: number.description.utf8) } else { appendNonFinite(number, to: &out) }
        case .string:
            var text: UnsafePointer<CChar>?
            var size = 0
            guard evt_avro_get_string(value, &text, &size) == 0, let text, size > 0 else { return false }
            let bytes = UnsafeRawBufferPointer(start: text, count: size - 1)
            guard JSON.isValidUTF8(bytes) else { return false }
            JSONOutput.appendQuoted(bytes, to: &out)
        case .bytes, .fixed:
            var bytes: UnsafeRawPointer?
            var size = 0
            let status = node.pointee.kind == .bytes ? evt_avro_get_bytes(value, &bytes, &size) : evt_avro_get_fixed(value, &bytes, &size)
            guard status == 0 else { return false }
            AvroJSONWriter.appendCodePoints(UnsafeRawBufferPointer(start: bytes, count: size), to: &out)
        case .enumeration:
            var symbol: Int32 = 0
            guard evt_avro_get_enum(value, &symbol) == 0, symbol >= 0, Int(symbol) < node.pointee.labels.count else { return false }
            out.append(contentsOf: node.pointee.labels[Int(symbol)])
        case .record:
            out.append(UInt8(ascii: "{"))
            var field = avro_value_t()
            for index in 0..<node.pointee.children.count {
                guard evt_avro_get_by_index(value, index, &field, nil) == 0 else { return false }
                out.append(contentsOf: node.pointee.labels[index])
                guard append(&field, node: node.pointee.children[index], to: &out) else { return false }
            }
            out.append(UInt8(ascii: "}"))
        case .array:
            var count = 0
            guard evt_avro_get_size(value, &count) == 0 else { return false }
            let items = node.pointee.children[0]
            out.append(UInt8(ascii: "["))
            var item = avro_value_t()
            for index in 0..<count {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                guard evt_avro_get_by_index(value, index, &item, nil) == 0, append(&item, node: items, to: &out) else { return false }
            }
            out.append(UInt8(ascii: "]"))
        case .map:
            var count = 0
            guard evt_avro_get_size(value, &count) == 0 else { return false }
            let values = node.pointee.children[0]
            out.append(UInt8(ascii: "{"))
            var entry = avro_value_t()
            var key: UnsafePointer<CChar>?
            for index in 0..<count {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                guard evt_avro_get_by_index(value, index, &entry, &key) == 0, let key else { return false }
                let keyBytes = UnsafeRawBufferPointer(start: key, count: strlen(key))
                guard JSON.isValidUTF8(keyBytes) else { return false }
                JSONOutput.appendQuoted(keyBytes, to: &out)
                out.append(UInt8(ascii: ":"))
                guard append(&entry, node: values, to: &out) else { return false }
            }
            out.append(UInt8(ascii: "}"))
        case .union:
            var discriminant: Int32 = 0
            var branch = avro_value_t()
            guard evt_avro_get_discriminant(value, &discriminant) == 0, discriminant >= 0,
                  Int(discriminant) < node.pointee.children.count,
                  evt_avro_get_current_branch(value, &branch) == 0 else { return false }
            let child = node.pointee.children[Int(discriminant)]
            out.append(contentsOf: node.pointee.labels[Int(discriminant)])
            if nodes[child].kind != .null {
                guard append(&branch, node: child, to: &out) else { return false }
                out.append(UInt8(ascii: "}"))
            }
        }
        return true
    }

    private func appendNonFinite(_ number: Double, to out: inout [UInt8]) {
        out.append(contentsOf: number.isNaN ? AvroJSONWriter.nan : number < 0 ? AvroJSONWriter.minusInfinity : AvroJSONWriter.infinity)
    }

    /// Bytes as a JSON string of the code points 0–255: ASCII as JSON quotes it, 0x80–0xFF as
    /// the UTF-8 of U+0080–U+00FF.
    static func appendCodePoints(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var runStart = 0
        for index in 0..<bytes.count {
            let byte = bytes[index]
            if byte >= 0x20 && byte < 0x80 && byte != 0x22 && byte != 0x5C { continue }
            if index > runStart { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<index])) }
            runStart = index + 1
            if byte >= 0x80 {
                out.append(0xC0 | (byte >> 6))
                out.append(0x80 | (byte & 0x3F))
            } else {
                // A control character, quote or backslash: escaped as JSON escapes it.
                out.append(UInt8(ascii: "\\"))
                switch byte {
                case 0x22, 0x5C: out.append(byte)
                case 0x0A: out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "t"))
                case 0x08: out.append(UInt8(ascii: "b"))
                case 0x0C: out.append(UInt8(ascii: "f"))
                default:
                    out.append(contentsOf: [UInt8(ascii: "u"), 0x30, 0x30, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]])
                }
            }
        }
        if bytes.count > runStart { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<bytes.count])) }
        out.append(UInt8(ascii: "\""))
    }

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
    static let null: [UInt8] = Array("null".utf8)
    static let `true`: [UInt8] = Array("true".utf8)
    static let `false`: [UInt8] = Array("false".utf8)
    static let nan: [UInt8] = Array("\"NaN\"".utf8)
    static let infinity: [UInt8] = Array("\"Infinity\"".utf8)
    static let minusInfinity: [UInt8] = Array("\"-Infinity\"".utf8)
}
