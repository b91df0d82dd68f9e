import Foundation
import Testing
@testable import EvtCore

// The Avro codec against its peer: every payload here is written by fastavro (what
// confluent-kafka's AvroSerializer uses) and every payload evt writes is read back by it;
// fastavro's json_writer is the reference for the Avro JSON encoding (compared parsed).

// MARK: - The peer

private let python3: String? = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
    .map { "\($0)/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) }

/// A directory of its own for one test's files, removed when the test is done.
private final class Workspace {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("evt-avro-\(UUID().uuidString)")
    init() { try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(at: url) }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    func write(_ name: String, _ text: String) -> String {
        _ = FileManager.default.createFile(atPath: path(name), contents: Data(text.utf8))
        return path(name)
    }
}

/// Runs a python3 script with `arguments` in sys.argv[1...]; its stdout, or a recorded issue.
private func python(_ script: String, _ arguments: [String], in workspace: Workspace) throws -> String {
    let scriptPath = workspace.write("peer-\(UUID().uuidString).py", script)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python3!)
    process.arguments = [scriptPath] + arguments
    let stdout = Pipe()
    let stderrPath = workspace.path("stderr-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
    process.standardOutput = stdout
    process.standardError = FileHandle(forWritingAtPath: stderrPath)
    try process.run()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let stderr = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
    if stderr.contains("No module named 'fastavro'") {
        Issue.record("the fastavro Python package is missing: pip install 'confluent-kafka[avro]' (.ci/run does)")
    }
    #expect(process.terminationStatus == 0, "python3 peer: \(stderr)")
    return String(decoding: output, as: UTF8.self)
}

private func hexBytes(_ text: some StringProtocol) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        bytes.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

// MARK: - Schemas and vectors

/// Nested records in three namespaces, unions of null with a record, a string and an enum,
/// an enum, arrays, maps, fixed, bytes, decimal (bytes and fixed), timestamp-millis, date,
/// uuid, and fields with defaults.
private let richSchema = #"""
    {"type":"record","name":"Order","namespace":"com.acme","fields":[
     {"name":"id","type":"long"},
     {"name":"item","type":"string"},
     {"name":"qty","type":"int"},
     {"name":"price","type":"double"},
     {"name":"weight","type":"float"},
     {"name":"paid","type":"boolean"},
     {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","SHIPPED"]}},
     {"name":"customer","type":["null",{"type":"record","name":"Customer","fields":[
        {"name":"name","type":"string"},
        {"name":"email","type":["null","string"],"default":null},
        {"name":"address","type":{"type":"record","name":"Address","namespace":"com.acme.geo","fields":[
           {"name":"city","type":"string"},{"name":"zip","type":"string"}]}}]}],"default":null},
     {"name":"note","type":["null","string"],"default":null},
     {"name":"items","type":{"type":"array","items":{"type":"record","name":"Line","fields":[
        {"name":"sku","type":"string"},{"name":"qty","type":"int"}]}}},
     {"name":"tags","type":{"type":"map","values":"string"}},
     {"name":"hash","type":{"type":"fixed","name":"MD5","size":16}},
     {"name":"blob","type":"bytes"},
     {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
     {"name":"fee","type":{"type":"fixed","name":"Fee","size":8,"logicalType":"decimal","precision":12,"scale":3}},
     {"name":"created","type":{"type":"long","logicalType":"timestamp-millis"}},
     {"name":"day","type":{"type":"int","logicalType":"date"}},
     {"name":"ref","type":{"type":"string","logicalType":"uuid"}},
     {"name":"prev_status","type":["null","Status"],"default":null},
     {"name":"source","type":"string","default":"web"}
    ]}
    """#

/// Writes `count` varied records of the rich schema (argv[1], argv[2]) with fastavro: per
/// line the payload in hex, a space, and json_writer's JSON encoding of the record.
private let pythonRichVectors = #"""
    import sys, io, json, uuid, datetime, decimal
    import fastavro
    schema = fastavro.parse_schema(json.load(open(sys.argv[1])))
    count = int(sys.argv[2])
    names = ["Ann", "Bø", "李", "\"quoted\"\\back", "tab\there", "emoji 😀", "", "nul\u0000byte"]
    for i in range(count):
        rec = {
            "id": i * 7919 - 3 * 10**12 if i % 2 else i,
            "item": names[i % len(names)] + str(i),
            "qty": [0, 1, -1, 2**31 - 1, -2**31][i % 5],
            "price": [9.99, 0.1, -1e300, 5e-324, 123456.789, 0.0][i % 6],
            "weight": [2.5, -0.375, 1048576.0, 0.0][i % 4],
            "paid": i % 3 == 0,
            "status": ["NEW", "PAID", "SHIPPED"][i % 3],
            "customer": None if i % 4 == 0 else {
                "name": names[(i + 1) % len(names)],
                "email": None if i % 2 else "c%d@example.com" % i,
                "address": {"city": "Oslo", "zip": "%04d" % i}},
            "note": None if i % 3 == 1 else names[i % len(names)],
            "items": [{"sku": "sku-%d-%d" % (i, j), "qty": j} for j in range(i % 4)],
            "tags": {("k%d" % j): ("v" * j) for j in range(i % 3)},
            "hash": bytes((i * 17 + j) % 256 for j in range(16)),
            "blob": bytes((i + j * 31) % 256 for j in range(i % 9)),
            "amount": decimal.Decimal(i * 101 - 5000) / 100,
            "fee": decimal.Decimal(-i * 7) / 1000,
            "created": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(milliseconds=i * 86400123),
            "day": datetime.date(2026, 12, 5) - datetime.timedelta(days=i * 40),
            "ref": uuid.UUID(int=i * 0x1234567890ABCDEF),
            "prev_status": None if i % 2 else ["NEW", "PAID", "SHIPPED"][i % 3],
            "source": "app" if i % 2 else "web",
        }
        payload = io.BytesIO()
        fastavro.schemaless_writer(payload, schema, rec)
        text = io.StringIO()
        fastavro.json_writer(text, schema, [rec])
        print(payload.getvalue().hex(), text.getvalue().strip())
    """#

/// Checks evt's JSON encodings (argv[2], one per line) of payloads (argv[3], hex per line) of
/// the schema (argv[1]): equal, parsed, to json_writer's; read by json_reader to the record
/// schemaless_reader reads from the payload. Prints "ok N" or the first differences.
private let pythonCheckDecoded = #"""
    import sys, io, json
    import fastavro
    schema = fastavro.parse_schema(json.load(open(sys.argv[1])))
    evt = open(sys.argv[2], encoding="utf-8").read().split("\n")
    payloads = open(sys.argv[3]).read().split("\n")
    bad = 0
    for line, payload in zip(evt, payloads):
        rec = fastavro.schemaless_reader(io.BytesIO(bytes.fromhex(payload)), schema)
        text = io.StringIO()
        fastavro.json_writer(text, schema, [rec])
        if json.loads(line) != json.loads(text.getvalue()):
            bad += 1
            if bad < 4: print("differs:", line, "fastavro:", text.getvalue().strip())
        back = list(fastavro.json_reader(io.StringIO(line), schema))
        if back != [rec]:
            bad += 1
            if bad < 4: print("json_reader reads", back, "not", rec)
    print("ok", len(evt) if bad == 0 and len(evt) == len(payloads) else -bad)
    """#

private func schema(_ json: String) throws -> AvroSchema {
    var text = json
    return try text.withUTF8 { utf8 throws(EvtError) in try AvroSchema(json: UnsafeRawBufferPointer(utf8)) }
}

private func schemaError(_ json: String, cause: FailureCause) -> EvtError? {
    var text = json
    return text.withUTF8 { utf8 in
        do throws(EvtError) {
            _ = try AvroSchema(json: UnsafeRawBufferPointer(utf8), invalidCause: cause)
            return nil
        } catch {
            return error
        }
    }
}

private func decode(_ schema: AvroSchema, _ payload: [UInt8]) -> String? {
    var out: [UInt8] = []
    let decoded = payload.withUnsafeBytes { schema.appendJSON(of: $0, to: &out) }
    return decoded ? String(decoding: out, as: UTF8.self) : nil
}

private func encode(_ schema: AvroSchema, _ json: String) -> Result<[UInt8], SchemaMismatch> {
    var out: [UInt8] = []
    var text = json
    return text.withUTF8 { utf8 in
        #expect((try? JSON.validate(UnsafeRawBufferPointer(utf8))) != nil, "not JSON: \(json)")
        do throws(SchemaMismatch) {
            try schema.encode(json: UnsafeRawBufferPointer(utf8), appendingTo: &out)
            return .success(out)
        } catch {
            return .failure(error)
        }
    }
}

/// The mismatch's message for `json`, nil when it encoded.
private func mismatch(_ schema: AvroSchema, _ json: String) -> String? {
    if case .failure(let error) = encode(schema, json) { return error.description }
    return nil
}

/// Reads payloads (argv[2], hex per line) of the schema (argv[1]) with fastavro and prints
/// each record in the JSON encoding json_writer writes.
private let pythonReadPayloads = #"""
    import sys, io, json
    import fastavro
    schema = fastavro.parse_schema(json.load(open(sys.argv[1])))
    for payload in open(sys.argv[2]).read().split("\n"):
        rec = fastavro.schemaless_reader(io.BytesIO(bytes.fromhex(payload)), schema)
        text = io.StringIO()
        fastavro.json_writer(text, schema, [rec])
        print(json.dumps(json.loads(text.getvalue()), sort_keys=True, ensure_ascii=False))
    """#

/// JSON text with its objects' keys sorted, as pythonReadPayloads prints it.
private let pythonCanonical = #"""
    import sys, json
    for line in open(sys.argv[1], encoding="utf-8").read().split("\n"):
        print(json.dumps(json.loads(line), sort_keys=True, ensure_ascii=False))
    """#

/// A record of the rich schema in natural JSON: unions bare, optional fields left out.
private let naturalOrder = #"{"id":1,"item":"book","qty":3,"price":9.5,"weight":2.5,"paid":true,"status":"NEW","customer":null,"items":[{"sku":"a","qty":1},{"sku":"b","qty":2},{"sku":"c","qty":3}],"tags":{"k":"v"},"hash":"0123456789abcdef","blob":"","amount":"\u0004\u00d2","fee":"\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0001","created":1767323045678,"day":20792,"ref":"12345678-1234-5678-1234-567812345678"}"#

// MARK: - Decoding

@Suite("Avro codec: binary ↔ the Avro JSON encoding, against fastavro")
struct AvroCodecTests {
    @Test("fastavro's payloads of a rich schema decode to what fastavro's json_writer writes, and json_reader reads them back to the same records",
          .enabled(if: python3 != nil, "python3 is missing: the fastavro peer cannot run"))
    func decodesLikeFastavro() throws {
        let workspace = Workspace()
        let schemaPath = workspace.write("rich.avsc", richSchema)
        let vectors = try python(pythonRichVectors, [schemaPath, "48"], in: workspace).split(separator: "\n")
        #expect(vectors.count == 48)
        let avro = try schema(richSchema)
        var decoded: [String] = []
        var payloads: [String] = []
        for vector in vectors {
            let payload = hexBytes(vector.prefix { $0 != " " })
            guard let json = decode(avro, payload) else {
                Issue.record("evt did not decode \(vector)")
                continue
            }
            #expect(Array(json.utf8).withUnsafeBytes { (try? JSON.validate($0)) } == .object, "\(json)")
            decoded.append(json)
            payloads.append(hex(payload))
        }
        // And back: evt's JSON and fastavro's encode to fastavro's bytes, byte for byte.
        for (vector, json) in zip(vectors, decoded) {
            let payload = hexBytes(vector.prefix { $0 != " " })
            let reference = String(vector.drop { $0 != " " }.dropFirst())
            #expect(try encode(avro, json).get() == payload, "\(json)")
            #expect(try encode(avro, reference).get() == payload, "\(reference)")
        }
        let check = try python(pythonCheckDecoded, [schemaPath, workspace.write("evt.ndjson", decoded.joined(separator: "\n")),
                                                    workspace.write("payloads.txt", payloads.joined(separator: "\n"))], in: workspace)
        #expect(check == "ok 48\n", "\(check)")
    }

    @Test("the JSON written is one valid line: named union branches by full name, bytes as code points, enum symbols")
    func writesTheSpecificationsEncoding() throws {
        let avro = try schema(#"""
            {"type":"record","name":"R","namespace":"n.s","fields":[
             {"name":"u","type":["null","string",{"type":"record","name":"In","fields":[{"name":"x","type":"int"}]},{"type":"array","items":"long"},{"type":"map","values":"boolean"}]},
             {"name":"b","type":"bytes"},
             {"name":"e","type":{"type":"enum","name":"E","namespace":"other","symbols":["A","B"]}}]}
            """#)
        // u: branch 2 (n.s.In {x: -1}); b: 00 22 5c 0a 7f 80 ff; e: B
        let payload: [UInt8] = [0x04, 0x01, 0x0e, 0x00, 0x22, 0x5c, 0x0a, 0x7f, 0x80, 0xff, 0x02]
        let json = try #require(decode(avro, payload))
        #expect(json == #"{"u":{"n.s.In":{"x":-1}},"b":"\u0000\"\\\n\#u{7f}\#u{80}\#u{ff}","e":"B"}"#)
        #expect(Array(json.utf8).withUnsafeBytes { (try? JSON.validate($0)) } == .object)
        // u: null, then an array branch and a map branch.
        #expect(decode(avro, [0x00, 0x00, 0x00]) == #"{"u":null,"b":"","e":"A"}"#)
        #expect(decode(avro, [0x06, 0x06, 0x02, 0x04, 0x06, 0x00, 0x00, 0x00]) == #"{"u":{"array":[1,2,3]},"b":"","e":"A"}"#)
        #expect(decode(avro, [0x08, 0x02, 0x02, 0x6b, 0x01, 0x00, 0x00, 0x00]) == #"{"u":{"map":{"k":true}},"b":"","e":"A"}"#)
        #expect(decode(avro, [0x02, 0x04, 0x68, 0x69, 0x00, 0x00]) == #"{"u":{"string":"hi"},"b":"","e":"A"}"#)
        // A block with a negative count carries its size in bytes; blocks follow one another.
        #expect(decode(avro, [0x06, 0x03, 0x04, 0x02, 0x04, 0x02, 0x06, 0x00, 0x00, 0x00]) == #"{"u":{"array":[1,2,3]},"b":"","e":"A"}"#)
    }

    @Test("a truncated payload, bytes left over after the value, an unknown branch or symbol, or a string that is not UTF-8 decode to nothing, and leave the output as it was")
    func rejectsWhatDoesNotDecode() throws {
        let avro = try schema(#"{"type":"record","name":"R","fields":[{"name":"s","type":"string"},{"name":"n","type":["null","long"]},{"name":"e","type":{"type":"enum","name":"E","symbols":["A"]}}]}"#)
        let good: [UInt8] = [0x04, 0x68, 0x69, 0x02, 0x54, 0x00]
        #expect(decode(avro, good) == #"{"s":"hi","n":{"long":42},"e":"A"}"#)
        var out = Array("kept".utf8)
        for bad in [[], Array(good.dropLast()), Array(good.prefix(2)), good + [0x00], good + [0x01, 0x02],
                    [0x04, 0x68, 0x69, 0x04, 0x54, 0x00],       // branch 2 of a 2-branch union
                    [0x04, 0x68, 0x69, 0x00, 0x02],             // symbol 1 of a 1-symbol enum
                    [0x04, 0xff, 0xfe, 0x00, 0x00]] as [[UInt8]] {  // not UTF-8
            #expect(!bad.withUnsafeBytes { avro.appendJSON(of: $0, to: &out) }, "\(bad) decoded")
            #expect(out == Array("kept".utf8))
        }
        // A boolean byte other than 0 or 1, a block counting more items than bytes are left,
        // nesting past 512 levels.
        let flags = try schema(#"{"type":"array","items":"boolean"}"#)
        #expect(decode(flags, [0x04, 0x01, 0x00, 0x00]) == "[true,false]")
        #expect(decode(flags, [0x04, 0x01, 0x02, 0x00]) == nil)
        let nulls = try schema(#"{"type":"array","items":"null"}"#)
        #expect(decode(nulls, [0x04, 0x00]) == "[null,null]")
        #expect(decode(nulls, [0x80, 0x80, 0x10, 0x00]) == nil)   // 131 072 nulls in 4 bytes
        let list = try schema(#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#)
        #expect(decode(list, Array(repeating: 0x02, count: 100) + [0x00]) != nil)
        #expect(decode(list, Array(repeating: 0x02, count: 600) + [0x00]) == nil)
        // The same instance still decodes after failures.
        #expect(decode(avro, good) == #"{"s":"hi","n":{"long":42},"e":"A"}"#)
    }

    @Test("floats and doubles print as short as reads back; NaN and the infinities as the strings Jackson writes")
    func floatingPoint() throws {
        let avro = try schema(#"{"type":"record","name":"F","fields":[{"name":"f","type":"float"},{"name":"d","type":"double"}]}"#)
        func payload(_ f: Float, _ d: Double) -> [UInt8] {
            withUnsafeBytes(of: f.bitPattern.littleEndian, Array.init) + withUnsafeBytes(of: d.bitPattern.littleEndian, Array.init)
        }
        #expect(decode(avro, payload(0.1, 0.1)) == #"{"f":0.1,"d":0.1}"#)
        #expect(decode(avro, payload(-0.0, 1e300)) == #"{"f":-0.0,"d":1e+300}"#)
        #expect(decode(avro, payload(.nan, .infinity)) == #"{"f":"NaN","d":"Infinity"}"#)
        #expect(decode(avro, payload(-.infinity, -.infinity)) == #"{"f":"-Infinity","d":"-Infinity"}"#)
    }

    @Test("a float or double literal encodes to the bits strtof or strtod gives it, whether it takes the short path or not")
    func floatingPointLiteralsRoundLikeStrtod() throws {
        let avro = try schema(#"{"type":"record","name":"F","fields":[{"name":"f","type":"float"},{"name":"d","type":"double"}]}"#)
        var literals = ["0", "-0", "0.0", "-0.0", "1", "-1", "0.1", "0.2", "0.3", "1.5", "3.14159", "-2.5", "100", "123456789",
                        "16777216", "16777217", "16777215.5", "9007199254740992", "9007199254740993", "9007199254740991.0",
                        "0.1234567890", "0.12345678901", "1.0000000000000002", "123456.7890123456789", "99999999999999999999",
                        "1e10", "1E-5", "2.5e+3", "-1.0e-300", "1e38", "3.4028235e38", "1e-45", "4.9e-324", "0.0000000000000000000001",
                        "0.00000000000000000000001", "1797693134862315708145274237317043567981", "0.30000000000000004",
                        "7.038531e-26", "8.589973e9", "1.00000017881393432617187499"]
        // Numbers with up to 19 digits and up to 22 decimals, around where the short path ends.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            let digits = Int.random(in: 1...19, using: &generator)
            let text = String((0..<digits).map { _ in Character(String(Int.random(in: 0...9, using: &generator))) })
            let point = Int.random(in: 0...digits, using: &generator)
            let whole = text.prefix(point).drop { $0 == "0" }   // JSON has no leading zeros
            let number = (whole.isEmpty ? "0" : String(whole)) + (point == digits ? "" : "." + text.dropFirst(point))
            literals.append(Bool.random(using: &generator) ? "-" + number : number)
        }
        for literal in literals {
            let expectedFloat = strtof(literal, nil)
            let expectedDouble = strtod(literal, nil)
            guard expectedFloat.isFinite else { continue }   // the encoder refuses what a float cannot hold
            let bytes = try encode(avro, #"{"f":\#(literal),"d":\#(literal)}"#).get()
            let expected = withUnsafeBytes(of: expectedFloat.bitPattern.littleEndian, Array.init)
                + withUnsafeBytes(of: expectedDouble.bitPattern.littleEndian, Array.init)
            #expect(bytes == expected, "\(literal)")
        }
    }

    @Test("bytes and fixed take escapes, raw UTF-8 of U+0080-U+00FF and plain ASCII, and refuse a code point above 255 (fixed: a wrong size too)")
    func codePointStrings() throws {
        let avro = try schema(#"{"type":"record","name":"B","fields":[{"name":"b","type":"bytes"},{"name":"x","type":{"type":"fixed","name":"X","size":3}}]}"#)
        func bytes(_ b: String, _ x: String) -> [UInt8]? { try? encode(avro, #"{"b":\#(b),"x":\#(x)}"#).get() }
        #expect(bytes(#""""#, #""abc""#) == [0] + Array("abc".utf8))
        #expect(bytes(#""\u0000\u00ff\u00FFé\n\t\"\\\/\b\f\r""#, #""\u0001ÿA""#)
                == [24, 0x00, 0xFF, 0xFF, 0xE9, 0x0A, 0x09, 0x22, 0x5C, 0x2F, 0x08, 0x0C, 0x0D, 0x01, 0xFF, 0x41])
        let long = String(repeating: "\\u00ab", count: 70)   // 70 bytes: a two-byte length
        #expect(bytes(#""\#(long)""#, #""abc""#) == [0x8C, 0x01] + [UInt8](repeating: 0xAB, count: 70) + Array("abc".utf8))
        #expect(mismatch(avro, #"{"b":"\u0100","x":"abc"}"#)?.contains("bytes (a string of code points 0-255)") == true)
        #expect(mismatch(avro, #"{"b":"€","x":"abc"}"#)?.contains("bytes (a string of code points 0-255)") == true)
        #expect(mismatch(avro, #"{"b":"","x":"ab"}"#)?.contains("X (3 bytes as a string of code points 0-255)") == true)
        #expect(mismatch(avro, #"{"b":"","x":"ab\ud83d\ude00"}"#)?.contains("X (3 bytes") == true)
    }

    @Test("a schema libavro refuses is an error with its reason and the cause the caller asked for; a recursive schema works")
    func schemaErrors() throws {
        let error = try #require(schemaError(#"{"type":"record","name":"X","fields":[{"name":"v","type":"intt"}]}"#, cause: .badInput))
        #expect(error.cause == .badInput)
        #expect(error.message.contains("intt"), "\(error.message)")
        #expect(schemaError(#"{"type":"#, cause: .usage)?.cause == .usage)
        let list = try schema(#"{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"]}]}"#)
        #expect(decode(list, [0x02, 0x02, 0x04, 0x02, 0x06, 0x00]) == #"{"v":1,"next":{"Node":{"v":2,"next":{"Node":{"v":3,"next":null}}}}}"#)
        let primitive = try schema(#""string""#)
        #expect(decode(primitive, [0x02, 0x41]) == #""A""#)
    }

    // MARK: - Encoding

    @Test("natural JSON encodes: bare union values where one branch takes them, defaults for missing fields; fastavro reads what the tagged form says",
          .enabled(if: python3 != nil, "python3 is missing: the fastavro peer cannot run"))
    func encodesNaturalJSON() throws {
        let workspace = Workspace()
        let schemaPath = workspace.write("rich.avsc", richSchema)
        let avro = try schema(richSchema)
        let customer = #"{"name":"Ann","address":{"city":"Oslo","zip":"0150"}}"#
        let cases: [(natural: String, tagged: String)] = [
            (naturalOrder, naturalOrder.replacingOccurrences(of: "}", with: #","note":null,"prev_status":null,"source":"web"}"#, options: .backwards, range: naturalOrder.range(of: "}", options: .backwards))),
            (naturalOrder.replacingOccurrences(of: #""customer":null"#, with: #""customer":\#(customer),"note":"gift","prev_status":"PAID","source":"app""#),
             naturalOrder.replacingOccurrences(of: #""customer":null"#, with: #""customer":{"com.acme.Customer":{"name":"Ann","email":null,"address":{"city":"Oslo","zip":"0150"}}},"note":{"string":"gift"},"prev_status":{"com.acme.Status":"PAID"},"source":"app""#)),
            (naturalOrder.replacingOccurrences(of: #""customer":null"#, with: #""customer":{"com.acme.Customer":{"name":"Bo","email":"b@x","address":{"city":"Rome","zip":"00100"}}}"#),
             naturalOrder.replacingOccurrences(of: #""customer":null"#, with: #""customer":{"com.acme.Customer":{"name":"Bo","email":{"string":"b@x"},"address":{"city":"Rome","zip":"00100"}}},"note":null,"prev_status":null,"source":"web""#)),
        ]
        var payloads: [String] = []
        for (natural, _) in cases {
            payloads.append(hex(try encode(avro, natural).get()))
        }
        let read = try python(pythonReadPayloads, [schemaPath, workspace.write("payloads.txt", payloads.joined(separator: "\n"))], in: workspace)
        let expected = try python(pythonCanonical, [workspace.write("tagged.ndjson", cases.map(\.tagged).joined(separator: "\n"))], in: workspace)
        #expect(read == expected)
        #expect(read.split(separator: "\n").count == cases.count)
    }

    @Test("members in any order, with whitespace, give the bytes of the same members in field order")
    func membersInAnyOrder() throws {
        let avro = try schema(richSchema)
        let inOrder = try encode(avro, naturalOrder).get()
        var members: [String] = []
        let text = Array(naturalOrder.utf8)
        text.withUnsafeBytes { bytes in
            JSON.forEachMember(ofObject: bytes) { key, value, _ in
                members.append(String(decoding: bytes[key], as: UTF8.self) + " : " + String(decoding: bytes[value], as: UTF8.self))
            }
        }
        let reversed = "{ " + members.reversed().joined(separator: " ,\n ") + " }"
        #expect(try encode(avro, reversed).get() == inOrder)
        #expect(try encode(avro, "\t" + naturalOrder + "  ").get() == inOrder)
        #expect(mismatch(avro, "{" + members.reversed().joined(separator: ",") + #","colour":"red"}"#)
                == #".colour: expected no member here: com.acme.Order has no field of that name, got "red""#)
        #expect(mismatch(avro, "{" + members.reversed().joined(separator: ",") + #","id":7}"#)
                == ".id: expected one member of that name, got a second one")
        #expect(mismatch(avro, "{" + members.reversed().filter { !$0.hasPrefix(#""qty""#) }.joined(separator: ",") + #","qty":"3"}"#)
                == #".qty: expected int, got "3""#)
    }

    @Test("a value that does not fit says where and what was expected, and leaves the output as it was")
    func mismatchMessages() throws {
        let avro = try schema(richSchema)
        /// naturalOrder with the value of its member `member` replaced.
        func with(_ member: String, _ replacement: String) -> String {
            let bytes = Array(naturalOrder.utf8)
            let label = Array("\"\(member)\":".utf8)
            let start = (0...(bytes.count - label.count)).first { Array(bytes[$0..<($0 + label.count)]) == label }! + label.count
            let length = bytes[start...].withUnsafeBytes { JSON.trimmedValue($0).range.upperBound }
            return String(decoding: bytes[..<start] + Array(replacement.utf8) + bytes[(start + length)...], as: UTF8.self)
        }
        #expect(mismatch(avro, naturalOrder) == nil)
        #expect(mismatch(avro, naturalOrder.replacingOccurrences(of: #"{"sku":"c","qty":3}"#, with: #"{"sku":"c","qty":"three"}"#))
                == #".items[2].qty: expected int, got "three""#)
        #expect(mismatch(avro, with("status", #""LOST""#)) == #".status: expected one of the enum's symbols NEW, PAID, SHIPPED, got "LOST""#)
        #expect(mismatch(avro, with("customer", "42")) == ".customer: expected one of the union's branches null, com.acme.Customer, got 42")
        #expect(mismatch(avro, with("qty", "3000000000")) == ".qty: expected int (-2147483648 to 2147483647), got 3000000000")
        #expect(mismatch(avro, with("qty", "2.5")) == ".qty: expected int, got 2.5")
        #expect(mismatch(avro, with("id", "9223372036854775808")) == ".id: expected long (-9223372036854775808 to 9223372036854775807), got 9223372036854775808")
        #expect(mismatch(avro, with("tags", #"{"k":"v","k2":5}"#)) == ".tags.k2: expected string, got 5")
        #expect(mismatch(avro, with("tags", #"{"odd key":null}"#)) == #".tags."odd key": expected string, got null"#)
        #expect(mismatch(avro, with("hash", #""0123""#)) == #".hash: expected com.acme.MD5 (16 bytes as a string of code points 0-255), got "0123""#)
        #expect(mismatch(avro, with("blob", #""\u0100""#)) == #".blob: expected bytes (a string of code points 0-255), got "\u0100""#)
        #expect(mismatch(avro, with("item", "null")) == ".item: expected string, got null")
        #expect(mismatch(avro, naturalOrder.replacingOccurrences(of: #""item":"book","#, with: ""))
                == ".item: expected string, got nothing: the member is missing and the field has no default")
        #expect(mismatch(avro, naturalOrder.replacingOccurrences(of: #""id":1,"#, with: #""id":1,"colour":"red","#))
                == #".colour: expected no member here: com.acme.Order has no field of that name, got "red""#)
        #expect(mismatch(avro, naturalOrder.replacingOccurrences(of: #""id":1,"#, with: #""id":1,"id":2,"#))
                == ".id: expected one member of that name, got a second one")
        #expect(mismatch(avro, with("customer", #"{"com.acme.Customer":{"name":"Ann","address":{"city":"Oslo","zip":150}}}"#))
                == #".customer."com.acme.Customer".address.zip: expected string, got 150"#)
        #expect(mismatch(avro, with("customer", #"{"name":"Ann","address":{"city":"Oslo"}}"#))
                == ".customer.address.zip: expected string, got nothing: the member is missing and the field has no default")
        #expect(mismatch(avro, with("items", "{}")) == ".items: expected an array, got an object")
        #expect(mismatch(avro, with("price", #""\#(String(repeating: "x", count: 50))""#))
                == #".price: expected double, got "\#(String(repeating: "x", count: 35))…""#)
        #expect(mismatch(avro, "[1]") == ".: expected a com.acme.Order record (an object), got an array")

        var out = Array("kept".utf8)
        let bad = Array(with("status", #""LOST""#).utf8)
        #expect(throws: SchemaMismatch.self) { try bad.withUnsafeBytes { bytes in try avro.encode(json: bytes, appendingTo: &out) } }
        #expect(out == Array("kept".utf8))
        // The same instance encodes again after a mismatch.
        #expect(mismatch(avro, naturalOrder) == nil)
    }

    @Test("bare union values: exactly one branch must take the value; ambiguous ones must be named")
    func bareUnions() throws {
        let avro = try schema(#"""
            {"type":"record","name":"U","fields":[
             {"name":"a","type":["null","int","string"]},
             {"name":"b","type":["int","long"]},
             {"name":"c","type":["null",{"type":"record","name":"P","fields":[{"name":"x","type":"int"}]},{"type":"record","name":"Q","fields":[{"name":"y","type":"int"}]}]},
             {"name":"d","type":["null",{"type":"enum","name":"E","symbols":["A"]},"string"]}]}
            """#)
        func roundTrip(_ json: String) -> String? {
            guard case .success(let bytes) = encode(avro, json) else { return nil }
            return decode(avro, bytes)
        }
        #expect(roundTrip(#"{"a":5,"b":{"long":5},"c":{"y":1},"d":"A"}"#) == nil)   // "A" fits the enum and the string
        #expect(roundTrip(#"{"a":5,"b":{"long":5},"c":{"y":1},"d":{"E":"A"}}"#) == #"{"a":{"int":5},"b":{"long":5},"c":{"Q":{"y":1}},"d":{"E":"A"}}"#)
        #expect(roundTrip(#"{"a":"x","b":{"int":1},"c":{"x":2},"d":"B"}"#) == #"{"a":{"string":"x"},"b":{"int":1},"c":{"P":{"x":2}},"d":{"string":"B"}}"#)
        #expect(mismatch(avro, #"{"a":5,"b":5,"c":null,"d":null}"#)
                == #".b: expected one of the union's branches int, long, named as {"BRANCH": value} when more than one takes the value, got 5"#)
        #expect(mismatch(avro, #"{"a":5.5,"b":{"int":1},"c":null,"d":null}"#) == ".a: expected one of the union's branches null, int, string, got 5.5")
        #expect(mismatch(avro, #"{"a":null,"b":{"int":1},"c":{"z":1},"d":null}"#)
                == #".c: expected one of the union's branches null, P, Q, named as {"BRANCH": value} when more than one takes the value, got an object"#)
    }

    @Test("floats read back what appendJSON wrote, NaN and the infinities included; a number past a float's range does not fit")
    func floatingPointBack() throws {
        let avro = try schema(#"{"type":"record","name":"F","fields":[{"name":"f","type":"float"},{"name":"d","type":"double"}]}"#)
        for json in [#"{"f":0.1,"d":0.1}"#, #"{"f":"NaN","d":"Infinity"}"#, #"{"f":"-Infinity","d":-0.0}"#, #"{"f":3.4028235e+38,"d":5e-324}"#] {
            let bytes = try encode(avro, json).get()
            #expect(decode(avro, bytes) == json)
        }
        #expect(decode(avro, try encode(avro, #"{"f":1,"d":-2}"#).get()) == #"{"f":1.0,"d":-2.0}"#)
        #expect(mismatch(avro, #"{"f":1e39,"d":1}"#) == ".f: expected float, got 1e39")
        #expect(mismatch(avro, #"{"f":1,"d":1e999}"#) == ".d: expected double, got 1e999")
    }

    @Test("a number's text gives exactly the double strtod and the float strtof give: short forms, many digits, exponents, -0, denormals, huge values")
    func decimalTextLikeStrtod() {
        var texts = ["0", "-0", "0.0", "-0.0", "0e5", "-0E-5", "1", "-1", "0.1", "0.25", "1.5", "12.25", "5000.0", "3.14159",
                     "0.30000000000000004", "1e22", "1e23", "1e-22", "1e-23", "9007199254740992", "9007199254740993",
                     "9007199254740993.0", "16777216", "16777217", "16777217.0", "0.000001", "123456789012345678901234567890",
                     "1234567890123456789", "12345678901234567890", "0.1234567890123456789", "1.7976931348623157e308",
                     "1.7976931348623159e308", "1e309", "-1e309", "4.9e-324", "5e-324", "2e-324", "2.2250738585072011e-308",
                     "2.2250738585072014e-308", "3.4028235e38", "3.4028236e38", "3.5e38", "1e39", "1.4e-45", "1e-46", "1.17549435e-38",
                     "1e10", "1e11", "1.5e-10", "1e-11", "7e22", "1e+5", "1E+05", "2.5E-3", "100000000000000000000000", "1e0000000000000000000007",
                     "1e-99999999999999999999", "1e99999999999999999999", "0.00000000000000000000000000001", "8.589973e9", "8.589974e9",
                     "0.500000000000000166533453693773481063544750213623046875", "9.5", "-2.5e-5", "3.0e-10", "4503599627370497.5"]
        // Random numbers of every shape: 1 to 25 digits, a point anywhere or none, exponents near and far.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
        for _ in 0..<20_000 {
            var text = next(2) == 0 ? "-" : ""
            let digitCount = 1 + next(25)
            var digits = (0..<digitCount).map { _ in String(next(10)) }.joined()
            while digits.count > 1 && digits.hasPrefix("0") { digits.removeFirst() }
            let point = next(digits.count + 1)
            if point > 0 && point < digits.count {
                digits.insert(".", at: digits.index(digits.startIndex, offsetBy: point))
            }
            text += digits
            switch next(4) {
            case 0: break
            case 1: text += "e" + String(next(45) - 22)
            case 2: text += "E" + (next(2) == 0 ? "+" : "-") + String(next(12))
            default: text += "e" + String(next(700) - 350)
            }
            texts.append(text)
        }
        // What Swift prints for random doubles and floats: the shortest text that reads back.
        for _ in 0..<5_000 {
            let bits = UInt64(next(1 << 30)) << 34 | UInt64(next(1 << 30)) << 4 | UInt64(next(16))
            let double = Double(bitPattern: bits)
            if double.isFinite { texts.append(double.description) }
            let float = Float(bitPattern: UInt32(truncatingIfNeeded: bits >> 20))
            if float.isFinite { texts.append(float.description) }
        }
        for text in texts {
            let expectedDouble = strtod(text, nil)
            let expectedFloat = strtof(text, nil)
            var utf8 = text
            utf8.withUTF8 { bytes in
                let literal = UnsafeRawBufferPointer(bytes)
                let double = DecimalFloatingPoint.double(atStartOf: literal)
                let float = DecimalFloatingPoint.float(atStartOf: literal)
                #expect(double.value.bitPattern == expectedDouble.bitPattern && double.length == literal.count, "double \(text)")
                #expect(float.value.bitPattern == expectedFloat.bitPattern && float.length == literal.count, "float \(text)")
            }
            // Followed by what may follow a number in JSON, the number alone is read.
            var followed = text + ",\"x\":1}"
            followed.withUTF8 { bytes in
                let double = DecimalFloatingPoint.double(atStartOf: UnsafeRawBufferPointer(bytes))
                #expect(double.value.bitPattern == expectedDouble.bitPattern && double.length == text.utf8.count, "double \(text) in a line")
            }
        }
    }

    @Test("arrays, maps and bytes of 64 items or bytes and more take a longer count in front, nested ones too, as the specification's zigzag varint says")
    func longCounts() throws {
        let avro = try schema(#"""
            {"type":"record","name":"C","fields":[{"name":"a","type":{"type":"array","items":"int"}},
             {"name":"m","type":{"type":"map","values":"boolean"}},{"name":"b","type":"bytes"},
             {"name":"n","type":{"type":"array","items":{"type":"array","items":"int"}}}]}
            """#)
        func varint(_ value: Int) -> [UInt8] {
            var rest = UInt64(value) << 1
            var bytes: [UInt8] = []
            while rest >= 0x80 {
                bytes.append(UInt8(rest & 0x7F) | 0x80)
                rest >>= 7
            }
            return bytes + [UInt8(rest)]
        }
        func block(_ items: [[UInt8]]) -> [UInt8] { items.isEmpty ? [0] : varint(items.count) + items.flatMap { $0 } + [0] }
        for count in [0, 1, 63, 64, 65, 8191, 8192, 10000] {
            let numbers = (0..<count).map { $0 % 100 }
            let keys = (0..<count).map { "k\($0)" }
            let json = #"{"a":["# + numbers.map(String.init).joined(separator: ",") + #"],"m":{"# + keys.map { #""\#($0)":true"# }.joined(separator: ",")
                + #"},"b":""# + String(repeating: #"\u00ff"#, count: count) + #"","n":[["# + numbers.map(String.init).joined(separator: ",") + "],[1,2],["
                + numbers.map(String.init).joined(separator: ",") + "]]}"
            let items = block(numbers.map { varint($0) })
            let expected = items + block(keys.map { varint($0.utf8.count) + Array($0.utf8) + [1] }) + varint(count) + [UInt8](repeating: 0xFF, count: count)
                + block([items, block([varint(1), varint(2)]), items])
            #expect(try encode(avro, json).get() == expected, "\(count) items")
        }
    }

    @Test("members and symbols match their names at every length, escaped or not, in or out of order; a longer or shorter key matches no field")
    func namesInPlace() throws {
        let names = (1...17).map { String(repeating: "a", count: $0) }
        let avro = try schema(#"{"type":"record","name":"N","fields":["# + names.map { #"{"name":"\#($0)","type":"int"}"# }.joined(separator: ",")
                              + #",{"name":"e","type":{"type":"enum","name":"S","symbols":["S","SS","SSSSSSSSS"]}}]}"#)
        let expected: [UInt8] = (1...17).map { UInt8($0 * 2) } + [2]
        func line(_ members: [(String, String)]) -> String { "{" + members.map { #""\#($0.0)":\#($0.1)"# }.joined(separator: ",") + "}" }
        let inOrder = names.enumerated().map { ($0.element, String($0.offset + 1)) } + [("e", #""SS""#)]
        #expect(try encode(avro, line(inOrder)).get() == expected)
        #expect(try encode(avro, line(inOrder.reversed())).get() == expected)
        let escaped = inOrder.map { (#"\u0061"# + $0.0.dropFirst(), $0.1) }.dropLast() + [(#"\u0065"#, #""S\u0053""#)]
        #expect(try encode(avro, line(Array(escaped))).get() == expected)
        #expect(try encode(avro, line(Array(escaped.reversed()))).get() == expected)
        #expect(mismatch(avro, line(inOrder.dropLast() + [("e", #""SSS""#)])) == #".e: expected one of the enum's symbols S, SS, SSSSSSSSS, got "SSS""#)
        #expect(mismatch(avro, line([(String(repeating: "a", count: 18), "1")] + inOrder))
                == ".aaaaaaaaaaaaaaaaaa: expected no member here: N has no field of that name, got 1")
        #expect(mismatch(avro, line([("aaab", "1")] + inOrder)) == ".aaab: expected no member here: N has no field of that name, got 1")
    }

    @Test("strings of code points decode every code point 0-255, raw or escaped, and refuse any above")
    func codePoints() throws {
        let avro = try schema(#"{"type":"record","name":"B","fields":[{"name":"b","type":"bytes"},{"name":"f","type":{"type":"fixed","name":"F","size":256}}]}"#)
        let all = String((0...255).map { Character(Unicode.Scalar(UInt8($0))) })
        var raw: [UInt8] = []
        Array(all.utf8).withUnsafeBytes { JSONOutput.appendQuoted($0, to: &raw) }
        let quoted = String(decoding: raw, as: UTF8.self)
        let escaped = "\"" + (0...255).map { String(format: "\\u%04x", $0) }.joined() + "\""
        let bytes = (0...255).map { UInt8($0) }
        #expect(try encode(avro, #"{"b":\#(quoted),"f":\#(escaped)}"#).get() == [0x80, 0x04] + bytes + bytes)
        #expect(try encode(avro, #"{"b":"\b\f\n\r\t\"\\\/","f":\#(quoted)}"#).get() == [16, 8, 12, 10, 13, 9, 0x22, 0x5C, 0x2F] + bytes)
        for above in [#"\u0100"#, "Ā", "€", #"\ud83d\ude00"#, "😀", #"\ud800"#] {
            #expect(mismatch(avro, #"{"b":"a\#(above)","f":\#(quoted)}"#) == #".b: expected bytes (a string of code points 0-255), got "a\#(above)""#)
        }
    }
}
