import Testing
@testable import EvtCore

/// The write step of `--value-schema`, with schemas from an in-memory table.
@Suite("schema encoding of published values")
struct SchemaEncodingTests {
    static func codecs() -> SchemaCodecs {
        SchemaCodecs(fetch: { (id) throws(EvtError) -> RegisteredSchema in
            switch id {
            case 1: return RegisteredSchema(id: 1, type: .avro, text: SchemaDecodingTests.orderSchema)
            case 2: return RegisteredSchema(id: 2, type: .json, text: #"{"type":"object"}"#)
            case 3: return RegisteredSchema(id: 3, type: .avro, text: #""string""#)
            default: throw EvtError(.refused(code: "40403"), "the registry has no schema \(id)")
            }
        })
    }

    /// What the sink gets for `line` read by an InputDecoder in `mode`, encoded.
    func sent(_ line: String, mode: InputDecoder.Mode = .json, valueSchema: Int32? = nil, keySchema: Int32? = nil) throws -> (value: [UInt8], key: [UInt8]?) {
        let encoding = SchemaEncoding(codecs: Self.codecs(), valueSchema: valueSchema, keySchema: keySchema,
                                      names: [1: "orders-value"])
        var result: (value: [UInt8], key: [UInt8]?) = ([], nil)
        var bytes = Array(line.utf8)
        try bytes.withUnsafeMutableBytes { line in
            try InputDecoder(mode: mode, keyPath: nil).decode(UnsafeRawBufferPointer(line), number: 1) { event in
                try encoding.encode(event) { encoded in
                    result = (Array(encoded.value), encoded.key.map(Array.init))
                }
            }
        }
        return result
    }

    @Test("a natural JSON value encodes to the bytes confluent-kafka's AvroSerializer makes")
    func avro() throws {
        #expect(try sent(#"{"id":42,"item":"book","note":"gift","qty":3}"#, valueSchema: 1).value == SchemaDecodingTests.orderBytes)
        // The union named, as tail prints it: the same bytes.
        #expect(try sent(#"{"id":42,"item":"book","note":{"string":"gift"},"qty":3}"#, valueSchema: 1).value == SchemaDecodingTests.orderBytes)
    }

    @Test("a string with escaped quotes and backslashes ends where its closing quote is")
    func escapes() throws {
        // "a\"b\\" then "c\\\"": the text a"b\ and c\", each with its length.
        let expected: [UInt8] = [0, 0, 0, 0, 3, 8] + Array(#"a"b\"#.utf8)
        #expect(try sent(#""a\"b\\""#, valueSchema: 3).value == expected)
        #expect(try sent(#""c\\\"""#, valueSchema: 3).value == [0, 0, 0, 0, 3, 6] + Array(#"c\""#.utf8))
        #expect(try sent(#"{"id":1,"item":"\"q\"","note":"x\\","qty":2}"#, valueSchema: 1).value
                == [0, 0, 0, 0, 1, 2, 6] + Array(#""q""#.utf8) + [2, 4] + Array(#"x\"#.utf8) + [4])
    }

    @Test("an envelope's value_schema_id encodes its value again; a string value is a JSON string")
    func envelope() throws {
        let line = #"{"topic":"orders","key":"k","value":{"id":42,"item":"book","note":{"string":"gift"},"qty":3},"value_schema_id":1}"#
        let sent = try sent(line, mode: .envelope)
        #expect(sent.value == SchemaDecodingTests.orderBytes)
        #expect(sent.key == Array("k".utf8), "the key has no schema: as it was")
        #expect(try self.sent(#"{"value":"hi","value_schema_id":3}"#, mode: .envelope).value == [0, 0, 0, 0, 3, 4] + Array("hi".utf8))
        #expect(try self.sent(#"{"value":{"a":1},"value_schema_id":2}"#, mode: .envelope).value == [0, 0, 0, 0, 2] + Array(#"{"a":1}"#.utf8))
        // --value-schema wins over the record's own id; a key schema encodes the key.
        #expect(try self.sent(#"{"key":"k","value":"hi","value_schema_id":1}"#, mode: .envelope, valueSchema: 3, keySchema: 3)
                == ([0, 0, 0, 0, 3, 4] + Array("hi".utf8), [0, 0, 0, 0, 3, 2] + Array("k".utf8)))
    }

    @Test("a value that does not fit is a bad line naming the schema, the field and what was expected")
    func mismatch() throws {
        do {
            _ = try sent(#"{"id":42,"item":"book","note":null,"qty":"three"}"#, valueSchema: 1)
            Issue.record("accepted")
        } catch let bad as BadLine {
            #expect(bad.reason.hasPrefix("the value does not fit Avro schema 1 (orders-value): .qty: expected int"), "\(bad.reason)")
        }
        do {
            _ = try sent(#"{"value":1,"value_schema_id":0}"#, mode: .envelope)
            Issue.record("accepted")
        } catch let bad as BadLine {
            #expect(bad.reason.contains("value_schema_id must be a registry's schema id"), "\(bad.reason)")
        }
    }
}
