import Foundation
import Testing
import EvtTestSupport
import EvtCore

/// Avro and JSON Schema topics read and written by evt, every payload made or read by
/// confluent-kafka's own serializers (Fixtures/schema_peer.py) against a registry fixture.
@Suite("schemas: Avro and JSON Schema with a registry")
struct SchemaTests {
    static let peerScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/schema_peer.py").path

    /// A one-partition topic per name on a mock cluster, a registry, and the environment evt
    /// runs with.
    final class Setup {
        let cluster: KafkaMockCluster
        let registry: SchemaRegistryServer
        var environment: [String: String]

        init(topics: [String], user: String? = nil, password: String? = nil) throws {
            cluster = try mockCluster(topics: topics.map { ($0, 1) })
            registry = try SchemaRegistryServer(user: user, password: password)
            environment = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_SCHEMA_REGISTRY_URL": registry.url]
        }

        /// The peer's stdout lines, parsed; the test fails on its failure.
        func peer(_ arguments: [String], withRegistry: Bool = true) throws -> [[String: Any]] {
            var all: [String] = [arguments[0], cluster.bootstrapServers] + arguments.dropFirst()
            if withRegistry {
                let url = registry.user.map { user in
                    registry.url.replacingOccurrences(of: "://", with: "://\(user):\(registry.password!)@")
                } ?? registry.url
                all.insert(url, at: 3)
            }
            let result = try runProcess(["python3", SchemaTests.peerScript] + all, timeout: 120)
            #expect(result.status == 0, "schema peer \(arguments.joined(separator: " ")): \(result.stderr)")
            return result.stdoutLines.map(Self.object)
        }

        static func object(_ line: String) -> [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? ["unparsed": line]
        }
    }

    /// The `field` of each record, in order, each distinct one once: on the mock cluster a
    /// producer's retry may write a record twice (SWIFT-C-NOTES.md), so counts and positions
    /// are not compared, only what arrived and in which order.
    static func distinct(_ records: [[String: Any]], _ field: String = "value") -> [String] {
        var seen: Set<String> = []
        return records.compactMap { record in
            guard let value = record[field],
                  let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]) else { return nil }
            let text = String(decoding: data, as: UTF8.self)
            return seen.insert(text).inserted ? text : nil
        }
    }

    static func same(_ a: Any?, _ b: Any?) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case (let a as NSObject, let b as NSObject): return a.isEqual(b)
        default: return false
        }
    }

    @Test("tail decodes framed Avro keys and values as AvroDeserializer reads them, in the Avro JSON encoding")
    func readAvro() throws {
        let setup = try Setup(topics: ["orders"])
        _ = try setup.peer(["produce-avro", "orders", "40"])
        let reference = try setup.peer(["consume-avro", "orders", "40"])
        let result = try Evt.run(["tail", "topic:orders", "-n", "\(reference.count)"], environment: setup.environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        let records = result.stdoutLines.map(Setup.object)
        #expect(records.count == reference.count && records.count >= 40)
        for (record, expected) in zip(records, reference) {
            #expect(Self.same(record["value"], expected["value"]), "evt: \(record["value"] ?? "nil")\npeer: \(expected["value"] ?? "nil")")
            #expect(Self.same(record["key"], expected["key"]))
            #expect(record["value_schema_id"] is Int && record["key_schema_id"] is Int)
        }
        // The union branch is named by the record's full name, bytes are code points 0-255.
        let line = result.stdoutLines[1]
        #expect(line.contains(#""customer":{"com.acme.Customer":{"name":"cust-1 é","tier":"GOLD"}}"#), "\(line)")
        // --match sees the decoded value: the status field of every third record is PAID.
        let paid = try Evt.run(["tail", "topic:orders", "-n", "\(reference.count)", "--match", "value.status=PAID"], environment: setup.environment)
        #expect(paid.stdoutLines.count == reference.filter { ($0["value"] as? [String: Any])?["status"] as? String == "PAID" }.count)
        #expect(paid.stdoutLines.count >= 13 && paid.stdoutLines.allSatisfy { $0.contains(#""status":"PAID""#) }, "\(paid.stdoutText)")
        // --decode none: the framed bytes as they are, no schema ids.
        let raw = try Evt.run(["tail", "topic:orders", "-n", "1", "--decode", "none"], environment: setup.environment)
        #expect(raw.status == 0 && !raw.stdoutText.contains("schema_id"), "\(raw.stdoutText)")
    }

    @Test("subscribe --group and replay-from-offset decode as tail does")
    func subscribeAndReplay() throws {
        let setup = try Setup(topics: ["orders"])
        _ = try setup.peer(["produce-avro", "orders", "6"])
        let reference = try setup.peer(["consume-avro", "orders", "6"])
        let subscribed = try Evt.run(["subscribe", "topic:orders", "--group", "g", "--from", "beginning", "-c", "6"], environment: setup.environment)
        let replayed = try Evt.run(["replay-from-offset", "topic:orders", "beginning"], environment: setup.environment)
        for result in [subscribed, replayed] {
            #expect(result.status == 0, "\(result.stderr)")
            let records = result.stdoutLines.map(Setup.object)
            #expect(records.count == 6)
            for (record, expected) in zip(records, reference) {
                #expect(Self.same(record["value"], expected["value"]) && record["value_schema_id"] is Int)
            }
        }
    }

    @Test("publish --value-schema SUBJECT encodes NDJSON so that AvroDeserializer reads back the same records")
    func writeAvro() throws {
        let setup = try Setup(topics: ["orders", "copy"])
        let produced = try setup.peer(["produce-avro", "orders", "30"])   // registers orders-value
        let lines = try produced.map { String(decoding: try JSONSerialization.data(withJSONObject: $0["value"]!), as: UTF8.self) }
        let publish = try Evt.run(["publish", "topic:copy", "--value-schema", "orders-value"],
                                  stdin: lines.joined(separator: "\n") + "\n", environment: setup.environment)
        #expect(publish.status == 0, "\(publish.stderr)")
        let back = try setup.peer(["consume-avro", "copy", "30"])
        #expect(Self.distinct(back) == Self.distinct(produced))
    }

    @Test("a value that does not fit at line 501 of 1000: lines 1-500 delivered, the field named, exit 3")
    func badLine() throws {
        let setup = try Setup(topics: ["orders", "out"])
        let produced = try setup.peer(["produce-avro", "orders", "1"])
        let good = String(decoding: try JSONSerialization.data(withJSONObject: produced[0]["value"]!), as: UTF8.self)
        // 1000 lines, each with its own id.
        var lines = (1...1000).map { good.replacingOccurrences(of: #""id":0"#, with: #""id":\#($0)"#) }
        #expect(lines[1] != lines[0])
        lines[500] = lines[500].replacingOccurrences(of: #""status":"NEW""#, with: #""status":"LOST""#)
        #expect(lines[500].contains("LOST"))
        let result = try Evt.run(["publish", "topic:out", "--value-schema", "orders-value"],
                                 stdin: lines.joined(separator: "\n") + "\n", environment: setup.environment)
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr.contains("line 501: the value does not fit Avro schema"), "\(result.stderr)")
        #expect(result.stderr.contains(".status: expected one of"), "\(result.stderr)")
        let ids = try setup.peer(["consume-avro", "out", "500"]).compactMap { ($0["value"] as? [String: Any])?["id"] as? Int }
        #expect(Set(ids) == Set(1...500), "lines 1-500 delivered, nothing after them")
    }

    @Test("bad lines of two input files, found by the JSON check and by the schema, each named with its file line and dead-lettered whole, in input order")
    func badLinesAcrossFiles() throws {
        let setup = try Setup(topics: ["orders", "out"])
        let produced = try setup.peer(["produce-avro", "orders", "1"])   // registers orders-value
        let good = String(decoding: try JSONSerialization.data(withJSONObject: produced[0]["value"]!), as: UTF8.self)
        let scratch = Scratch()
        // 3000 lines a file: the blocks the threads hand on hold 1024 events, so bad lines
        // fall in several blocks, and in the blocks' first and last places.
        func lines(_ ids: ClosedRange<Int>) -> [String] { ids.map { good.replacingOccurrences(of: #""id":0"#, with: #""id":\#($0)"#) } }
        func unfit(_ line: String) -> String { line.replacingOccurrences(of: #""status":"NEW""#, with: #""status":"LOST""#) }
        var first = lines(1...3000)
        var second = lines(3001...6000)
        first[0] = unfit(first[0])            // line 1: the schema's
        first[1023] = "not json"              // line 1024: the JSON check's
        first[1024] = unfit(first[1024])      // line 1025: the schema's
        second[1] = String(second[1].dropLast())   // line 3002: the JSON check's
        second[2999] = unfit(second[2999])    // line 6000, the last: the schema's
        #expect(first[0].contains("LOST") && second[2999].contains("LOST"))
        let a = scratch.write("a.ndjson", ndjson(first))
        let b = scratch.write("b.ndjson", ndjson(second))
        let deadLetters = scratch.file("bad.ndjson")
        let result = try Evt.run(["publish", "topic:out", "--value-schema", "orders-value", "--on-error", "skip",
                                  "--dead-letter", deadLetters, a, b], environment: setup.environment)
        #expect(result.status == 3, "\(result.stderr)")
        let named = result.stderr.split(separator: "\n").filter { $0.hasPrefix("evt: line ") }
        let expected = ["line 1 (\(a) line 1): the value does not fit", "line 1024 (\(a) line 1024): invalid JSON",
                        "line 1025 (\(a) line 1025): the value does not fit", "line 3002 (\(b) line 2): invalid JSON",
                        "line 6000 (\(b) line 3000): the value does not fit"]
        #expect(named.count == expected.count, "\(result.stderr)")
        for (line, prefix) in zip(named, expected) { #expect(line.hasPrefix("evt: " + prefix), "\(line)") }
        let kept = try String(contentsOfFile: deadLetters, encoding: .utf8).split(separator: "\n").map { Setup.object(String($0)) }
        #expect(kept.map { $0["line"] as? Int } == [1, 1024, 1025, 3002, 6000])
        #expect(kept.map { $0["input"] as? String } == [first[0], first[1023], first[1024], second[1], second[2999]], "\(kept)")
        let ids = try setup.peer(["consume-avro", "out", "5995"]).compactMap { ($0["value"] as? [String: Any])?["id"] as? Int }
        #expect(Set(ids) == Set(1...6000).subtracting([1, 1024, 1025, 3002, 6000]))
    }

    @Test("an unframed record and an unknown schema id in the same topic print as they are, one warning, exit 0")
    func undecodable() throws {
        let setup = try Setup(topics: ["mixed"])
        _ = try setup.peer(["produce-raw", "mixed", "7b2261223a317d", "000000270f0102", "000000270f0304"], withRegistry: false)
        let result = try Evt.run(["replay-from-offset", "topic:mixed", "beginning"], environment: setup.environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutLines.count >= 3)
        #expect(result.stdoutLines[0].hasSuffix(#""value":{"a":1}}"#))
        #expect(!result.stdoutText.contains("schema_id"))
        let warnings = result.stderr.split(separator: "\n").filter { $0.contains("schema 9999") }
        #expect(warnings.count == 1, "one warning for id 9999: \(result.stderr)")
    }

    @Test("tail | publish --envelope copies an Avro topic byte for byte")
    func envelopeRoundTrip() throws {
        let setup = try Setup(topics: ["orders", "again"])
        _ = try setup.peer(["produce-avro", "orders", "25"])
        let tail = try Evt.run(["replay-from-offset", "topic:orders", "beginning"], environment: setup.environment)
        #expect(tail.status == 0, "\(tail.stderr)")
        let publish = try Evt.run(["publish", "topic:again", "--envelope"], stdin: tail.stdout, environment: setup.environment)
        #expect(publish.status == 0, "\(publish.stderr)")
        let original = try setup.peer(["dump", "orders", "25"], withRegistry: false)
        let copied = try setup.peer(["dump", "again", "25"], withRegistry: false)
        #expect(Self.distinct(copied) == Self.distinct(original) && Self.distinct(copied, "key") == Self.distinct(original, "key"))
    }

    @Test("basic auth with a password holding @ and : in the URL; a refused password is never printed")
    func basicAuth() throws {
        let setup = try Setup(topics: ["orders"], user: "evt", password: "p@ss:w0rd")
        _ = try setup.peer(["produce-avro", "orders", "3"])
        var environment = setup.environment
        environment["EVT_SCHEMA_REGISTRY_URL"] = setup.registry.url.replacingOccurrences(of: "://", with: "://evt:p%40ss%3Aw0rd@")
        let result = try Evt.run(["tail", "topic:orders", "-n", "3"], environment: environment)
        #expect(result.status == 0 && result.stdoutText.contains("value_schema_id"), "\(result.stderr)")
        environment["EVT_SCHEMA_REGISTRY_URL"] = setup.registry.url.replacingOccurrences(of: "://", with: "://evt:wrong%40secret@")
        let refused = try Evt.run(["publish", "topic:orders", "--value-schema", "orders-value"], stdin: "{}\n", environment: environment)
        #expect(refused.status != 0)
        #expect(!refused.stderr.contains("wrong") && !refused.stderr.contains("secret"), "\(refused.stderr)")
        #expect(refused.stderr.contains("401") || refused.stderr.lowercased().contains("credentials"), "\(refused.stderr)")
    }

    @Test("publish --dry-run --value-schema FILE checks a file against a local schema, with no broker and no registry")
    func dryRunFile() throws {
        let scratch = Scratch()
        let schema = scratch.write("order.avsc", Data(#"{"type":"record","name":"Order","fields":[{"name":"id","type":"int"},{"name":"note","type":["null","string"],"default":null}]}"#.utf8))
        let good = try Evt.run(["publish", "topic:nowhere", "--dry-run", "--value-schema", schema],
                               stdin: "{\"id\":1}\n{\"id\":2,\"note\":\"x\"}\n{\"id\":3,\"note\":{\"string\":\"y\"}}\n",
                               environment: ["EVT_KAFKA_BROKERS": "127.0.0.1:1"])
        #expect(good.status == 0, "\(good.stderr)")
        let bad = try Evt.run(["publish", "topic:nowhere", "--dry-run", "--value-schema", schema, "--on-error", "skip"],
                              stdin: "{\"id\":1}\n{\"id\":\"two\"}\n{\"id\":3,\"extra\":true}\n",
                              environment: ["EVT_KAFKA_BROKERS": "127.0.0.1:1"])
        #expect(bad.status == 3, "\(bad.stderr)")
        #expect(bad.stderr.contains("line 2: the value does not fit Avro schema") && bad.stderr.contains(".id: expected int"), "\(bad.stderr)")
        #expect(bad.stderr.contains("line 3:") && bad.stderr.contains("extra"), "\(bad.stderr)")
        // Sending, a file's schema needs a registry for its id: refused before anything is sent.
        let noRegistry = try Evt.run(["publish", "topic:nowhere", "--value-schema", schema], stdin: "{\"id\":1}\n",
                                     environment: ["EVT_KAFKA_BROKERS": "127.0.0.1:1"])
        #expect(noRegistry.status == 2 && noRegistry.stderr.contains("--schema-registry"), "\(noRegistry.stderr)")
    }

    @Test("JSON Schema both ways: tail prints JSONSerializer's values; publish validates, and JSONDeserializer reads what it sent")
    func jsonSchema() throws {
        let setup = try Setup(topics: ["items", "more"])
        let produced = try setup.peer(["produce-json", "items", "20"])   // registers items-value
        let tail = try Evt.run(["replay-from-offset", "topic:items", "beginning"], environment: setup.environment)
        #expect(tail.status == 0, "\(tail.stderr)")
        let records = tail.stdoutLines.map(Setup.object)
        #expect(Self.distinct(records) == Self.distinct(produced))
        #expect(records.allSatisfy { $0["value_schema_id"] is Int })
        // Into another topic under the same subject's schema: valid lines go, a bad one is named.
        let lines = try produced.map { String(decoding: try JSONSerialization.data(withJSONObject: $0["value"]!), as: UTF8.self) }
        let publish = try Evt.run(["publish", "topic:more", "--value-schema", "items-value"],
                                  stdin: lines.joined(separator: "\n") + "\n", environment: setup.environment)
        #expect(publish.status == 0, "\(publish.stderr)")
        let back = try setup.peer(["consume-json", "more", "20"])
        #expect(Self.distinct(back) == Self.distinct(produced))
        let bad = try Evt.run(["publish", "topic:more", "--value-schema", "items-value"],
                              stdin: #"{"id":1,"item":"x","qty":0}"# + "\n", environment: setup.environment)
        #expect(bad.status == 3, "\(bad.stderr)")
        #expect(bad.stderr.contains("line 1: the value does not fit JSON schema") && bad.stderr.contains(".qty"), "\(bad.stderr)")
    }

    @Test("publish --dry-run with a local JSON Schema file names each line that does not fit")
    func dryRunJSONSchema() throws {
        let scratch = Scratch()
        let schema = scratch.write("order.schema.json", Data(#"{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"id":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}}},"required":["id"]}"#.utf8))
        let result = try Evt.run(["publish", "topic:nowhere", "--dry-run", "--value-schema", schema, "--on-error", "skip"],
                                 stdin: "{\"id\":1}\n{\"tags\":[]}\n{\"id\":3,\"tags\":[\"a\",4]}\n", environment: ["EVT_KAFKA_BROKERS": "127.0.0.1:1"])
        #expect(result.status == 3, "\(result.stderr)")
        #expect(!result.stderr.contains("line 1:"))
        #expect(result.stderr.contains("line 2: the value does not fit JSON schema"), "\(result.stderr)")
        #expect(result.stderr.contains("line 3:") && result.stderr.contains(".tags[1]"), "\(result.stderr)")
    }

    @Test("the JSON-Schema-Test-Suite's required draft 7 tests through publish --dry-run --value-schema FILE",
          .enabled(if: JSONSchemaTestSuite.isInstalled, "Debian's json-schema-test-suite is not installed"))
    func jsonSchemaTestSuite() throws {
        let scratch = Scratch()
        // One evt run per schema: its tests' data as lines, the bad ones named on stderr.
        var groups: [(schema: [UInt8], cases: [JSONSchemaSuiteCase])] = []
        var skipped = 0
        for test in try JSONSchemaTestSuite.cases(draft: "draft7") {
            if test.needsRemote { skipped += 1; continue }
            if groups.last?.schema == test.schema { groups[groups.count - 1].cases.append(test) } else { groups.append((test.schema, [test])) }
        }
        var passed = 0
        var failed: [String] = []
        for (index, group) in groups.enumerated() {
            let schema = scratch.write("schema-\(index).json", Data(group.schema))
            let input = Data(group.cases.map { $0.dataLine + [0x0A] }.joined())
            let result = try Evt.run(["publish", "topic:suite", "--dry-run", "--value-schema", schema, "--on-error", "skip"],
                                     stdin: input, environment: ["EVT_KAFKA_BROKERS": "127.0.0.1:1"])
            let bad = Set(result.stderr.split(separator: "\n").compactMap { line -> Int? in
                guard line.hasPrefix("evt: line ") else { return nil }
                return Int(line.dropFirst("evt: line ".count).prefix { $0.isNumber })
            })
            for (number, test) in zip(1..., group.cases) {
                if bad.contains(number) != test.valid { passed += 1 } else { failed.append("\(test.name) (\(test.valid ? "valid, rejected" : "invalid, accepted"))") }
            }
            if result.status != (bad.isEmpty ? 0 : 3) { failed.append("\(group.cases[0].file): exit \(result.status): \(result.stderr.prefix(300))") }
        }
        let total = passed + failed.count
        print("JSON-Schema-Test-Suite draft7 through evt publish --dry-run: \(passed) of \(total) passed, \(skipped) skipped (need the remote server at localhost:1234)")
        #expect(total > 250)
        #expect(failed.isEmpty, "\(failed.count) failed: \(failed.prefix(20).joined(separator: "\n"))")
    }

    @Test("a stream entry whose value field is framed: tail and claim-pending print its JSON text and value.schema_id, as a copy writes it")
    func streamEntries() throws {
        let setup = try Setup(topics: ["orders"])
        let redis = try RedisServer()
        var environment = setup.environment
        environment["EVT_REDIS_URL"] = redis.url
        _ = try setup.peer(["produce-avro", "orders", "3"])
        let reference = try setup.peer(["consume-avro", "orders", "3"])
        // Copied without a registry: the framed bytes as they are, into the entries' value field.
        var raw = environment
        raw["EVT_SCHEMA_REGISTRY_URL"] = nil
        #expect(try Evt.run(["copy-between", "topic:orders", "stream:s"], environment: raw).status == 0)
        let tail = try Evt.run(["tail", "stream:s", "-n", "3"], environment: environment)
        #expect(tail.status == 0, "\(tail.stderr)")
        let values = tail.stdoutLines.map { Setup.object($0)["value"] as? [String: Any] ?? [:] }
        #expect(values.count == 3)
        for (fields, expected) in zip(values, reference.suffix(3)) {
            let text = fields["value"] as? String ?? ""
            #expect(Self.same(Setup.object(text), expected["value"]), "\(text)")
            #expect(fields["value.schema_id"] is String)
        }
        // The same entries, pending in a group and claimed.
        _ = try redis.cli(["XGROUP", "CREATE", "s", "g", "0"])
        _ = try redis.cli(["XREADGROUP", "GROUP", "g", "worker", "COUNT", "3", "STREAMS", "s", ">"])
        let claimed = try Evt.run(["claim-pending", "stream:s", "g", "--min-idle", "0ms", "--no-ack"], environment: environment)
        #expect(claimed.status == 0, "\(claimed.stderr)")
        #expect(claimed.stdoutLines.count == 3 && claimed.stdoutText.contains(#""value.schema_id":"#), "\(claimed.stdoutText)")
    }

    @Test("copy-between and replay --to into a topic take --value-schema: a JSON topic becomes an Avro one that AvroDeserializer reads")
    func copyIntoSchemaTopic() throws {
        let setup = try Setup(topics: ["orders", "plain", "copied", "replayed"])
        let produced = try setup.peer(["produce-avro", "orders", "12"])   // registers orders-value
        let lines = try produced.map { String(decoding: try JSONSerialization.data(withJSONObject: $0["value"]!), as: UTF8.self) }
        #expect(try Evt.run(["publish", "topic:plain"], stdin: lines.joined(separator: "\n") + "\n", environment: setup.environment).status == 0)
        let copy = try Evt.run(["copy-between", "topic:plain", "topic:copied", "--value-schema", "orders-value"], environment: setup.environment)
        #expect(copy.status == 0, "\(copy.stderr)")
        let replay = try Evt.run(["replay-from-offset", "topic:plain", "beginning", "--to", "topic:replayed", "--value-schema", "orders-value"],
                                 environment: setup.environment)
        #expect(replay.status == 0, "\(replay.stderr)")
        for topic in ["copied", "replayed"] {
            let back = try setup.peer(["consume-avro", topic, "12"])
            #expect(Self.distinct(back) == Self.distinct(produced), "\(topic)")
        }
        // Into a stream, --value-schema has nothing to encode: a usage error that says why.
        let refused = try Evt.run(["copy-between", "topic:plain", "stream:s", "--value-schema", "orders-value"], environment: setup.environment)
        #expect(refused.status == 2 && refused.stderr.contains("encode records for a topic"), "\(refused.stderr)")
    }

    @Test("README's Schemas examples run as written against a registry, and the copy back into a topic is byte for byte")
    func readmeExamples() throws {
        var script = try readmeShellBlocks("## Schemas")
        #expect(script.contains("--value-schema payment.avsc"), "the examples were found")
        // The copy back gave the same bytes: keys, values (framed Avro) and nothing else.
        script += """
            evt tail topic:payments -n 2 --decode none | jq -c '[.key, .value, .value_b64]' > before
            evt tail topic:payments-again -n 2 --decode none | jq -c '[.key, .value, .value_b64]' > after
            cmp before after && echo "same bytes"
            """
        let registry = try SchemaRegistryServer()
        let scratch = Scratch()
        let path = scratch.write("schemas.sh", Data(script.utf8))
        let result = try Evt.run(["sandbox", "--topic", "payments:1", "--topic", "payments-again:1",
                                  "--run", "cd \(scratch.path) && sh -e \(path)"],
                                 environment: ["EVT_SCHEMA_REGISTRY_URL": registry.url], timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutText.contains("exit 3"), "\(result.stdoutText)")
        #expect(result.stderr.contains("line 2: the value does not fit Avro schema payment.avsc: .amount: expected double"), "\(result.stderr)")
        #expect(result.stdoutText.contains(#""value":{"id":2,"amount":12.25,"note":{"string":"gift"}},"value_schema_id":1}"#), "\(result.stdoutText)")
        #expect(result.stdoutText.contains(#""value.schema_id":"1""#), "\(result.stdoutText)")
        #expect(result.stdoutText.contains("same bytes"), "\(result.stdoutText)")
    }
}
