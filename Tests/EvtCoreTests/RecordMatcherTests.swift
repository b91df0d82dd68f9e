import Testing
@testable import EvtCore
#if canImport(Glibc)
import Glibc
#endif

@Suite("--match")
struct RecordMatcherTests {
    /// Matches the record that evt prints as `record` (checked: it prints as exactly that).
    func matches(_ words: [String], _ record: String) throws -> Bool {
        let matcher = RecordMatcher(try words.map { try RecordMatcher.Condition(matchOption: $0, usage: nil) })
        let fixture = RecordFixture(line: record)
        #expect(fixture.printed == record, "the fixture prints as the line it was read from")
        return matcher.matches(fixture.record)
    }

    let kafka = #"{"topic":"t","partition":0,"offset":1,"timestamp":1,"key":"user-17","headers":{"src":"web","tag":["a","b"]},"value":{"type":"signup","user":{"id":7},"ok":true}}"#
    let stream = #"{"stream":"s","id":"1-0","value":{"type":"signup","user":"{\"id\":7}","n":"5"}}"#

    @Test("key and header globs, a repeated header's values, value paths into objects and into a field's JSON")
    func conditions() throws {
        #expect(try matches(["key=user-1*"], kafka))
        #expect(try !matches(["key=user-2*"], kafka))
        #expect(try matches(["header.src=w?b"], kafka))
        #expect(try matches(["header.tag=b"], kafka))
        #expect(try !matches(["header.missing=*"], kafka))
        #expect(try matches(["value.type=signup"], kafka))
        #expect(try matches(["value.user.id=7"], kafka))
        #expect(try matches(["value.ok=true"], kafka))
        #expect(try !matches(["value.user.id=8"], kafka))
        #expect(try matches(["value.type=signup", "value.n=5", "value.user.id=7"], stream))
        #expect(try !matches(["key=*"], stream), "a stream entry has no key")
        #expect(try !matches(["value.type=signup", "value.n=6"], stream), "all must hold")
        #expect(try matches(["key=[uv]ser-17"], kafka))
    }

    @Test("a condition that is not FIELD=PATTERN of a known field is a usage error")
    func usage() {
        for word in ["key", "partition=1", "header.=x", "value..a=1", "nokey"] {
            #expect(throws: EvtError.self, "\(word)") { _ = try RecordMatcher.Condition(matchOption: word, usage: nil) }
        }
    }

    @Test("a list item: its value as text or the JSON it is; no key, no headers")
    func listItem() throws {
        let json = #"{"list":"jobs","value":{"job":"mail","to":{"id":3}}}"#
        #expect(try matches(["value.job=mail", "value.to.id=3"], json))
        #expect(try !matches(["value.job=print"], json))
        #expect(try !matches(["key=*"], json))
        #expect(try !matches(["header.job=*"], json))
        let text = #"{"list":"jobs","value":"send \"mail\""}"#
        #expect(try matches([#"value=send "mail""#], text))
        #expect(try !matches(["value.job=mail"], text), "text that is not JSON has no paths")
    }

    @Test("a Kafka tombstone's value is null; a key or value that is not UTF-8 prints as _b64, which no condition reads")
    func nullAndBinary() throws {
        let tombstone = #"{"topic":"t","partition":0,"offset":2,"timestamp":null,"key":"k","value":null}"#
        #expect(try matches(["value=null", "key=k"], tombstone))
        #expect(try !matches(["value.a=null"], tombstone))
        let binary = #"{"topic":"t","partition":0,"offset":3,"timestamp":5,"key_b64":"/w==","value_b64":"/wA="}"#
        #expect(try !matches(["key=*"], binary))
        #expect(try !matches(["value=*"], binary))
        let fields = #"{"stream":"s","id":"1-0","value":{"b64://79":"x","raw":{"b64":"/wA="}}}"#
        #expect(try matches(["value.b64://79=x"], fields), "a field name that is not UTF-8 is named as evt prints it")
        #expect(try matches([#"value.raw={"b64":"/wA="}"#], fields))
        #expect(try matches(["value.raw.b64=/wA="], fields))
        #expect(try matches([#"value={"b64://79":"x","raw":{"b64":"/wA="}}"#], fields))
    }

    /// The keys, values, headers and fields below, against the conditions below: the matcher
    /// on the Record answers as the reference (matching the NDJSON line evt prints) does.
    @Test("on every kind of record (a channel message and a re-read pending entry too), the same answer as matching the line evt prints for it")
    func sameAsPrinted() throws {
        let payloads: [[UInt8]?] = [
            nil, bytes("user-17"), bytes(#"{"a":1}"#), bytes("7"), bytes("null"), bytes(#""q""#), bytes("a\"b\\c\n"),
            [0xFF, 0xFE], bytes("has\u{0}nul"), bytes(""), bytes(#" {"a":1}"#), bytes("plain text"), bytes("[1,2]"),
            bytes("true"), bytes(#"{"type":"signup","user":{"id":7},"ok":true,"n":null,"s":"{\"id\":\"x\"}"}"#),
            bytes("{\"a\": 1}\n"), bytes(#"{"user":"{\"id\":7}"}"#), bytes(#"{"e\"sc":"v\u0041","t":"a\\b"}"#),
            bytes(#"{"a":{"b":"{\"c\":\"{\\\"d\\\":1}\"}"}}"#), bytes(#"{"a": {"b" : [1, 2]}}"#),
        ]
        let headerSets: [[([UInt8], [UInt8]?)]] = [
            [], [(bytes("src"), bytes("web"))], [(bytes("tag"), bytes("a")), (bytes("tag"), bytes("b"))],
            [(bytes("tag"), nil), (bytes("tag"), bytes("b"))], [([0xFF, 0xFE, 0xFD], bytes("x"))], [(bytes("t"), [0xFF])],
            [(bytes("src"), bytes("web")), (bytes("other"), bytes("1")), (bytes("src"), bytes("w\nx"))],
            [(bytes("b64://79"), bytes("lit")), ([0xFF, 0xFE, 0xFD], bytes("raw"))], [(bytes("a\"b"), bytes("x"))],
        ]
        let fieldSets: [[([UInt8], [UInt8])]] = [
            [(bytes("type"), bytes("signup")), (bytes("user"), bytes(#"{"id":7}"#)), (bytes("n"), bytes("5"))],
            [([0xFF, 0x01], bytes("v"))], [(bytes("f"), [0xFF, 0x00])], [(bytes("dup"), bytes("1")), (bytes("dup"), bytes("2"))],
            [], [(bytes("a\"b"), bytes("x"))], [(bytes("b64://79"), bytes("lit")), ([0xFF, 0xFE, 0xFD], bytes("raw"))],
            [(bytes("s"), bytes(#"{"id":"x"}"#)), (bytes("null"), bytes("null")), (bytes("t"), bytes("{\"a\": 1}\n"))],
        ]
        let words = [
            "key=*", "key=user-1*", #"key={"a":1}"#, "key=7", "key=null", #"key="q""#, "key=a*", "key=", #"key=a"b\\c?"#,
            "key=has*", "key=[uv]ser-17", "header.src=w?b", "header.src=w*x", "header.tag=b", "header.tag=a", "header.tag=*",
            "header.b64://79=*", "header.b64://79=raw", "header.b64://79=lit", "header.b64:/w===*", "header.t=*", "header.missing=*", #"header.a"b=x"#,
            "value=null", "value=42", "value=7", "value=[1,2]", "value=plain text", "value=true", "value=", "value=user-17",
            #"value={"a":1}"#, #"value= {"a":1}"#, "value.a=1", "value.a.b=[1, 2]", "value.a.b.c.d=1", "value.type=signup",
            "value.user.id=7", "value.ok=true", "value.n=null", "value.n=5", "value.s.id=x", #"value.user={"id":7}"#,
            "value.user.id=8", #"value.e"sc=vA"#, #"value.t=a\b"#, #"value.f={"b64":"/wA="}"#, "value.f.b64=/wA=",
            "value.f.b64.x=1", "value.dup=1", "value.dup=2", #"value.a"b=x"#, "value.b64://79=lit", "value.b64://79=raw",
            #"value={"type":"signup","user":"{\"id\":7}","n":"5"}"#, "value={}", "value.null=null", "value.t.a=1",
            #"value={"b64:/wE=":"v"}"#, #"value={"b64://79":"x"}"#,
        ]
        let conditions = try words.map { try RecordMatcher.Condition(matchOption: $0, usage: nil) }
        var records: [RecordFixture] = []
        for key in payloads {
            for value in payloads {
                records.append(RecordFixture(kafkaKey: key, value: value, headers: []))
            }
        }
        for headers in headerSets {
            records.append(RecordFixture(kafkaKey: bytes("k"), value: bytes("{}"), headers: headers))
        }
        for fields in fieldSets {
            records.append(RecordFixture(fields: fields))
            records.append(RecordFixture(fields: fields, deliveries: 3))
        }
        for value in payloads {
            records.append(RecordFixture(listValue: value ?? []))
            records.append(RecordFixture(channel: "news", pattern: nil, value: value ?? []))
            records.append(RecordFixture(channel: "news", pattern: "n*", value: value ?? []))
        }

        var mismatches: [String] = []
        var passes = 0
        for fixture in records {
            for (index, condition) in conditions.enumerated() {
                for set in [[condition], [condition, conditions[(index * 7) % conditions.count]]] {
                    let expected = PrintedLineReference(set).matches(fixture.printed)
                    if RecordMatcher(set).matches(fixture.record) != expected {
                        mismatches.append("\(set) on \(fixture.printed): the line says \(expected)")
                    }
                    if expected { passes += 1 }
                }
            }
        }
        let mismatchCount = mismatches.count
        #expect(mismatchCount == 0, "first: \(mismatches.prefix(5))")
        #expect(passes > 200, "the conditions should pass on a good share of the records (\(passes))")
    }

    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
}

/// A Record whose buffers this object owns, and the line evt prints for it.
final class RecordFixture {
    let record = Record()
    private var storage: [UnsafeMutableRawBufferPointer] = []

    var printed: String {
        let writer = OutputWriter(fd: -1, flushThreshold: 0)
        writer.appendRecord(record)
        return String(decoding: writer.buffer.dropLast(), as: UTF8.self)
    }

    deinit { storage.forEach { $0.deallocate() } }

    private func keep(_ bytes: [UInt8]) -> UnsafeRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
        buffer.copyBytes(from: bytes)
        storage.append(buffer)
        return UnsafeRawBufferPointer(rebasing: buffer[0..<bytes.count])
    }

    init(kafkaKey key: [UInt8]?, value: [UInt8]?, headers: [([UInt8], [UInt8]?)], offset: Int64 = 1, timestamp: Int64? = 1) {
        record.origin = .kafka
        record.quotedSource = OutputWriter.quoted("t")
        record.topic = Array("t".utf8)
        record.offset = offset
        record.timestamp = timestamp
        record.key = key.map(keep)
        record.value = value.map(keep)
        for (name, value) in headers {
            name.withUnsafeBytes { name in
                if let value { value.withUnsafeBytes { record.headers.append(name: name, value: $0) } } else { record.headers.append(name: name, value: nil) }
            }
        }
    }

    /// `deliveries`: a pending entry re-read (subscribe, claim-pending).
    init(fields: [([UInt8], [UInt8])], deliveries: Int? = nil) {
        record.origin = .stream
        record.quotedSource = OutputWriter.quoted("s")
        record.id = keep(Array("1-0".utf8))
        record.fields.replace(with: fields.map { (keep($0.0), keep($0.1)) })
        record.deliveries = deliveries
    }

    init(channel: String, pattern: String?, value: [UInt8]) {
        record.origin = .channel
        record.channel = keep(Array(channel.utf8))
        record.pattern = pattern.map { keep(Array($0.utf8)) }
        record.value = keep(value)
    }

    init(listValue value: [UInt8]) {
        record.origin = .list
        record.quotedSource = OutputWriter.quoted("jobs")
        record.value = keep(value)
    }

    /// The record of a line as `tail` prints it: a Kafka record, a stream entry or a list item.
    convenience init(line: String) {
        let text = Array(line.utf8)
        func member(_ name: String) -> (range: Range<Int>, kind: JSONKind)? {
            text.withUnsafeBytes { JSON.find(path: [Array(name.utf8)], in: $0) }
        }
        func literal(_ found: (range: Range<Int>, kind: JSONKind)) -> [UInt8] { Array(text[found.range]) }
        if member("stream") != nil {
            var fields: [([UInt8], [UInt8])] = []
            let object = literal(member("value")!)
            object.withUnsafeBytes { bytes in
                JSON.forEachMember(ofObject: bytes) { name, value, kind in
                    fields.append((RecordFixture.name(UnsafeRawBufferPointer(rebasing: bytes[name])),
                                   RecordFixture.payload(UnsafeRawBufferPointer(rebasing: bytes[value]), kind)!))
                }
            }
            self.init(fields: fields)
        } else if member("list") != nil {
            self.init(listValue: text.withUnsafeBytes { RecordFixture.kafkaPayload(in: $0, "value") } ?? [])
        } else {
            var headers: [([UInt8], [UInt8]?)] = []
            if let found = member("headers") {
                let object = literal(found)
                object.withUnsafeBytes { bytes in
                    JSON.forEachMember(ofObject: bytes) { name, value, kind in
                        let headerName = RecordFixture.name(UnsafeRawBufferPointer(rebasing: bytes[name]))
                        let valueBytes = UnsafeRawBufferPointer(rebasing: bytes[value])
                        if kind == .array {
                            JSON.forEachElement(ofArray: valueBytes) { element, kind in
                                headers.append((headerName, RecordFixture.payload(UnsafeRawBufferPointer(rebasing: valueBytes[element]), kind)))
                            }
                        } else {
                            headers.append((headerName, RecordFixture.payload(valueBytes, kind)))
                        }
                    }
                }
            }
            let (key, value) = text.withUnsafeBytes { (RecordFixture.kafkaPayload(in: $0, "key"), RecordFixture.kafkaPayload(in: $0, "value")) }
            let number = { (name: String) in String(decoding: literal(member(name)!), as: UTF8.self) }
            self.init(kafkaKey: key, value: value, headers: headers, offset: Int64(number("offset"))!, timestamp: Int64(number("timestamp")))
        }
    }

    private static func unescaped(_ literal: UnsafeRawBufferPointer) -> [UInt8] {
        var out: [UInt8] = []
        JSON.appendUnescaped(stringLiteral: literal, to: &out)
        return out
    }

    /// A member name, with `b64:…` decoded.
    private static func name(_ literal: UnsafeRawBufferPointer) -> [UInt8] {
        let text = unescaped(literal)
        if text.starts(with: Array("b64:".utf8)), let decoded = text.dropFirst(4).withUnsafeBytes({ Base64.decode($0) }) {
            return decoded
        }
        return text
    }

    /// A string's text, `{"b64":…}` decoded, null as nil, other JSON as it is.
    private static func payload(_ bytes: UnsafeRawBufferPointer, _ kind: JSONKind) -> [UInt8]? {
        switch kind {
        case .null: return nil
        case .string: return unescaped(bytes)
        case .object:
            if let encoded = JSON.find(path: [Array("b64".utf8)], in: bytes) {
                return Base64.decode(UnsafeRawBufferPointer(rebasing: bytes[(encoded.range.lowerBound + 1)..<(encoded.range.upperBound - 1)]))
            }
            return Array(bytes)
        default: return Array(bytes)
        }
    }

    /// `key`/`value` of a Kafka record or list item: a string's text, other JSON as it is;
    /// or their `_b64` forms.
    private static func kafkaPayload(in line: UnsafeRawBufferPointer, _ name: String) -> [UInt8]? {
        if let found = JSON.find(path: [Array(name.utf8)], in: line) {
            let literal = UnsafeRawBufferPointer(rebasing: line[found.range])
            return found.kind == .string ? unescaped(literal) : found.kind == .null ? nil : Array(literal)
        }
        guard let found = JSON.find(path: [Array((name + "_b64").utf8)], in: line) else { return nil }
        return Base64.decode(UnsafeRawBufferPointer(rebasing: line[(found.range.lowerBound + 1)..<(found.range.upperBound - 1)]))
    }
}

/// The reference for `--match`: its conditions read on the NDJSON line evt prints, as
/// evt(1) documents them (and as evt matched before it matched Records).
struct PrintedLineReference {
    let conditions: [RecordMatcher.Condition]

    init(_ conditions: [RecordMatcher.Condition]) { self.conditions = conditions }

    func matches(_ line: String) -> Bool {
        let line = Array(line.utf8)
        return line.withUnsafeBytes { line in
            conditions.allSatisfy { condition in
                switch condition {
                case .key(let glob):
                    guard let found = JSON.find(path: [Array("key".utf8)], in: line) else { return false }
                    return text(of: found, in: line).map { matchesGlob(glob, $0) } ?? false
                case .header(let name, let glob):
                    guard let found = JSON.find(path: [Array("headers".utf8), Array(name.utf8)], in: line) else { return false }
                    if found.kind == .array {
                        var any = false
                        JSON.forEachElement(ofArray: UnsafeRawBufferPointer(rebasing: line[found.range])) { range, kind in
                            let base = found.range.lowerBound
                            let element = ((base + range.lowerBound)..<(base + range.upperBound), kind)
                            if !any, kind == .string, let text = text(of: element, in: line) { any = matchesGlob(glob, text) }
                        }
                        return any
                    }
                    guard found.kind == .string else { return false }
                    return text(of: found, in: line).map { matchesGlob(glob, $0) } ?? false
                case .value(let path, let expected):
                    return value(at: [Array("value".utf8)] + path.map { Array($0.utf8) }, in: line) == Array(expected.utf8)
                }
            }
        }
    }

    /// A string's unescaped text, or the JSON text of anything else but null.
    private func text(of found: (range: Range<Int>, kind: JSONKind), in bytes: UnsafeRawBufferPointer) -> [UInt8]? {
        let literal = UnsafeRawBufferPointer(rebasing: bytes[found.range])
        switch found.kind {
        case .null: return nil
        case .string:
            var text: [UInt8] = []
            JSON.appendUnescaped(stringLiteral: literal, to: &text)
            return text
        default: return Array(literal)
        }
    }

    /// The value at `path`, reading on into a string that holds JSON where the path goes on.
    private func value(at path: [[UInt8]], in bytes: UnsafeRawBufferPointer) -> [UInt8]? {
        for split in stride(from: path.count, through: 1, by: -1) {
            guard let found = JSON.find(path: Array(path[..<split]), in: bytes) else { continue }
            if split == path.count { return found.kind == .null ? Array("null".utf8) : text(of: found, in: bytes) }
            guard found.kind == .string, let inner = text(of: found, in: bytes) else { return nil }
            return inner.withUnsafeBytes { innerBytes in
                (try? JSON.validate(innerBytes)) == nil ? nil : value(at: Array(path[split...]), in: innerBytes)
            }
        }
        return nil
    }

    private func matchesGlob(_ pattern: String, _ text: [UInt8]) -> Bool {
        guard !text.contains(0) else { return false }
        var subject = text.map { CChar(bitPattern: $0) }
        subject.append(0)
        return fnmatch(pattern, subject, 0) == 0
    }
}
