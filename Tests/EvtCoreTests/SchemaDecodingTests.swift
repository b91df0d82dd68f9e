import Testing
@testable import EvtCore

/// The read step of `--schema-registry`, with schemas from an in-memory table (the registry
/// client and the codecs have suites of their own; end-to-end tests use confluent-kafka's
/// serializers and a registry fixture).
@Suite("schema decoding of read records")
struct SchemaDecodingTests {
    /// confluent-kafka 2.16.1's AvroSerializer, schema id 1, value
    /// {"id":42,"item":"book","note":"gift","qty":3} (SWIFT-C-NOTES.md, "Schema Registry wire format").
    static let orderSchema = #"{"type":"record","name":"Order","fields":[{"name":"id","type":"int"},{"name":"item","type":"string"},{"name":"note","type":["null","string"]},{"name":"qty","type":"int"}]}"#
    static let orderBytes: [UInt8] = [0x00, 0, 0, 0, 1, 0x54, 0x08] + Array("book".utf8) + [0x02, 0x08] + Array("gift".utf8) + [0x06]

    final class Run {
        var warnings: [String] = []
        var fetched: [Int32] = []
        lazy var decoding = SchemaDecoding(codecs: SchemaCodecs(fetch: { [unowned self] (id) throws(EvtError) -> RegisteredSchema in
            self.fetched.append(id)
            switch id {
            case 1: return RegisteredSchema(id: 1, type: .avro, text: SchemaDecodingTests.orderSchema)
            case 2: return RegisteredSchema(id: 2, type: .json, text: #"{"type":"object"}"#)
            default: throw EvtError(.refused(code: "40403"), "the registry has no schema \(id)")
            }
        }), warn: { [unowned self] in self.warnings.append($0) })

        /// The NDJSON `tail` prints for a Kafka record with this key and value.
        func line(key: [UInt8]?, value: [UInt8]?) -> String {
            let record = Record()
            record.quotedSource = OutputWriter.quoted("orders")
            record.topic = Array("orders".utf8)
            record.offset = 7
            let writer = OutputWriter(fd: -1, flushThreshold: 0)
            (key ?? []).withUnsafeBytes { keyBytes in
                (value ?? []).withUnsafeBytes { valueBytes in
                    record.key = key == nil ? nil : keyBytes
                    record.value = value == nil ? nil : valueBytes
                    decoding.handOver(record) { writer.appendRecord($0) }
                    // Afterwards the record is its source's again.
                    #expect(record.value?.baseAddress == (value == nil ? nil : valueBytes.baseAddress))
                    #expect(record.valueSchemaID == nil && record.keySchemaID == nil)
                }
            }
            return String(decoding: writer.buffer, as: UTF8.self)
        }
    }

    @Test("a framed Avro value is its JSON encoding, with value_schema_id; a framed key too")
    func avro() {
        let run = Run()
        #expect(run.line(key: Array("k".utf8), value: Self.orderBytes)
                == #"{"topic":"orders","partition":0,"offset":7,"timestamp":null,"key":"k","value":{"id":42,"item":"book","note":{"string":"gift"},"qty":3},"value_schema_id":1}"# + "\n")
        #expect(run.line(key: Self.orderBytes, value: nil)
                == #"{"topic":"orders","partition":0,"offset":7,"timestamp":null,"key":{"id":42,"item":"book","note":{"string":"gift"},"qty":3},"key_schema_id":1,"value":null}"# + "\n")
        #expect(run.warnings.isEmpty)
        #expect(run.fetched == [1], "a schema is fetched once for the run")
    }

    @Test("a framed JSON Schema value is its JSON text")
    func json() {
        let run = Run()
        #expect(run.line(key: nil, value: [0, 0, 0, 0, 2] + Array(#"{"id":7}"#.utf8))
                == #"{"topic":"orders","partition":0,"offset":7,"timestamp":null,"key":null,"value":{"id":7},"value_schema_id":2}"# + "\n")
    }

    @Test("what does not decode is printed as without a registry, with one warning per schema id")
    func undecodable() {
        let run = Run()
        let unknown: [UInt8] = [0, 0, 0, 0, 9, 1, 2]
        let raw = #"{"topic":"orders","partition":0,"offset":7,"timestamp":null,"key":null,"value":"\u0000\u0000\u0000\u0000\t\u0001\u0002"}"# + "\n"
        #expect(run.line(key: nil, value: unknown) == raw)
        #expect(run.line(key: nil, value: unknown) == raw)
        #expect(run.warnings.count == 1)
        #expect(run.warnings.first?.contains("schema 9") == true && run.warnings.first?.contains("topic orders partition 0 offset 7") == true,
                "\(run.warnings)")
        // Plain JSON and bytes that merely start with 0 but are too short: no framing, no warning.
        #expect(run.line(key: nil, value: Array(#"{"a":1}"#.utf8)).contains(#""value":{"a":1}}"#))
        #expect(run.line(key: nil, value: [0, 0, 1]).contains(#""value":"\u0000\u0000\u0001"}"#))
        // An Avro payload with a byte left over: printed as it is, one warning for id 1.
        #expect(run.line(key: nil, value: Self.orderBytes + [0]).hasSuffix(#"gift\u0006\u0000"}"# + "\n"))
        #expect(run.line(key: nil, value: Self.orderBytes).contains(#""value_schema_id":1"#))
        #expect(run.warnings.count == 2)
        #expect(run.warnings.last?.contains("does not decode") == true, "\(run.warnings)")
    }
}
