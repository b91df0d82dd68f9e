import Foundation
import Testing
@testable import EvtCore

// Unit tests of the NDJSON codec: JSON (validation, walking, unescaping), JSONOutput (the
// payload rule of CONTRACT.md), Base64, RecordFormat and InputDecoder (publish's input modes).
// LineReader is in LineReaderTests.swift.

// MARK: - Helpers

private func utf8(_ text: String) -> [UInt8] { Array(text.utf8) }

private func text(_ bytes: some Sequence<UInt8>) -> String { String(decoding: Array(bytes), as: UTF8.self) }

private func validate(_ bytes: [UInt8]) -> Result<JSONKind, JSONSyntaxError> {
    bytes.withUnsafeBytes { buffer in
        do throws(JSONSyntaxError) { return .success(try JSON.validate(buffer)) } catch { return .failure(error) }
    }
}

private func validate(_ text: String) -> Result<JSONKind, JSONSyntaxError> { validate(utf8(text)) }

/// The error of an input that must be rejected; nil when it was accepted.
private func syntaxError(_ bytes: [UInt8]) -> JSONSyntaxError? {
    if case .failure(let error) = validate(bytes) { return error }
    return nil
}

private func syntaxError(_ text: String) -> JSONSyntaxError? { syntaxError(utf8(text)) }

/// The stdlib's own verdict on UTF-8: decoding repairs invalid input, so it round-trips
/// exactly when it is valid.
private func stdlibSaysValidUTF8(_ bytes: [UInt8]) -> Bool {
    Array(String(decoding: bytes, as: UTF8.self).utf8) == bytes
}

private func isValidUTF8(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { JSON.isValidUTF8($0) } }

private func unescape(_ literal: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    literal.withUnsafeBytes { JSON.appendUnescaped(stringLiteral: $0, to: &out) }
    return out
}

private func unescape(_ literal: String) -> [UInt8] { unescape(utf8(literal)) }

private func quoted(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    bytes.withUnsafeBytes { JSONOutput.appendQuoted($0, to: &out) }
    return out
}

private func payload(_ bytes: [UInt8]?, _ name: JSONOutput.PayloadName = .value) -> String {
    var out: [UInt8] = []
    if let bytes {
        bytes.withUnsafeBytes { JSONOutput.appendPayload($0, name: name, to: &out) }
    } else {
        JSONOutput.appendPayload(nil, name: name, to: &out)
    }
    return text(out)
}

private func stringOrB64(_ bytes: [UInt8]?) -> [UInt8] {
    var out: [UInt8] = []
    if let bytes {
        bytes.withUnsafeBytes { JSONOutput.appendStringOrB64($0, to: &out) }
    } else {
        JSONOutput.appendStringOrB64(nil, to: &out)
    }
    return out
}

private func base64(_ bytes: [UInt8]) -> String {
    var out: [UInt8] = []
    bytes.withUnsafeBytes { Base64.append($0, to: &out) }
    return text(out)
}

private func unbase64(_ text: [UInt8]) -> [UInt8]? { text.withUnsafeBytes { Base64.decode($0) } }

private func unbase64(_ text: String) -> [UInt8]? { unbase64(utf8(text)) }

/// Foundation's reading of a JSON string literal, as an independent oracle.
private func foundationString(_ literal: [UInt8]) -> String? {
    (try? JSONSerialization.jsonObject(with: Data(literal), options: .fragmentsAllowed)) as? String
}

/// Deterministic randomness, so a failure can be replayed.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random bytes biased towards UTF-8's interesting corners: ASCII, continuation bytes, every
/// lead byte, and well-formed encodings of scalars near the range boundaries.
private func interestingBytes(count: Int, using rng: inout SplitMix64) -> [UInt8] {
    let scalars: [UInt32] = [0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF, 0x10000, 0x10FFFF, 0xE9, 0x4E2D, 0x1F600]
    var out: [UInt8] = []
    while out.count < count {
        switch Int.random(in: 0..<6, using: &rng) {
        case 0, 1: out.append(UInt8.random(in: 0x20...0x7E, using: &rng))
        case 2: out.append(UInt8.random(in: 0x80...0xBF, using: &rng))
        case 3: out.append(UInt8.random(in: 0xC0...0xFF, using: &rng))
        default:
            out.append(contentsOf: String(Character(Unicode.Scalar(scalars.randomElement(using: &rng)!)!)).utf8)
        }
    }
    return out
}

private func randomScalarString(length: Int, using rng: inout SplitMix64) -> String {
    var result = String.UnicodeScalarView()
    for _ in 0..<length {
        let value: UInt32
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: value = UInt32.random(in: 0..<0x80, using: &rng)
        case 1: value = UInt32.random(in: 0x80..<0xD800, using: &rng)
        case 2: value = UInt32.random(in: 0xE000..<0x10000, using: &rng)
        default: value = UInt32.random(in: 0x10000...0x10FFFF, using: &rng)
        }
        result.append(Unicode.Scalar(value)!)
    }
    return String(result)
}

/// The 1-based column of the first occurrence of `needle` in `line`.
private func column(of needle: String, in line: String) -> Int? {
    let haystack = utf8(line), pattern = utf8(needle)
    guard pattern.count <= haystack.count else { return nil }
    for start in 0...(haystack.count - pattern.count) where haystack[start..<(start + pattern.count)].elementsEqual(pattern) {
        return start + 1
    }
    return nil
}

// MARK: - Sample inputs shared by JSON.validate and the QuickCheck agreement tests

/// Valid lines and their kind.
private let acceptedSamples: [(String, JSONKind)] = [
    ("{}", JSONKind.object), ("{\"a\":1}", .object), ("{\"a\":{\"b\":[]}}", .object),
    ("[]", .array), ("[1,\"x\",null,true,{}]", .array),
    ("\"\"", .string), ("\"hi\"", .string), ("\"\\u00e9\\n\"", .string),
    ("0", .number), ("-0", .number), ("-0.0", .number), ("0.5", .number), ("-12.5e-3", .number),
    ("1E+2", .number), ("1e-2", .number), ("1e400", .number), ("-1e-400", .number),
    ("12345678901234567890", .number), ("123456789012345678901234567890.5", .number),
    ("true", .bool), ("false", .bool), ("null", .null),
]

/// Invalid lines and the byte offset the error names.
private let rejectedSamples: [(String, Int)] = [
    // trailing commas, empty members
    ("[1,]", 3), ("{\"a\":1,}", 7), ("[1,,2]", 3), ("{,}", 1), ("[,1]", 1),
    // numbers
    ("01", 0), ("-01", 0), ("00", 0), (".5", 0), ("1.", 0), ("1.e5", 0), ("1e", 0), ("1e+", 0), ("1E-", 0),
    ("+1", 0), ("-", 0), ("--1", 0), ("0x10", 1), ("1_000", 1), ("[-]", 1),
    ("NaN", 0), ("Infinity", 0), ("-Infinity", 0), ("[1,NaN]", 3),
    // literals
    ("tru", 0), ("True", 0), ("nul", 0), ("undefined", 0), ("truex", 4), ("nulll", 4), ("[fals]", 1),
    // strings
    ("'a'", 0), ("{'a':1}", 1), ("\"a\tb\"", 2), ("\"\u{01}\"", 1), ("\"\u{00}\"", 1), ("\"a\nb\"", 2),
    ("\"\u{1F}\"", 1), ("\"\\x\"", 1), ("\"\\u12G4\"", 1), ("\"\\u12\"", 1), ("\"\\U00e9\"", 1), ("\"\\a\"", 1),
    ("\"\\'\"", 1), ("\"\\ \"", 1),
    // trailing garbage and several values
    ("{} x", 3), ("1 2", 2), ("{}{}", 2), ("[] []", 3), ("\"a\"\"b\"", 3), ("null,", 4), ("{}]", 2),
    // unterminated
    ("\"abc", 0), ("\"abc\\", 0), ("\"\\\"", 0), ("[\"a", 1), ("{\"a\":1", 6), ("{\"a\":", 5), ("{\"a\"", 4),
    ("[1", 2), ("[1,", 3), ("[", 1), ("{", 1), ("{\"a", 1),
    // structure
    ("{\"a\" 1}", 5), ("{a:1}", 1), ("{1:1}", 1), ("[1 2]", 3), ("{\"a\":1 \"b\":2}", 7), ("]", 0), ("{]", 1), ("[}", 1),
    ("{\"a\"::1}", 5),
    // nothing at all, or whitespace JSON does not allow
    ("", 0), ("   ", 3), ("\n", 1), ("\u{0C}1", 0), ("\u{0B}1", 0), ("\u{A0}1", 0), ("\u{FEFF}{}", 0),
]

/// Invalid UTF-8 and the offset of the bad sequence.
private let invalidUTF8Samples: [([UInt8], Int)] = [
    ([0x22, 0x61, 0xC0, 0x80, 0x22], 2),            // overlong NUL
    ([0x22, 0xC1, 0xBF, 0x22], 1),                  // overlong 2-byte
    ([0x22, 0xE0, 0x80, 0x80, 0x22], 1),            // overlong 3-byte
    ([0x22, 0xE0, 0x9F, 0xBF, 0x22], 1),
    ([0x22, 0xF0, 0x80, 0x80, 0x80, 0x22], 1),      // overlong 4-byte
    ([0x22, 0xF0, 0x8F, 0xBF, 0xBF, 0x22], 1),
    ([0x22, 0xED, 0xA0, 0x80, 0x22], 1),            // UTF-16 surrogate D800
    ([0x22, 0xED, 0xBF, 0xBF, 0x22], 1),            // surrogate DFFF
    ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 1),      // past U+10FFFF
    ([0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], 1),
    ([0x22, 0xF8, 0x88, 0x80, 0x80, 0x80, 0x22], 1),
    ([0x22, 0xFE, 0x22], 1), ([0x22, 0xFF, 0x22], 1),
    ([0x22, 0x80, 0x22], 1), ([0x22, 0xBF, 0x22], 1), // lone continuation bytes
    ([0x22, 0xE4, 0xB8, 0x22], 1),                  // truncated 中
    ([0x22, 0xF0, 0x9F, 0x98, 0x22], 1),            // truncated 😀
    ([0x22, 0x61, 0x62, 0xC3, 0x28, 0x22], 3),
    ([0x22, 0xC3], 1), ([0x22, 0xF0, 0x9F], 1),     // truncated by the end of the line
    ([0x5B, 0x22, 0xC3, 0xA9, 0x22, 0x2C, 0x22, 0x78, 0xE9, 0x22, 0x5D], 8),
    ([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D], 2), // in a key
    ([0x5B, 0xFF, 0x5D], 1), ([0xC3, 0xA9], 0), ([0x31, 0x20, 0xFF], 2), // outside strings
]

// MARK: - JSON.validate

@Suite("JSON.validate: strict RFC 8259")
struct JSONValidateTests {
    @Test("every kind of value is accepted at the top level and reported", arguments: acceptedSamples)
    func acceptsEveryKind(input: String, kind: JSONKind) {
        #expect(validate(input) == .success(kind))
    }

    @Test("space, tab, CR and LF are allowed around and between tokens", arguments: [
        (" \t\r\n{ \"a\" :\t[ 1 , 2 ]\r\n} \n", JSONKind.object),
        ("\n1\n", .number), ("  null  ", .null), ("\t\"x\"\t", .string), ("[\n]", .array), ("{\r\n}", .object),
    ])
    func whitespace(input: String, kind: JSONKind) {
        #expect(validate(input) == .success(kind))
    }

    @Test("invalid input is rejected at the byte offset where it goes wrong", arguments: rejectedSamples)
    func rejects(input: String, offset: Int) {
        let error = syntaxError(input)
        #expect(error != nil, "accepted \(input.debugDescription)")
        #expect(error?.offset == offset, "\(error?.reason ?? "")")
        #expect(error?.reason.isEmpty == false)
    }

    @Test("the reasons name the problem")
    func reasons() {
        #expect(syntaxError("[1,]")?.reason.contains("trailing comma") == true)
        #expect(syntaxError("01")?.reason.contains("leading zeros") == true)
        #expect(syntaxError("\"a\tb\"")?.reason.contains("must be escaped") == true)
        #expect(syntaxError("{} x")?.reason.contains("trailing characters") == true)
        #expect(syntaxError("\"abc")?.reason.contains("unterminated string") == true)
        #expect(syntaxError("")?.reason == "no JSON value")
        #expect(syntaxError([0x22, 0xFF, 0x22])?.reason.contains("UTF-8") == true)
        #expect(syntaxError([0x5B, 0xFF, 0x5D])?.reason.contains("0xFF") == true)
    }

    @Test("\\u escapes of lone or reversed surrogates are accepted (RFC 8259 §8.2 allows them syntactically)", arguments: [
        #""\ud800""#, #""\udc00""#, #""\udc00\ud800""#, #""x\uDBFFy""#, #"{"\ud800":1}"#,
    ])
    func loneSurrogateEscapes(input: String) {
        #expect(validate(input) == .success(input.hasPrefix("{") ? .object : .string))
    }

    @Test("nesting up to JSON.maxDepth (512) is accepted; one more level is rejected at its bracket")
    func depthLimit() {
        #expect(JSON.maxDepth == 512)
        let arrays = { (depth: Int) in String(repeating: "[", count: depth) + String(repeating: "]", count: depth) }
        #expect(validate(arrays(1)) == .success(.array))
        #expect(validate(arrays(512)) == .success(.array))
        let tooDeep = syntaxError(arrays(513))
        #expect(tooDeep?.offset == 512)
        #expect(tooDeep?.reason.contains("512") == true)

        let objects = { (depth: Int) in String(repeating: "{\"a\":", count: depth) + "1" + String(repeating: "}", count: depth) }
        #expect(validate(objects(512)) == .success(.object))
        #expect(syntaxError(objects(513))?.offset == 512 * 5)

        let mixed = { (depth: Int) in
            String(repeating: "[{\"k\":", count: depth / 2) + "null" + String(repeating: "}]", count: depth / 2)
        }
        #expect(validate(mixed(512)) == .success(.array))
        #expect(syntaxError(mixed(514))?.offset == 512 / 2 * 6)

        // Recursion is bounded: a huge nesting fails fast instead of overflowing the stack.
        #expect(syntaxError(String(repeating: "[", count: 200_000))?.offset == 512)
        #expect(syntaxError(String(repeating: "{\"a\":", count: 50_000))?.offset == 512 * 5)
    }

    @Test("valid multi-byte UTF-8 is accepted in strings and keys", arguments: [
        "\"é\"", "\"中文\"", "\"😀\"", "{\"é\":\"中\",\"😀\":[\"\u{10FFFF}\"]}",
        "\"\u{80}\u{7FF}\u{800}\u{D7FF}\u{E000}\u{FFFD}\u{FFFF}\u{10000}\u{10FFFF}\"",
        "\"a\u{7F}b\"", "\"\u{2028}\u{2029}\"",
    ])
    func acceptsMultibyte(input: String) {
        #expect(validate(input).map { _ in true } == .success(true))
    }

    @Test("invalid UTF-8 is rejected at the byte where the bad sequence starts", arguments: invalidUTF8Samples)
    func rejectsInvalidUTF8(input: [UInt8], offset: Int) {
        #expect(syntaxError(input)?.offset == offset)
    }

    @Test("a special byte at every position 0..<17 of a long string is seen (8-byte fast path)", arguments: 0..<17)
    func fastPathPositions(position: Int) {
        let quote: [UInt8] = [0x22]
        let before = [UInt8](repeating: 0x61, count: position)
        let after = [UInt8](repeating: 0x62, count: 20)
        func line(_ special: [UInt8]) -> [UInt8] { quote + before + special + after + quote }

        // A quote ends the string right there.
        #expect(syntaxError(quote + before + quote + after)?.offset == position + 2)
        #expect(validate(quote + before + quote + [UInt8](repeating: 0x20, count: 20)) == .success(.string))
        #expect(syntaxError(quote + before)?.offset == 0)   // unterminated
        // A backslash starts an escape right there.
        #expect(validate(line(utf8("\\n"))) == .success(.string))
        #expect(validate(line(utf8("\\\""))) == .success(.string))
        #expect(validate(line(utf8("\\u00e9"))) == .success(.string))
        #expect(syntaxError(line(utf8("\\x")))?.offset == position + 1)
        #expect(syntaxError(line(utf8("\\u00g9")))?.offset == position + 1)
        // Control characters must be escaped.
        for control: UInt8 in [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F] {
            #expect(syntaxError(line([control]))?.offset == position + 1, "control byte \(control)")
        }
        // High bytes: valid UTF-8 passes, invalid is reported where it starts.
        #expect(validate(line(utf8("é中😀"))) == .success(.string))
        for bad: [UInt8] in [[0xFF], [0x80], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80]] {
            #expect(syntaxError(line(bad))?.offset == position + 1, "bytes \(bad)")
        }
        // Neighbours of the special ranges are plain bytes.
        for plain: UInt8 in [0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7E, 0x7F] {
            #expect(validate(line([plain])) == .success(.string), "plain byte \(plain)")
        }
    }

    @Test("random strings: validate agrees with the stdlib's UTF-8 verdict")
    func randomStringsAgreeWithStdlib() {
        var rng = SplitMix64(seed: 0x5EED_0001)
        var disagreements: [[UInt8]] = []
        for _ in 0..<3000 {
            let body = interestingBytes(count: Int.random(in: 0...40, using: &rng), using: &rng)
                .map { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C ? UInt8(0x61) : $0 }
            let accepted = (try? validate([0x22] + body + [0x22]).get()) == .string
            if accepted != stdlibSaysValidUTF8(body) { disagreements.append(body) }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(3))")
    }
}

// MARK: - QuickCheck (the hot path) against the naming Validator

private func quickKind(_ bytes: [UInt8]) -> JSONKind? { bytes.withUnsafeBytes { QuickCheck.kind(of: $0) } }

private func namingValidator(_ bytes: [UInt8]) -> Result<JSONKind, JSONSyntaxError> {
    bytes.withUnsafeBytes { buffer in
        do throws(JSONSyntaxError) { return .success(try JSON.validateNamingError(buffer)) } catch { return .failure(error) }
    }
}

/// Where QuickCheck and the Validator part ways on `bytes` (nesting of at most 64 levels), or nil.
private func disagreement(_ bytes: [UInt8]) -> String? {
    let quick = quickKind(bytes)
    let slow = namingValidator(bytes)
    let slowKind = try? slow.get()
    guard quick == slowKind, validate(bytes) == slow else {
        return "\(text(bytes).debugDescription) \(bytes): QuickCheck \(quick.map { "\($0)" } ?? "rejects"), Validator \(slow)"
    }
    return nil
}

/// A random valid JSON text with random whitespace, nested at most `depth` levels.
private func randomJSON(depth: Int, using rng: inout SplitMix64) -> String {
    func space() -> String {
        Int.random(in: 0..<4, using: &rng) == 0 ? [" ", "\t", "\n", "\r\n", "  "].randomElement(using: &rng)! : ""
    }
    switch Int.random(in: 0..<(depth > 0 ? 9 : 6), using: &rng) {
    case 0:
        return ["0", "-0", "1", "-12", "3.25", "1e5", "-2E-3", "0.0", "10", "12345678901234567890", "1e400", "-0.5e+7"]
            .randomElement(using: &rng)!
    case 1:
        return [#""""#, #""a""#, #""\n\u00e9\ud83d\ude00""#, "\"é中😀\"", #""\"\\\/\b\f\r\t""#, #""\u0000""#,
                "\"" + String(repeating: "long string ", count: 3) + "\""].randomElement(using: &rng)!
    case 2: return Bool.random(using: &rng) ? "true" : "false"
    case 3: return "null"
    case 4, 5: return text(quoted(utf8(randomScalarString(length: Int.random(in: 0...12, using: &rng), using: &rng))))
    case 6, 7:
        let count = Int.random(in: 0...4, using: &rng)
        let elements = (0..<count).map { _ in space() + randomJSON(depth: depth - 1, using: &rng) + space() }
        return "[" + (count == 0 ? space() : elements.joined(separator: ",")) + "]"
    default:
        let count = Int.random(in: 0...4, using: &rng)
        let members = (0..<count).map { index in
            space() + text(quoted(utf8("k\(index)"))) + space() + ":" + space() + randomJSON(depth: depth - 1, using: &rng) + space()
        }
        return "{" + (count == 0 ? space() : members.joined(separator: ",")) + "}"
    }
}

@Suite("QuickCheck, validate's hot path, accepts exactly what the naming Validator accepts")
struct QuickCheckTests {
    @Test("on every sample line of the JSON.validate tests")
    func samples() {
        var inputs = acceptedSamples.map { utf8($0.0) } + rejectedSamples.map { utf8($0.0) } + invalidUTF8Samples.map(\.0)
        inputs += [#"[{"a":0},[0,1]]"#, #"{"a":[0,1],"b":{"c":0,"d":1}}"#, #"[[0,1],{"a":0,"b":1}]"#, #"{"a":{"b":[]},"c":[{}]}"#,
                   #"[{"a":[{"b":0}]},{"c":1}]"#, #"{"a":[0],"b":1}"#, #"[{"a":0}, 1]"#, #"[{"a":0}}"#, #"{"a":[0}}"#,
                   #"[0]]"#, #"{"a":0}}"#, #"{"a":0]"#, #"[{"a":0]]"#, "[0 ]", "[ 0]", "{ \"a\" :0 }", "[true,false,null]",
                   "[truefalse]", "[1.5.3]", "{\"a\":-}", "{\"a\":}", "{\"a\"}", "{\"a\":1,\"b\"}", "[\"\\u00\"]"].map(utf8)
        let problems = inputs.compactMap(disagreement)
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test("on random valid documents, which both accept with the same kind")
    func randomDocuments() {
        var rng = SplitMix64(seed: 0x5EED_0006)
        var problems: [String] = []
        for _ in 0..<1500 {
            let document = utf8(randomJSON(depth: 5, using: &rng))
            if quickKind(document) == nil { problems.append("rejected \(text(document).debugDescription)") }
            if let problem = disagreement(document) { problems.append(problem) }
        }
        #expect(problems.isEmpty, "\(problems.prefix(3))")
    }

    @Test("on random one-byte edits of valid documents")
    func mutatedDocuments() {
        var rng = SplitMix64(seed: 0x5EED_0007)
        let alphabet = utf8(#"{}[]",:\ 0123456789eE.-+tfnrulsa/bx"#) + [0x09, 0x0A, 0x0D, 0x00, 0x1F, 0x7F, 0x80, 0xC3, 0xA9, 0xED, 0xF0, 0xFF]
        var problems: [String] = []
        var rejected = 0
        for _ in 0..<4000 {
            var document = utf8(randomJSON(depth: 4, using: &rng))
            for _ in 0..<Int.random(in: 1...2, using: &rng) {
                let position = Int.random(in: 0...document.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0 where position < document.count: document[position] = alphabet.randomElement(using: &rng)!
                case 1: document.insert(alphabet.randomElement(using: &rng)!, at: position)
                case 2 where position < document.count: document.remove(at: position)
                default: document.removeLast(min(document.count, Int.random(in: 0...3, using: &rng)))
                }
            }
            if quickKind(document) == nil { rejected += 1 }
            if let problem = disagreement(document) { problems.append(problem) }
        }
        #expect(problems.isEmpty, "\(problems.prefix(3))")
        #expect(rejected > 1000)   // the edits do produce plenty of invalid lines
    }

    @Test("mixed nesting: QuickCheck checks up to 64 levels and leaves deeper ones to the Validator; a wrong closer at any level is refused",
          arguments: [1, 2, 31, 32, 33, 63, 64, 65, 66, 100])
    func nesting(depth: Int) {
        var rng = SplitMix64(seed: UInt64(depth))
        let objects = (0..<depth).map { _ in Bool.random(using: &rng) }
        // Level i is an object or an array; each but the innermost first holds a closed
        // sibling of the other kind one level down, so every depth is reused by both kinds.
        func document(swappingCloserAt swapped: Int? = nil) -> [UInt8] {
            var text = ""
            for (level, isObject) in objects.enumerated() {
                let innermost = level == depth - 1
                text += isObject ? "{\"s\":" + (innermost ? "0" : "[0]") + ",\"k\":" : "[" + (innermost ? "0" : "{\"s\":0}") + ","
            }
            text += "0"
            for (level, isObject) in objects.enumerated().reversed() {
                text += (isObject != (level == swapped)) ? "}" : "]"
            }
            return utf8(text)
        }
        let kind: JSONKind = objects[0] ? .object : .array
        let good = document()
        #expect(validate(good) == .success(kind))
        #expect(quickKind(good) == (depth <= 64 ? kind : nil))
        for level in 0..<depth {
            let bad = document(swappingCloserAt: level)
            #expect(quickKind(bad) == nil, "closer swapped at level \(level)")
            #expect(syntaxError(bad) != nil, "closer swapped at level \(level)")
        }
    }
}

// MARK: - JSON.isValidUTF8

@Suite("JSON.isValidUTF8")
struct UTF8ValidationTests {
    @Test("boundaries of each sequence length", arguments: [
        ([], true), ([0x00], true), ([0x7F], true),
        ([0xC2, 0x80], true), ([0xDF, 0xBF], true), ([0xC0, 0x80], false), ([0xC1, 0xBF], false),
        ([0xE0, 0xA0, 0x80], true), ([0xE0, 0x9F, 0xBF], false), ([0xE1, 0x80, 0x80], true),
        ([0xEC, 0xBF, 0xBF], true), ([0xED, 0x80, 0x80], true), ([0xED, 0x9F, 0xBF], true),
        ([0xED, 0xA0, 0x80], false), ([0xED, 0xBF, 0xBF], false), ([0xEE, 0x80, 0x80], true), ([0xEF, 0xBF, 0xBF], true),
        ([0xF0, 0x90, 0x80, 0x80], true), ([0xF0, 0x8F, 0xBF, 0xBF], false), ([0xF1, 0x80, 0x80, 0x80], true),
        ([0xF3, 0xBF, 0xBF, 0xBF], true), ([0xF4, 0x8F, 0xBF, 0xBF], true), ([0xF4, 0x90, 0x80, 0x80], false),
        ([0xF5, 0x80, 0x80, 0x80], false), ([0xF7, 0xBF, 0xBF, 0xBF], false), ([0xF8, 0x88, 0x80, 0x80, 0x80], false),
        ([0xFE], false), ([0xFF], false), ([0x80], false), ([0xBF], false),
        ([0xC3], false), ([0xE4, 0xB8], false), ([0xF0, 0x9F, 0x98], false),   // truncated at the end
        ([0xC3, 0x41], false), ([0xE4, 0x41, 0x80], false), ([0xE4, 0xB8, 0x41], false), ([0xF0, 0x9F, 0x41, 0x80], false),
        ([0xC3, 0xA9, 0xC3], false), ([0xC3, 0xA9, 0x80], false), ([0x61, 0xC3, 0xA9, 0x62], true),
    ] as [([UInt8], Bool)])
    func boundaries(bytes: [UInt8], valid: Bool) {
        #expect(isValidUTF8(bytes) == valid)
        #expect(stdlibSaysValidUTF8(bytes) == valid)   // the table itself is right
    }

    @Test("a non-ASCII byte at every position 0..<17 is seen by the 8-byte fast path", arguments: 0..<17)
    func fastPath(position: Int) {
        let before = [UInt8](repeating: 0x61, count: position)
        let after = [UInt8](repeating: 0x62, count: 11)
        #expect(isValidUTF8(before + after))
        #expect(isValidUTF8(before + utf8("é") + after))
        #expect(isValidUTF8(before + utf8("😀") + after))
        #expect(!isValidUTF8(before + [0xFF] + after))
        #expect(!isValidUTF8(before + [0x80] + after))
        #expect(!isValidUTF8(before + [0xED, 0xA0, 0x80] + after))
        #expect(!isValidUTF8(before + [0xC3]))        // truncated at the very end
        #expect(!isValidUTF8(before + [0xF0, 0x9F, 0x98]))
    }

    @Test("random bytes: agrees with the stdlib")
    func randomAgreesWithStdlib() {
        var rng = SplitMix64(seed: 0x5EED_0002)
        var disagreements: [[UInt8]] = []
        for _ in 0..<5000 {
            let bytes = interestingBytes(count: Int.random(in: 0...40, using: &rng), using: &rng)
            if isValidUTF8(bytes) != stdlibSaysValidUTF8(bytes) { disagreements.append(bytes) }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(3))")
    }
}

// MARK: - Walking validated JSON

private struct Found: Equatable, CustomStringConvertible {
    let text: String
    let kind: JSONKind
    var description: String { "\(text) (\(kind))" }
}

private func find(_ path: [String], in document: String) -> Found? {
    let bytes = utf8(document)
    #expect(validate(bytes).map { _ in true } == .success(true), "test document must be valid JSON")
    return bytes.withUnsafeBytes { buffer in
        JSON.find(path: path.map { Array($0.utf8) }, in: buffer).map { Found(text: text(buffer[$0.range]), kind: $0.kind) }
    }
}

private struct Member: Equatable, CustomStringConvertible {
    let key: String, value: String, kind: JSONKind
    var description: String { "\(key):\(value) (\(kind))" }
}

private func members(_ document: String) -> [Member] {
    let bytes = utf8(document)
    var result: [Member] = []
    bytes.withUnsafeBytes { buffer in
        JSON.forEachMember(ofObject: buffer) { key, value, kind in
            result.append(Member(key: text(buffer[key]), value: text(buffer[value]), kind: kind))
        }
    }
    return result
}

private func elements(_ document: String) -> [Found] {
    let bytes = utf8(document)
    var result: [Found] = []
    bytes.withUnsafeBytes { buffer in
        JSON.forEachElement(ofArray: buffer) { range, kind in result.append(Found(text: text(buffer[range]), kind: kind)) }
    }
    return result
}

@Suite("JSON.find (--key), forEachMember, forEachElement, trimmedValue")
struct JSONWalkTests {
    let user = #"{"user":{"id":42,"name":"x"},"n":[1,2]}"#

    @Test("a nested path finds the value's exact text and kind")
    func nested() {
        #expect(find(["user", "id"], in: user) == Found(text: "42", kind: .number))
        #expect(find(["user", "name"], in: user) == Found(text: "\"x\"", kind: .string))
        #expect(find(["user"], in: user) == Found(text: #"{"id":42,"name":"x"}"#, kind: .object))
        #expect(find(["n"], in: user) == Found(text: "[1,2]", kind: .array))
        #expect(find([], in: "  \(user)\n") == Found(text: user, kind: .object))
        #expect(find(["a"], in: #"{"a":null}"#) == Found(text: "null", kind: .null))
        #expect(find(["a"], in: #"{"a":false}"#) == Found(text: "false", kind: .bool))
        #expect(find(["中", "😀"], in: #"{"中":{"😀":"x"}}"#) == Found(text: "\"x\"", kind: .string))
    }

    @Test("a missing path, or one through a non-object, finds nothing")
    func missing() {
        #expect(find(["nope"], in: user) == nil)
        #expect(find(["user", "nope"], in: user) == nil)
        #expect(find(["user", "id", "x"], in: user) == nil)           // through a number
        #expect(find(["user", "name", "x"], in: user) == nil)         // through a string
        #expect(find(["n", "0"], in: user) == nil)                     // arrays have no keys
        #expect(find(["a", "b"], in: #"{"a":[{"b":1}]}"#) == nil)
        #expect(find(["a", "b"], in: #"{"a":null}"#) == nil)
        #expect(find(["a"], in: #"[{"a":1}]"#) == nil)
        #expect(find(["a"], in: #""a""#) == nil)
        #expect(find(["a"], in: "{}") == nil)
        #expect(find(["ab"], in: #"{"a":1}"#) == nil)
        #expect(find(["a"], in: #"{"ab":1}"#) == nil)
    }

    @Test("keys are compared after unescaping the document's key")
    func escapedKeys() {
        let document = #"{"us\u0065r":{"i\"d":1,"a\/b":2,"\u00e9":3,"tab\tkey":4,"back\\slash":5,"\ud83d\ude00":6}}"#
        #expect(find(["user", "i\"d"], in: document)?.text == "1")
        #expect(find(["user", "a/b"], in: document)?.text == "2")
        #expect(find(["user", "é"], in: document)?.text == "3")
        #expect(find(["user", "tab\tkey"], in: document)?.text == "4")
        #expect(find(["user", "back\\slash"], in: document)?.text == "5")
        #expect(find(["user", "😀"], in: document)?.text == "6")
        #expect(find(["us\\u0065r"], in: document) == nil)   // the escaped spelling is not the key
        #expect(find([""], in: #"{"":5}"#)?.text == "5")
    }

    @Test("the first of duplicate keys wins; nested and string contents do not confuse the walk")
    func walkSkipsNestedValues() {
        #expect(find(["a"], in: #"{"a":1,"a":2}"#)?.text == "1")
        #expect(find(["a"], in: #"{"x":{"a":1},"a":2}"#)?.text == "2")
        let tricky = #"{"x":"}{\"a\":0,[","y":"\\","a":[1,{"b":"]"}],"b":3}"#
        #expect(find(["b"], in: tricky) == Found(text: "3", kind: .number))
        #expect(find(["a"], in: tricky) == Found(text: #"[1,{"b":"]"}]"#, kind: .array))
        #expect(find(["y"], in: tricky)?.text == #""\\""#)
        let spaced = "  { \"a\" : { \"b\" : true } ,\t\"c\" : -1.5e3\r\n, \"d\" : [ ] }  "
        #expect(find(["a", "b"], in: spaced) == Found(text: "true", kind: .bool))
        #expect(find(["c"], in: spaced) == Found(text: "-1.5e3", kind: .number))
        #expect(find(["d"], in: spaced) == Found(text: "[ ]", kind: .array))
    }

    @Test("forEachMember gives each key literal and value, in order")
    func forEachMember() {
        let expected = [
            Member(key: "\"a\"", value: "1", kind: .number), Member(key: "\"b\"", value: "[1, 2]", kind: .array),
            Member(key: "\"c\"", value: #"{"d":null}"#, kind: .object), Member(key: #""e\"""#, value: #""x\"y""#, kind: .string),
            Member(key: "\"f\"", value: "true", kind: .bool), Member(key: "\"g\"", value: "-2.5", kind: .number),
            Member(key: "\"h\"", value: "null", kind: .null), Member(key: "\"i\"", value: "false", kind: .bool),
        ]
        #expect(members(#"{"a":1,"b":[1, 2],"c":{"d":null},"e\"":"x\"y","f":true,"g":-2.5,"h":null,"i":false}"#) == expected)
        #expect(members(" {\n \"a\" : 1 ,\t\"b\" :[1, 2], \"c\":{\"d\":null} , \"e\\\"\" : \"x\\\"y\" , \"f\" : true, \"g\":-2.5 ,\"h\":null,\"i\":false } ") == expected)
        #expect(members("{}").isEmpty)
        #expect(members("{ }").isEmpty)
        #expect(members("[1]").isEmpty)
        #expect(members("\"{}\"").isEmpty)
    }

    @Test("forEachElement gives each element and kind, in order")
    func forEachElement() {
        let expected = [
            Found(text: "1", kind: .number), Found(text: "\"two\"", kind: .string), Found(text: "[3, [4]]", kind: .array),
            Found(text: #"{"5":5}"#, kind: .object), Found(text: "null", kind: .null), Found(text: "true", kind: .bool),
            Found(text: "false", kind: .bool), Found(text: "-0.5e-1", kind: .number), Found(text: #""]\"""#, kind: .string),
        ]
        #expect(elements(#"[1,"two",[3, [4]],{"5":5},null,true,false,-0.5e-1,"]\""]"#) == expected)
        #expect(elements(#" [ 1 , "two",[3, [4]] ,{"5":5},null ,true,false,-0.5e-1 ,"]\"" ] "#) == expected)
        #expect(elements("[]").isEmpty)
        #expect(elements("[ ]").isEmpty)
        #expect(elements("{}").isEmpty)
    }

    @Test("trimmedValue drops surrounding whitespace")
    func trimmed() {
        let bytes = utf8(" \t{\"a\":[1, 2]}\r\n ")
        bytes.withUnsafeBytes { buffer in
            let (range, kind) = JSON.trimmedValue(buffer)
            #expect(range == 2..<14)
            #expect(kind == .object)
        }
    }
}

// MARK: - JSON.appendUnescaped

@Suite("JSON.appendUnescaped")
struct UnescapeTests {
    @Test("every escape decodes to its bytes", arguments: [
        (#""a\nb\tc\"d\\e\/f\bg\fh\ri""#, utf8("a\nb\tc\"d\\e/f") + [0x08] + utf8("g") + [0x0C] + utf8("h\ri")),
        (#""\u00e9""#, [0xC3, 0xA9]), (#""\u00E9""#, [0xC3, 0xA9]), (#""\u0041\u0042""#, utf8("AB")),
        (#""\u0000""#, [0x00]), (#""\u001f""#, [0x1F]), (#""\u007f""#, [0x7F]), (#""\u0080""#, [0xC2, 0x80]),
        (#""\u07ff""#, [0xDF, 0xBF]), (#""\u0800""#, [0xE0, 0xA0, 0x80]), (#""\u20ac""#, [0xE2, 0x82, 0xAC]),
        (#""\uffff""#, [0xEF, 0xBF, 0xBF]),
        (#""\ud83d\ude00""#, [0xF0, 0x9F, 0x98, 0x80]), (#""\uD83D\uDE00""#, [0xF0, 0x9F, 0x98, 0x80]),
        (#""\udbff\udfff""#, [0xF4, 0x8F, 0xBF, 0xBF]), (#""\ud800\udc00""#, [0xF0, 0x90, 0x80, 0x80]),
        (#""x\ud83d\ude00y""#, utf8("x😀y")),
        // Lone surrogates cannot be UTF-8: they become U+FFFD.
        (#""\ud800""#, [0xEF, 0xBF, 0xBD]), (#""\udc00""#, [0xEF, 0xBF, 0xBD]),
        (#""\ud800\u0041""#, [0xEF, 0xBF, 0xBD, 0x41]), (#""\ud800\ud83d\ude00""#, [0xEF, 0xBF, 0xBD, 0xF0, 0x9F, 0x98, 0x80]),
        (#""\ud800\n""#, [0xEF, 0xBF, 0xBD, 0x0A]), (#""\udc00\ud800""#, [0xEF, 0xBF, 0xBD, 0xEF, 0xBF, 0xBD]),
        // Runs without escapes are copied as they are.
        ("\"\"", []), ("\"plain\"", utf8("plain")), ("\"é中😀\"", utf8("é中😀")), (#""ab\n""#, utf8("ab\n")),
        (#""\\\\""#, utf8("\\\\")), (#""\/""#, utf8("/")), (#""\"""#, utf8("\"")),
    ] as [(String, [UInt8])])
    func escapes(literal: String, expected: [UInt8]) {
        #expect(validate(literal) == .success(.string))
        #expect(unescape(literal) == expected)
    }

    @Test("agrees with Foundation on valid literals")
    func agreesWithFoundation() {
        let literals = [#""a\nb\tc\"d\\e\/f\bg\fh\ri""#, #""\u00e9\u4e2d\ud83d\ude00""#, #""\u0000\u0001\u001F""#,
                        "\"é中😀 plain\"", #""x\\u0041""#]
        for literal in literals {
            #expect(unescape(literal) == foundationString(utf8(literal)).map { utf8($0) }, "\(literal)")
        }
    }
}

// MARK: - JSONOutput

@Suite("JSONOutput: quoting and the payload rule")
struct JSONOutputTests {
    @Test("appendQuoted escapes control characters, quote and backslash, and nothing else", arguments: [
        ("", #""""#), ("plain", #""plain""#), ("a\"b\\c", #""a\"b\\c""#), ("\n\r\t\u{08}\u{0C}", #""\n\r\t\b\f""#),
        ("\u{00}\u{01}\u{1F}\u{7F}", "\"\\u0000\\u0001\\u001f\u{7F}\""), ("\u{1B}[0m", #""\u001b[0m""#),
        ("/", #""/""#), ("é中😀", "\"é中😀\""), ("\u{2028}", "\"\u{2028}\""), ("'<>&", #""'<>&""#),
    ])
    func quoting(input: String, expected: String) {
        #expect(text(quoted(utf8(input))) == expected)
    }

    @Test("appendQuoted appends after what is already in the buffer")
    func quotingAppends() {
        var out = utf8("{\"k\":")
        utf8("a\nb").withUnsafeBytes { JSONOutput.appendQuoted($0, to: &out) }
        #expect(text(out) == #"{"k":"a\nb""#)
    }

    @Test("every byte 0x00-0x1F round-trips through appendQuoted, JSON.validate, appendUnescaped and Foundation", arguments: 0..<0x20)
    func controlByteRoundTrip(byte: Int) {
        let input: [UInt8] = [0x61, UInt8(byte), 0x62]
        let literal = quoted(input)
        #expect(validate(literal) == .success(.string))
        #expect(unescape(literal) == input)
        #expect(foundationString(literal).map { utf8($0) } == input)
        #expect(!literal.contains(where: { $0 < 0x20 }))
    }

    @Test("strings round-trip through appendQuoted and Foundation's JSONSerialization")
    func foundationRoundTrip() {
        var samples = [
            String(decoding: (0..<0x20).map { UInt8($0) }, as: UTF8.self),
            "\"\\/\u{7F}", "é中😀\u{10FFFF}\u{FFFD}", "\u{2028}\u{2029}", "{\"a\":1}", "\"hi\"", "",
            String(repeating: "ab\"cd\\ef\n", count: 50),
        ]
        var rng = SplitMix64(seed: 0x5EED_0003)
        for _ in 0..<200 { samples.append(randomScalarString(length: Int.random(in: 0...30, using: &rng), using: &rng)) }
        for sample in samples {
            let literal = quoted(utf8(sample))
            #expect(foundationString(literal) == sample, "\(sample.debugDescription)")
            #expect(validate(literal) == .success(.string))
            #expect(unescape(literal) == utf8(sample))
        }
    }

    @Test("isEmbeddable: one compact JSON value other than a string or null, no surrounding whitespace, no raw CR/LF", arguments: [
        ("{}", true), ("[]", true), ("0", true), ("-1", true), ("1e400", true), ("true", true), ("false", true), ("null", false),
        ("[null]", true), (#"{"a":null}"#, true), ("nulls", false), ("null ", false),
        (#"{"a":1,"b":[true,null]}"#, true), ("{\"a\":\t1}", true), (#"{"s":"a\nb"}"#, true), ("[1, 2]", true),
        ("\"x\"", false), ("\"\"", false), (" 1", false), ("1 ", false), ("\t1", false), ("1\t", false), ("1\n", false),
        ("1\r", false), ("\n1", false), ("{\"a\":\n1}", false), ("{\"a\":\r\n1}", false), ("[1,\r2]", false),
        ("", false), ("01", false), ("-", false), ("nul", false), ("nonsense", false), ("{} {}", false), ("hello", false),
        ("NaN", false), ("[1,]", false), ("tru", false), ("f", false),
    ])
    func embeddable(input: String, expected: Bool) {
        #expect(utf8(input).withUnsafeBytes { JSONOutput.isEmbeddable($0) } == expected)
    }

    @Test("appendPayload: JSON embedded as is, other UTF-8 (and the bytes null) as a string, other bytes as base64, nil as null", arguments: [
        (utf8(#"{"a":1}"#), #""value":{"a":1}"#),
        (utf8("[1, 2]"), #""value":[1, 2]"#),
        (utf8("42"), #""value":42"#), (utf8("-1.5e3"), #""value":-1.5e3"#), (utf8("1e400"), #""value":1e400"#),
        (utf8("true"), #""value":true"#), (utf8("false"), #""value":false"#), (utf8("null"), #""value":"null""#),
        (utf8("[null]"), #""value":[null]"#), (utf8(#"{"a":null}"#), #""value":{"a":null}"#), (utf8("\"null\""), #""value":"\"null\"""#),
        (utf8("{\"a\":\t1}"), "\"value\":{\"a\":\t1}"),
        (utf8("\"hi\""), #""value":"\"hi\"""#),
        (utf8("hello"), #""value":"hello""#),
        (utf8(#" {"a":1}"#), #""value":" {\"a\":1}""#),
        (utf8(#"{"a":1} "#), #""value":"{\"a\":1} ""#),
        (utf8("{\"a\":1}\n"), #""value":"{\"a\":1}\n""#),
        (utf8("{\n  \"a\": 1\n}"), #""value":"{\n  \"a\": 1\n}""#),
        (utf8("[1,\r2]"), #""value":"[1,\r2]""#),
        (utf8("{} {}"), #""value":"{} {}""#), (utf8("01"), #""value":"01""#), (utf8("NaN"), #""value":"NaN""#),
        (utf8(""), #""value":"""#), (utf8("é中😀"), "\"value\":\"é中😀\""), ([0x00, 0x1F], #""value":"\u0000\u001f""#),
        ([0xFF, 0xFE], #""value_b64":"//4=""#), ([0xC3], #""value_b64":"ww==""#),
        ([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D], #""value_b64":"eyJhIjoi/yJ9""#),  // {"a":"\xFF"}
        ([0xED, 0xA0, 0x80], #""value_b64":"7aCA""#),
    ] as [([UInt8], String)])
    func payloadRule(input: [UInt8], expected: String) {
        #expect(payload(input) == expected)
        let asKey = expected.replacingOccurrences(of: "\"value", with: "\"key")
        #expect(payload(input, .key) == asKey)
    }

    @Test("appendPayload of nil is null, and the base64 label replaces the plain one after earlier members")
    func payloadNilAndPrefix() {
        #expect(payload(nil) == #""value":null"#)
        #expect(payload(nil, .key) == #""key":null"#)
        var out = utf8(#"{"topic":"t","key":"#)
        [UInt8]([0x80]).withUnsafeBytes { JSONOutput.appendPayload($0, name: .value, to: &out) }
        #expect(text(out) == #"{"topic":"t","key":"value_b64":"gA==""#)
        var record = utf8(#"{"x":1,"#)
        [UInt8]([0xFF]).withUnsafeBytes { JSONOutput.appendPayload($0, name: .key, to: &record) }
        record.append(UInt8(ascii: "}"))
        #expect(text(record) == #"{"x":1,"key_b64":"/w=="}"#)
        #expect(validate(record) == .success(.object))
    }

    @Test("appendStringOrB64: UTF-8 as a string (JSON too), other bytes as {\"b64\":…}, nil as null", arguments: [
        (utf8("abc"), #""abc""#), (utf8(""), #""""#), (utf8(#"{"a":1}"#), #""{\"a\":1}""#), (utf8("42"), #""42""#),
        (utf8("a\tb"), #""a\tb""#), (utf8("é"), "\"é\""), ([0xFF], #"{"b64":"/w=="}"#), ([0x61, 0xC0, 0x80], #"{"b64":"YcCA"}"#),
    ] as [([UInt8], String)])
    func stringOrB64Rule(input: [UInt8], expected: String) {
        #expect(text(stringOrB64(input)) == expected)
    }

    @Test("appendStringOrB64 of nil is null")
    func stringOrB64Nil() {
        #expect(text(stringOrB64(nil)) == "null")
    }

    @Test("appendDecimal writes the same digits as String(_:), after what is in the buffer", arguments: [
        0, 1, 9, 10, 11, 99, 100, 101, 1_000_000, 1_763_812_345_123, Int.max, Int.max - 1,
        -1, -9, -10, -100, -1_763_812_345_123, Int.min + 1, Int.min,
    ])
    func decimal(value: Int) {
        var out = utf8("x:")
        JSONOutput.appendDecimal(value, to: &out)
        #expect(text(out) == "x:\(value)")
    }

    @Test("appendDecimal agrees with String(_:) on random values")
    func randomDecimals() {
        var rng = SplitMix64(seed: 0x5EED_0004)
        for _ in 0..<1000 {
            let value = Int(truncatingIfNeeded: rng.next()) >> Int.random(in: 0..<64, using: &rng)
            var out: [UInt8] = []
            JSONOutput.appendDecimal(value, to: &out)
            #expect(text(out) == String(value))
        }
    }
}

// MARK: - Base64

@Suite("Base64 (RFC 4648)")
struct Base64Tests {
    @Test("the RFC 4648 test vectors, both ways", arguments: [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
    ])
    func vectors(plain: String, encoded: String) {
        #expect(base64(utf8(plain)) == encoded)
        #expect(unbase64(encoded) == utf8(plain))
    }

    @Test("all 256 byte values, and the whole alphabet including + and /")
    func allBytes() {
        let bytes = (0...255).map { UInt8($0) }
        let encoded = base64(bytes)
        #expect(encoded == Data(bytes).base64EncodedString())
        #expect(unbase64(encoded) == bytes)
        #expect(base64([0xFB, 0xEF, 0xBE]) == "++++")
        #expect(base64([0xFF, 0xFF, 0xFF]) == "////")
        #expect(unbase64("+/+/") == [0xFB, 0xFF, 0xBF])
    }

    @Test("append keeps what is already in the buffer")
    func appends() {
        var out = utf8("b64:")
        utf8("foo").withUnsafeBytes { Base64.append($0, to: &out) }
        #expect(text(out) == "b64:Zm9v")
    }

    @Test("decode rejects bad lengths, characters and padding", arguments: [
        "Z", "Zg", "Zg=", "Zm9vY", "Zm9vYg=", "Z===", "====", "=Zg=", "Zg=a", "Zg==Zg==", "Zm9v=", "Zm9v====",
        "Zm9v\n", "Zm9v ", " Zm9v", "Zm-v", "Zm_v", "Zm.v", "Zm9v\r\n", "Zm\u{0}v", "Zm9vé=", "Zm 9",
    ])
    func rejects(encoded: String) {
        #expect(unbase64(encoded) == nil)
    }

    @Test("decode rejects any byte outside the alphabet", arguments: [0x00, 0x0A, 0x20, 0x2D, 0x2E, 0x3A, 0x40, 0x5F, 0x7F, 0x80, 0xFF])
    func rejectsByte(byte: Int) {
        #expect(unbase64([0x5A, 0x6D, 0x39, UInt8(byte)]) == nil)
        #expect(unbase64([UInt8(byte), 0x6D, 0x39, 0x76]) == nil)
    }

    @Test("random byte arrays of every length 0...100 round-trip, and match Foundation")
    func randomRoundTrip() {
        var rng = SplitMix64(seed: 0x5EED_0005)
        for length in 0...100 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let encoded = base64(bytes)
            #expect(encoded.utf8.count == (length + 2) / 3 * 4)
            #expect(encoded == Data(bytes).base64EncodedString(), "length \(length)")
            #expect(unbase64(encoded) == bytes, "length \(length)")
        }
    }
}

// MARK: - RecordFormat

private func record(_ build: (OutputWriter) -> Void) -> String {
    let writer = OutputWriter(fd: -1, flushThreshold: 1 << 16)
    build(writer)
    return text(writer.buffer)
}

@Suite("RecordFormat: the records of CONTRACT.md")
struct RecordFormatTests {
    @Test("a Kafka record has the contract's shape and order")
    func kafka() {
        let line = record { out in
            utf8("user-42").withUnsafeBytes { key in
                out.beginKafkaRecord(quotedTopic: OutputWriter.quoted("orders"), partition: 0, offset: 42,
                                     timestamp: 1_763_812_345_123, key: key)
            }
            utf8(#"{"user_id":42}"#).withUnsafeBytes { out.endKafkaRecord(value: $0) }
        }
        #expect(line == #"{"topic":"orders","partition":0,"offset":42,"timestamp":1763812345123,"key":"user-42","value":{"user_id":42}}"# + "\n")
    }

    @Test("a Kafka record without timestamp, key or value writes null; non-UTF-8 goes to key_b64/value_b64")
    func kafkaNullsAndBase64() {
        let nulls = record { out in
            out.beginKafkaRecord(quotedTopic: OutputWriter.quoted("t"), partition: 3, offset: 0, timestamp: nil, key: nil)
            out.endKafkaRecord(value: nil)
        }
        #expect(nulls == #"{"topic":"t","partition":3,"offset":0,"timestamp":null,"key":null,"value":null}"# + "\n")
        let binary = record { out in
            [UInt8]([0xFF]).withUnsafeBytes { key in
                out.beginKafkaRecord(quotedTopic: OutputWriter.quoted("t"), partition: 0, offset: Int64.max, timestamp: -1, key: key)
            }
            [UInt8]([0x00, 0xC0]).withUnsafeBytes { out.endKafkaRecord(value: $0) }
        }
        #expect(binary == #"{"topic":"t","partition":0,"offset":9223372036854775807,"timestamp":-1,"key_b64":"/w==","value_b64":"AMA="}"# + "\n")
    }

    @Test("a stream entry: fields in order as strings; non-UTF-8 values as {\"b64\":…}; deliveries")
    func stream() {
        let line = record { out in
            OutputWriter.quoted("orders").withUnsafeBytes { name in utf8("1763812345123-0").withUnsafeBytes { out.beginStreamEntry(quotedName: name, id: $0) } }
            utf8("user_id").withUnsafeBytes { name in utf8("42").withUnsafeBytes { out.appendStreamField(name, $0, first: true) } }
            utf8("type").withUnsafeBytes { name in utf8("signup").withUnsafeBytes { out.appendStreamField(name, $0, first: false) } }
            out.endStreamEntry()
        }
        #expect(line == #"{"stream":"orders","id":"1763812345123-0","value":{"user_id":"42","type":"signup"}}"# + "\n")

        let odd = record { out in
            OutputWriter.quoted("s").withUnsafeBytes { name in utf8("1-0").withUnsafeBytes { out.beginStreamEntry(quotedName: name, id: $0) } }
            utf8("j").withUnsafeBytes { name in utf8(#"{"a":1}"#).withUnsafeBytes { out.appendStreamField(name, $0, first: true) } }
            utf8("bin").withUnsafeBytes { name in [UInt8]([0xFF]).withUnsafeBytes { out.appendStreamField(name, $0, first: false) } }
            [UInt8]([0xFE]).withUnsafeBytes { name in utf8("x").withUnsafeBytes { out.appendStreamField(name, $0, first: false) } }
            out.endStreamEntry(deliveries: 2)
        }
        #expect(odd == #"{"stream":"s","id":"1-0","value":{"j":"{\"a\":1}","bin":{"b64":"/w=="},"b64:/g==":"x"},"deliveries":2}"# + "\n")
    }

    @Test("list and channel records, with a pattern and a quoted name")
    func simple() {
        // A list item or a channel message as its source hands it over.
        func listItem(_ value: String) -> String {
            record { out in
                utf8(value).withUnsafeBytes { bytes in
                    let item = Record()
                    item.origin = .list
                    item.quotedSource = OutputWriter.quoted("jobs")
                    item.point(atListItem: bytes)
                    out.appendRecord(item)
                }
            }
        }
        func channelMessage(_ value: String, pattern: String? = nil) -> String {
            record { out in
                utf8("news").withUnsafeBytes { name in
                    utf8(pattern ?? "").withUnsafeBytes { patternBytes in
                        utf8(value).withUnsafeBytes { bytes in
                            let message = Record()
                            message.origin = .channel
                            message.channel = name
                            message.pattern = pattern == nil ? nil : patternBytes
                            message.value = bytes
                            out.appendRecord(message)
                        }
                    }
                }
            }
        }
        let list = listItem(#"{"job":7}"#)
        #expect(list == #"{"list":"jobs","value":{"job":7}}"# + "\n")
        let channel = channelMessage("hello")
        #expect(channel == #"{"channel":"news","value":"hello"}"# + "\n")
        // A list item or channel message whose bytes are `null`: the string, as for Kafka.
        let nullItem = listItem("null")
        #expect(nullItem == #"{"list":"jobs","value":"null"}"# + "\n")
        let pattern = channelMessage("[1]", pattern: "n*")
        #expect(pattern == #"{"channel":"news","pattern":"n*","value":[1]}"# + "\n")
        #expect(text(OutputWriter.quoted("a\"b\\c\n")) == #""a\"b\\c\n""#)
    }

    @Test("every record is one line of valid JSON that Foundation reads back")
    func recordsAreJSON() throws {
        let payloads: [[UInt8]] = [utf8("{\"a\":1}"), utf8("x\ny"), [0xFF, 0x00], utf8(""), utf8("null"), utf8("\"s\""), utf8("{\n}")]
        for value in payloads {
            let line = record { out in
                value.withUnsafeBytes { key in
                    out.beginKafkaRecord(quotedTopic: OutputWriter.quoted("t\"\n"), partition: 0, offset: 1, timestamp: 2, key: key)
                }
                value.withUnsafeBytes { out.endKafkaRecord(value: $0) }
            }
            var bytes = utf8(line)
            #expect(bytes.last == 0x0A)
            bytes.removeLast()
            #expect(!bytes.contains(0x0A) && !bytes.contains(0x0D))
            #expect(validate(bytes) == .success(.object), "\(line)")
            let object = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
            #expect(object?["topic"] as? String == "t\"\n")
        }
    }
}

// MARK: - InputDecoder

private struct DecodedHeader: Equatable, CustomStringConvertible {
    let name: String
    let value: [UInt8]?
    init(_ name: String, _ value: [UInt8]?) { self.name = name; self.value = value }
    init(_ name: String, _ value: String) { self.init(name, utf8(value)) }
    var description: String { "\(name)=\(value.map { text($0) } ?? "nil")" }
}

private struct DecodedEvent: Equatable {
    var line = 1
    var value: [UInt8] = []
    var valueKind: JSONKind?
    var valueIsNull = false
    var key: [UInt8]?
    var headers: [DecodedHeader]?
    var partition: Int32?
    var timestamp: Int64?
}

private func decodeAll(_ decoder: InputDecoder, _ line: [UInt8], number: Int) throws -> [DecodedEvent] {
    var events: [DecodedEvent] = []
    try line.withUnsafeBytes { bytes in
        try decoder.decode(bytes, number: number) { event in
            let headers = event.headers.map { headers in
                headers.entries.map { DecodedHeader(text(headers.bytes[$0.name]), $0.value.map { Array(headers.bytes[$0]) }) }
            }
            events.append(DecodedEvent(line: event.line, value: Array(event.value), valueKind: event.valueKind,
                                       valueIsNull: event.valueIsNull, key: event.key.map { Array($0) }, headers: headers,
                                       partition: event.partition, timestamp: event.timestamp))
        }
    }
    return events
}

private func decode(_ mode: InputDecoder.Mode, key: String? = nil, _ line: [UInt8], number: Int = 1,
                    with decoder: InputDecoder? = nil) throws -> DecodedEvent {
    let events = try decodeAll(decoder ?? InputDecoder(mode: mode, keyPath: key), line, number: number)
    try #require(events.count == 1)
    return events[0]
}

private func decode(_ mode: InputDecoder.Mode, key: String? = nil, _ line: String, number: Int = 1,
                    with decoder: InputDecoder? = nil) throws -> DecodedEvent {
    try decode(mode, key: key, utf8(line), number: number, with: decoder)
}

private func badLine(_ mode: InputDecoder.Mode, key: String? = nil, _ line: [UInt8]) -> BadLine? {
    do {
        let events = try decodeAll(InputDecoder(mode: mode, keyPath: key), line, number: 1)
        Issue.record("accepted \(text(line)) as \(events)")
        return nil
    } catch let error as BadLine {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

private func badLine(_ mode: InputDecoder.Mode, key: String? = nil, _ line: String) -> BadLine? {
    badLine(mode, key: key, utf8(line))
}

@Suite("InputDecoder: json and raw modes, --key")
struct InputDecoderLineTests {
    @Test("json mode sends the exact line bytes with their kind and line number", arguments: [
        (#"{"a":1}"#, JSONKind.object), ("  [1, 2] ", .array), (#""text""#, .string), ("42", .number), ("true", .bool), ("null", .null),
        ("{\"a\":\t\"é😀\"}", .object),
    ])
    func jsonMode(line: String, kind: JSONKind) throws {
        let event = try decode(.json, line, number: 17)
        #expect(event == DecodedEvent(line: 17, value: utf8(line), valueKind: kind))
    }

    @Test("json mode rejects a bad line with the reason and the 1-based column", arguments: [
        (#"{"a":1,}"#, "trailing comma", 8), ("{\"a\":\"\u{01}\"}", "must be escaped", 7), ("", "no JSON value", 1),
        ("{} {}", "trailing characters", 4), ("nope", "invalid literal", 1), ("{\"a\":1", "missing '}'", 7),
    ])
    func jsonModeRejects(line: String, reason: String, column: Int) {
        let error = badLine(.json, line)
        #expect(error?.reason.hasPrefix("invalid JSON: ") == true)
        #expect(error?.reason.contains(reason) == true, "\(error?.reason ?? "")")
        #expect(error?.column == column)
    }

    @Test("json mode rejects invalid UTF-8 at its column")
    func jsonModeRejectsInvalidUTF8() {
        let error = badLine(.json, [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D])   // {"a":"\xFF"}
        #expect(error?.reason.contains("UTF-8") == true)
        #expect(error?.column == 7)
        #expect(badLine(.json, key: "a", [0xC3, 0x28])?.column == 1)
    }

    @Test("--key takes the key from the value: a string unescaped, anything else as its JSON text")
    func keyPath() throws {
        let line = #"{"user":{"id":"u-42"},"n":1}"#
        #expect(try decode(.json, key: "user.id", line) == DecodedEvent(value: utf8(line), valueKind: .object, key: utf8("u-42")))
        #expect(try decode(.json, key: "user.id", #"{"user":{"id":42}}"#).key == utf8("42"))
        #expect(try decode(.json, key: "user.id", #"{"user":{"id":"a\u00e9\n\"\ud83d\ude00"}}"#).key == utf8("aé\n\"😀"))
        #expect(try decode(.json, key: "user", #"{"user":{"id": [1, 2]}}"#).key == utf8(#"{"id": [1, 2]}"#))
        #expect(try decode(.json, key: "k", #"{"k":""}"#).key == [])
        #expect(try decode(.json, key: "us\"er", #"{"us\"er":"x"}"#).key == utf8("x"))
        #expect(try decode(.json, key: "a..b", #"{"a":{"":{"b":"deep"}}}"#).key == utf8("deep"))
    }

    @Test("--key with a missing or unreachable path sends the event without a key")
    func keyPathMissing() throws {
        for line in [#"{"user":{}}"#, #"{"user":"x"}"#, #"{"user":[{"id":1}]}"#, "[1]", "7", #"{"user.id":1}"#] {
            let event = try decode(.json, key: "user.id", line)
            #expect(event.key == nil, "\(line)")
            #expect(event.value == utf8(line))
        }
    }

    @Test("--key still rejects a bad line")
    func keyPathBadLine() {
        #expect(badLine(.json, key: "a", #"{"a":"x",}"#)?.column == 10)
    }

    @Test("a decoder reused from line to line carries nothing over")
    func reuse() throws {
        let decoder = InputDecoder(mode: .json, keyPath: "k")
        #expect(try decode(.json, #"{"k":"first-key-long"}"#, number: 1, with: decoder).key == utf8("first-key-long"))
        #expect(try decode(.json, #"{"k":"2nd"}"#, number: 2, with: decoder).key == utf8("2nd"))
        let third = try decode(.json, #"{"other":1}"#, number: 3, with: decoder)
        #expect(third == DecodedEvent(line: 3, value: utf8(#"{"other":1}"#), valueKind: .object))
    }

    @Test("raw mode passes any bytes through unchanged, unchecked", arguments: [
        utf8("{not json"), [0xFF, 0x00, 0x7B, 0xC0, 0x80], [], utf8(#"  {"a":1}  "#), utf8("\"x"), utf8("a\rb"),
    ] as [[UInt8]])
    func rawMode(line: [UInt8]) throws {
        #expect(try decode(.raw, line, number: 5) == DecodedEvent(line: 5, value: line))
    }
}

@Suite("InputDecoder: --envelope")
struct InputDecoderEnvelopeTests {
    @Test("a Kafka record from evt tail decodes to key, headers, partition, timestamp and the value's exact bytes")
    func fullRecord() throws {
        let line = #"{"topic":"orders","partition":2,"offset":42,"timestamp":1763812345123,"key":"user-42","headers":{"trace":"abc"},"value":{"user_id":42}}"#
        #expect(try decode(.envelope, line, number: 9) == DecodedEvent(
            line: 9, value: utf8(#"{"user_id":42}"#), valueKind: .object, key: utf8("user-42"),
            headers: [DecodedHeader("trace", "abc")], partition: 2, timestamp: 1_763_812_345_123))
    }

    @Test("a string value is sent as its text; any other value as its exact bytes in the line", arguments: [
        (#"{"value":"hello"}"#, utf8("hello"), nil),
        (#"{"value":"line1\nline2 \u00e9 \ud83d\ude00 \"q\" \\"}"#, utf8("line1\nline2 é 😀 \"q\" \\"), nil),
        (#"{"value":"\"hi\""}"#, utf8("\"hi\""), nil),
        (#"{"value":""}"#, [], nil),
        (#"{"value":"\u0000"}"#, [0x00], nil),
        (#"{"value":[1, 2]}"#, utf8("[1, 2]"), JSONKind.array),
        (#"{"value": 42 }"#, utf8("42"), .number),
        (#"{"value":-0.5e-3,"key":"k"}"#, utf8("-0.5e-3"), .number),
        (#"{"value":true}"#, utf8("true"), .bool),
        (#"{"value":false}"#, utf8("false"), .bool),
        (#"{"value":{"a":{"b":[]}, "c":"}"}}"#, utf8(#"{"a":{"b":[]}, "c":"}"}"#), .object),
        (#"{"value_b64":"AAEC/w=="}"#, [0x00, 0x01, 0x02, 0xFF], nil),
        (#"{"value_b64":""}"#, [], nil),
        (#"{"value_b64":"Zm9v\/w=="}"#, [0x66, 0x6F, 0x6F, 0xFF], nil),   // an escaped '/' is still base64
    ] as [(String, [UInt8], JSONKind?)])
    func values(line: String, value: [UInt8], kind: JSONKind?) throws {
        let event = try decode(.envelope, line)
        #expect(event.value == value)
        #expect(event.valueKind == kind)
        #expect(!event.valueIsNull)
    }

    @Test("\"value\":null is a null value (a Kafka tombstone)")
    func nullValue() throws {
        let event = try decode(.envelope, #"{"key":"k","value":null}"#)
        #expect(event.valueIsNull)
        #expect(event.value.isEmpty && event.valueKind == nil && event.key == utf8("k"))
    }

    @Test("keys: a string as its text, other JSON as its bytes, key_b64 decoded, null or absent as none", arguments: [
        (#"{"key":"user-42","value":1}"#, utf8("user-42")), (#"{"key":"a\"b\u00e9","value":1}"#, utf8("a\"bé")),
        (#"{"key":42,"value":1}"#, utf8("42")), (#"{"key":{"id":1},"value":1}"#, utf8(#"{"id":1}"#)),
        (#"{"key":"","value":1}"#, []), (#"{"key_b64":"/w==","value":1}"#, [0xFF]),
        (#"{"value":1,"key_b64":"AA=="}"#, [0x00]),
        (#"{"key":null,"value":1}"#, nil), (#"{"value":1}"#, nil),
    ] as [(String, [UInt8]?)])
    func keys(line: String, key: [UInt8]?) throws {
        let event = try decode(.envelope, line)
        #expect(event.key == key)
        #expect(event.value == utf8("1"))
    }

    @Test("headers: strings, null, {\"b64\":…} and arrays for repeated names, in order; names unescaped")
    func headers() throws {
        let line = #"{"headers":{"a":"1","b":["2","3"],"c":null,"d":{"b64":"/w=="},"e":[null,{"b64":"AA=="}],"tr\u0061ce":"x\ty","":""},"value":1}"#
        #expect(try decode(.envelope, line).headers == [
            DecodedHeader("a", "1"), DecodedHeader("b", "2"), DecodedHeader("b", "3"), DecodedHeader("c", nil),
            DecodedHeader("d", [0xFF]), DecodedHeader("e", nil), DecodedHeader("e", [0x00]),
            DecodedHeader("trace", "x\ty"), DecodedHeader("", ""),
        ])
        #expect(try decode(.envelope, #"{"headers":null,"value":1}"#).headers == nil)
        #expect(try decode(.envelope, #"{"headers":{},"value":1}"#).headers == nil)
        #expect(try decode(.envelope, #"{"headers":{"h":[]},"value":1}"#).headers == nil)
    }

    @Test("partition and timestamp: whole numbers, or null for none", arguments: [
        (#"{"partition":0,"value":1}"#, Int32?(0), Int64?.none), (#"{"partition":2147483647,"value":1}"#, Int32.max, nil),
        (#"{"partition":null,"timestamp":null,"value":1}"#, nil, nil),
        (#"{"timestamp":0,"value":1}"#, nil, 0), (#"{"timestamp":9223372036854775807,"value":1}"#, nil, Int64.max),
        (#"{"value":1,"partition":7,"timestamp":1763812345123}"#, 7, 1_763_812_345_123),
    ] as [(String, Int32?, Int64?)])
    func partitionAndTimestamp(line: String, partition: Int32?, timestamp: Int64?) throws {
        let event = try decode(.envelope, line)
        #expect(event.partition == partition)
        #expect(event.timestamp == timestamp)
    }

    @Test("fields evt does not read (topic, offset, stream, id, deliveries, pattern) are ignored")
    func ignoredFields() throws {
        let line = #"{"stream":"s","id":"1-0","topic":"t","offset":5,"deliveries":2,"pattern":"p*","channel":"c","list":"l","value":{"f":"1"}}"#
        #expect(try decode(.envelope, line) == DecodedEvent(value: utf8(#"{"f":"1"}"#), valueKind: .object))
    }

    @Test("bad envelopes are rejected with a clear reason at the offending value's column", arguments: [
        (#"{"partition":"2","value":1}"#, "partition must be a whole number", #""2""#),
        (#"{"partition":-1,"value":1}"#, "partition must be a whole number", "-1"),
        (#"{"partition":1.5,"value":1}"#, "partition must be a whole number", "1.5"),
        (#"{"partition":2147483648,"value":1}"#, "partition must be a whole number", "2147483648"),
        (#"{"partition":true,"value":1}"#, "partition must be a whole number", "true"),
        (#"{"value":1,"partition":[0]}"#, "partition must be a whole number", "[0]"),
        (#"{"timestamp":"now","value":1}"#, "timestamp must be milliseconds", #""now""#),
        (#"{"timestamp":1.5,"value":1}"#, "timestamp must be milliseconds", "1.5"),
        (#"{"timestamp":{},"value":1}"#, "timestamp must be milliseconds", "{}"),
        (#"{"timestamp":9223372036854775808,"value":1}"#, "timestamp must be milliseconds", "9223372036854775808"),
        (#"{"headers":[1],"value":1}"#, "headers must be an object", "[1]"),
        (#"{"headers":"a=1","value":1}"#, "headers must be an object", #""a=1""#),
        (#"{"headers":{"h":1},"value":1}"#, "a header value must be a string, null or", #"{"h""#),
        (#"{"headers":{"h":true},"value":1}"#, "a header value must be a string, null or", #"{"h""#),
        (#"{"headers":{"h":[["x"]]},"value":1}"#, "a header value must be a string, null or", #"{"h""#),
        (#"{"headers":{"h":{"x":"y"}},"value":1}"#, "a header value must be a string, null or", #"{"h""#),
        (#"{"headers":{"h":{"b64":1}},"value":1}"#, "a header value must be a string, null or", #"{"h""#),
        (#"{"headers":{"h":{"b64":"!!!!"}},"value":1}"#, "a header's b64 is not valid base64", #"{"h""#),
        (#"{"value_b64":"not base64"}"#, "value_b64 is not valid base64", #""not"#),
        (#"{"value_b64":"Zg"}"#, "value_b64 is not valid base64", #""Zg""#),
        (#"{"value_b64":42}"#, "value_b64 must be a string", "42"),
        (#"{"value_b64":{"b64":"Zg=="}}"#, "value_b64 must be a string", #"{"b64""#),
        (#"{"key_b64":"Zg=","value":1}"#, "key_b64 is not valid base64", #""Zg=""#),
        (#"{"key_b64":[1],"value":1}"#, "key_b64 must be a string", "[1]"),
        (#"{"key":"k"}"#, "no value or value_b64", "{"),
        (#"{}"#, "no value or value_b64", "{"),
        (#"[{"value":1}]"#, "expects one JSON object", "["),
        (#""value""#, "expects one JSON object", "\""),
        (#"{"value":1,}"#, "invalid JSON: trailing comma", "}"),
    ])
    func rejects(line: String, reason: String, at needle: String) {
        let error = badLine(.envelope, line)
        #expect(error?.reason.contains(reason) == true, "\(error?.reason ?? "accepted")")
        #expect(error?.column == column(of: needle, in: line), "\(error?.reason ?? "")")
    }

    @Test("envelope rejects invalid JSON and invalid UTF-8 like json mode")
    func rejectsInvalid() {
        #expect(badLine(.envelope, [0x7B, 0x22, 0x76, 0x61, 0x6C, 0x75, 0x65, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D])?.column == 11)
        #expect(badLine(.envelope, "")?.reason.contains("no JSON value") == true)
    }

    @Test("a decoder reused from line to line carries no key, header, partition or value over")
    func reuse() throws {
        let decoder = InputDecoder(mode: .envelope, keyPath: nil)
        let first = try decode(.envelope, #"{"key":"k1","headers":{"h":"v"},"partition":1,"timestamp":5,"value_b64":"Zm9vYmFy"}"#,
                               number: 1, with: decoder)
        #expect(first == DecodedEvent(line: 1, value: utf8("foobar"), key: utf8("k1"), headers: [DecodedHeader("h", "v")],
                                      partition: 1, timestamp: 5))
        let second = try decode(.envelope, #"{"value_b64":"Zg=="}"#, number: 2, with: decoder)
        #expect(second == DecodedEvent(line: 2, value: utf8("f")))
        let third = try decode(.envelope, #"{"value":"x"}"#, number: 3, with: decoder)
        #expect(third == DecodedEvent(line: 3, value: utf8("x")))
    }
}

// MARK: - The round trip CONTRACT.md promises: evt tail A | evt publish B --envelope

/// The record `evt tail` writes for a Kafka message, without its newline.
private func tailRecord(key: [UInt8]?, value: [UInt8]?) -> [UInt8] {
    var line = utf8(record { out in
        if let key {
            key.withUnsafeBytes { out.beginKafkaRecord(quotedTopic: OutputWriter.quoted("a"), partition: 0, offset: 1, timestamp: 2, key: $0) }
        } else {
            out.beginKafkaRecord(quotedTopic: OutputWriter.quoted("a"), partition: 0, offset: 1, timestamp: 2, key: nil)
        }
        if let value { value.withUnsafeBytes { out.endKafkaRecord(value: $0) } } else { out.endKafkaRecord(value: nil) }
    })
    line.removeLast()
    return line
}

private let roundTripPayloads: [[UInt8]] = [
    utf8(#"{"a":1}"#), utf8("[1, 2]"), utf8("42"), utf8("-0.5e10"), utf8("1e400"), utf8("true"), utf8("false"),
    utf8("hello"), utf8("\"hi\""), utf8(#" {"a":1}"#), utf8("{\"a\":1}\n"), utf8("{\n  \"pretty\": true\n}"), utf8("a\r\nb"),
    utf8(""), utf8("é中😀"), [0xFF, 0xFE, 0x00], [0x00], [0x00, 0x1F, 0x7F], utf8(#"{"a":"\ud800"}"#), utf8("{\"a\":\t1}"),
    utf8(#"{"b64":"Zg=="}"#), utf8("nul"), utf8("null "), utf8("\\u0041"), [0xED, 0xA0, 0x80], [0xC3],
    utf8("null"), utf8("\"null\""), utf8("[null]"), utf8(" null"),
]

@Suite("payload rule round trip: evt tail | evt publish --envelope copies byte for byte")
struct PayloadRoundTripTests {
    @Test("a value and a key come back with the same bytes", arguments: roundTripPayloads)
    func roundTrip(payload: [UInt8]) throws {
        let line = tailRecord(key: payload, value: payload)
        #expect(validate(line) == .success(.object), "\(text(line))")
        let event = try decode(.envelope, line)
        #expect(!event.valueIsNull)
        #expect(event.value == payload, "\(text(line))")
        #expect(event.key == payload, "\(text(line))")
    }

    @Test("an absent key and a null value stay absent and null")
    func absent() throws {
        let event = try decode(.envelope, tailRecord(key: nil, value: nil))
        #expect(event.key == nil)
        #expect(event.valueIsNull)
    }

    @Test("a value or key whose bytes are exactly `null` is the string \"null\" and comes back as those 4 bytes, not as a tombstone / no key")
    func literalNull() throws {
        let payload = utf8("null")
        let line = tailRecord(key: payload, value: payload)
        #expect(text(line) == #"{"topic":"a","partition":0,"offset":1,"timestamp":2,"key":"null","value":"null"}"#)
        let event = try decode(.envelope, line)
        #expect(!event.valueIsNull)
        #expect(event.value == payload)
        #expect(event.key == payload)
        // …while an absent key and value are still null, and read back as absent.
        let absent = tailRecord(key: nil, value: nil)
        #expect(text(absent) == #"{"topic":"a","partition":0,"offset":1,"timestamp":2,"key":null,"value":null}"#)
        let tombstone = try decode(.envelope, absent)
        #expect(tombstone.valueIsNull)
        #expect(tombstone.key == nil)
    }

    @Test("header values written by appendStringOrB64 come back with the same bytes", arguments: roundTripPayloads + [utf8("null")])
    func headerRoundTrip(header: [UInt8]) throws {
        let line = utf8(#"{"headers":{"h":"#) + stringOrB64(header) + utf8(#","n":"#) + stringOrB64(nil) + utf8(#"},"value":1}"#)
        #expect(try decode(.envelope, line).headers == [DecodedHeader("h", header), DecodedHeader("n", nil)])
    }
}
