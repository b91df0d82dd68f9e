import Foundation

/// One test of the official JSON-Schema-Test-Suite: a schema, a value, and whether the value
/// is valid under it. The schema and the value are the suite's own bytes, never re-serialized
/// (so `1.0` stays `1.0`), the schema with the draft's `$schema` added when it has none.
public struct JSONSchemaSuiteCase: Sendable {
    /// `draft7/required.json`
    public let file: String
    /// The group's description, then the test's: `required validation / present required property is valid`.
    public let description: String
    public let schema: [UInt8]
    public let data: [UInt8]
    public let valid: Bool
    /// Its schema refers to the suite's remote server (http://localhost:1234), which no test runs.
    public let needsRemote: Bool

    /// `data` on one line, for NDJSON input (`evt publish --dry-run`): a raw line break can only
    /// be whitespace between tokens, so each becomes a space.
    public var dataLine: [UInt8] { data.map { $0 == 0x0A || $0 == 0x0D ? 0x20 : $0 } }

    /// `draft7/required.json: required validation / present required property is valid`: the
    /// name a list of known failures uses.
    public var name: String { "\(file): \(description)" }
}

/// The JSON-Schema-Test-Suite as Debian's `json-schema-test-suite` package installs it.
public enum JSONSchemaTestSuite {
    public static let directory = "/usr/share/json-schema-test-suite/tests"

    public static var isInstalled: Bool {
        FileManager.default.fileExists(atPath: directory + "/draft7/required.json")
    }

    /// Every required test of a draft (`draft4`, `draft6`, `draft7`; the optional/ folder left
    /// out), file by file in name order, groups and tests in the files' order.
    public static func cases(draft: String) throws -> [JSONSchemaSuiteCase] {
        let folder = directory + "/" + draft
        let uri = "http://json-schema.org/\(draft.replacingOccurrences(of: "draft", with: "draft-0"))/schema#"
        var cases: [JSONSchemaSuiteCase] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: folder).filter({ $0.hasSuffix(".json") }).sorted() {
            let text = Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name)))
            let file = draft + "/" + name
            for group in RawJSON.elements(of: text) {
                let members = RawJSON.members(of: group, in: text)
                guard let schema = members["schema"], let tests = members["tests"] else { continue }
                let schemaBytes = declaring(uri, in: Array(text[schema]))
                let needsRemote = String(decoding: schemaBytes, as: UTF8.self).contains("localhost:1234")
                let groupDescription = members["description"].map { RawJSON.string(text[$0]) } ?? "?"
                for test in RawJSON.elements(of: text, in: tests) {
                    let fields = RawJSON.members(of: test, in: text)
                    guard let data = fields["data"], let valid = fields["valid"] else { continue }
                    cases.append(JSONSchemaSuiteCase(
                        file: file,
                        description: groupDescription + " / " + (fields["description"].map { RawJSON.string(text[$0]) } ?? "?"),
                        schema: schemaBytes, data: Array(text[data]),
                        valid: text[valid].elementsEqual("true".utf8), needsRemote: needsRemote))
                }
            }
        }
        return cases
    }

    /// The schema with `"$schema": uri` as its first member, unless it is no object or has one.
    static func declaring(_ uri: String, in schema: [UInt8]) -> [UInt8] {
        guard let open = schema.firstIndex(where: { !RawJSON.isSpace($0) }), schema[open] == UInt8(ascii: "{"),
              RawJSON.members(of: schema.indices, in: schema)["$schema"] == nil else { return schema }
        let isEmpty = schema[(open + 1)...].first(where: { !RawJSON.isSpace($0) }) == UInt8(ascii: "}")
        let member = "\"$schema\":\"\(uri)\"" + (isEmpty ? "" : ",")
        return Array(schema[...open]) + Array(member.utf8) + Array(schema[(open + 1)...])
    }
}

/// Ranges of values in well-formed JSON text, so that a suite's values are passed on as the
/// bytes the suite wrote.
enum RawJSON {
    static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }

    static func skipSpace(_ text: [UInt8], _ index: inout Int, _ end: Int) {
        while index < end, isSpace(text[index]) { index += 1 }
    }

    /// The end of the value that starts at `index`.
    static func valueEnd(_ text: [UInt8], from index: Int, _ end: Int) -> Int {
        var i = index
        var depth = 0
        repeat {
            switch text[i] {
            case UInt8(ascii: "\""):
                i += 1
                while text[i] != UInt8(ascii: "\"") { i += text[i] == UInt8(ascii: "\\") ? 2 : 1 }
                i += 1
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1; i += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1; i += 1
            default:
                if depth == 0 {   // a scalar at the top: up to the next delimiter
                    while i < end, !isSpace(text[i]), text[i] != UInt8(ascii: ","), text[i] != UInt8(ascii: "}"), text[i] != UInt8(ascii: "]") { i += 1 }
                } else {
                    i += 1
                }
            }
        } while depth > 0 && i < end
        return i
    }

    /// The elements of the array in `range` (all of `text` by default).
    static func elements(of text: [UInt8], in range: Range<Int>? = nil) -> [Range<Int>] {
        let range = range ?? text.indices
        var i = range.lowerBound
        skipSpace(text, &i, range.upperBound)
        guard i < range.upperBound, text[i] == UInt8(ascii: "[") else { return [] }
        i += 1
        var out: [Range<Int>] = []
        while true {
            skipSpace(text, &i, range.upperBound)
            guard i < range.upperBound, text[i] != UInt8(ascii: "]") else { return out }
            let end = valueEnd(text, from: i, range.upperBound)
            out.append(i..<end)
            i = end
            skipSpace(text, &i, range.upperBound)
            guard i < range.upperBound, text[i] == UInt8(ascii: ",") else { return out }
            i += 1
        }
    }

    /// The members of the object in `range`, by their decoded names.
    static func members(of range: Range<Int>, in text: [UInt8]) -> [String: Range<Int>] {
        var i = range.lowerBound
        skipSpace(text, &i, range.upperBound)
        guard i < range.upperBound, text[i] == UInt8(ascii: "{") else { return [:] }
        i += 1
        var out: [String: Range<Int>] = [:]
        while true {
            skipSpace(text, &i, range.upperBound)
            guard i < range.upperBound, text[i] == UInt8(ascii: "\"") else { return out }
            let nameEnd = valueEnd(text, from: i, range.upperBound)
            let name = string(text[i..<nameEnd])
            i = nameEnd
            skipSpace(text, &i, range.upperBound)
            i += 1   // ':'
            skipSpace(text, &i, range.upperBound)
            let end = valueEnd(text, from: i, range.upperBound)
            out[name] = i..<end
            i = end
            skipSpace(text, &i, range.upperBound)
            guard i < range.upperBound, text[i] == UInt8(ascii: ",") else { return out }
            i += 1
        }
    }

    /// A string literal's text.
    static func string(_ literal: ArraySlice<UInt8>) -> String {
        (try? JSONSerialization.jsonObject(with: Data(literal), options: .fragmentsAllowed)) as? String ?? ""
    }
}
