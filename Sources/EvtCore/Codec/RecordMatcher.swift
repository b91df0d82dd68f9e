#if canImport(Glibc)
import Glibc
#endif

/// `--match` (tail, replay-from-offset, subscribe): conditions on a record as evt prints it,
/// all of which must hold.
/// - `key=GLOB`: the record's key (a Kafka key; text, or the JSON it is) matches the shell
///   pattern GLOB (fnmatch: `*`, `?`, `[…]`).
/// - `header.NAME=GLOB`: a Kafka header NAME (any of its values, when repeated) matches.
/// - `value.PATH=VALUE`: the value at the dotted PATH in the record's value is VALUE exactly
///   (a string's text, or the JSON of a number, true, false, null). A stream entry's value
///   is the object of its fields; a PATH that goes on inside a field that holds JSON text
///   (`value.user.id` where the field `user` is `{"id":7}`) reads that JSON.
struct RecordMatcher {
    enum Condition {
        case key(glob: [CChar])
        case header(name: [UInt8], glob: [CChar])
        case value(path: [[UInt8]], expected: [UInt8])
    }

    let conditions: [Condition]

    /// The `--match` options given; nil when there are none (then nothing is checked).
    static func fromArguments(_ arguments: ParsedArguments) throws -> RecordMatcher? {
        let words = arguments.values("match")
        return words.isEmpty ? nil : try RecordMatcher(words, usage: arguments.spec.usageLine)
    }

    init(_ words: [String], usage: String?) throws {
        conditions = try words.map { word in
            guard let equals = word.firstIndex(of: "=") else {
                throw EvtError.usage("--match \(word): expected key=GLOB, header.NAME=GLOB or value.PATH=VALUE.", usage: usage)
            }
            let field = word[..<equals]
            let wanted = String(word[word.index(after: equals)...])
            if field == "key" { return .key(glob: Array(wanted.utf8CString)) }
            if field.hasPrefix("header."), field.count > "header.".count {
                return .header(name: Array(field.dropFirst("header.".count).utf8), glob: Array(wanted.utf8CString))
            }
            if field == "value" || field.hasPrefix("value.") {
                let path = field.split(separator: ".", omittingEmptySubsequences: false).dropFirst().map { Array($0.utf8) }
                guard !path.contains(where: \.isEmpty) else {
                    throw EvtError.usage("--match \(word): a PATH has no empty parts (value.user.id).", usage: usage)
                }
                return .value(path: path, expected: Array(wanted.utf8))
            }
            throw EvtError.usage("--match \(word): expected key=GLOB, header.NAME=GLOB or value.PATH=VALUE, not \(field)=….", usage: usage)
        }
    }

    /// Whether one NDJSON record (its trailing newline included or not) meets every condition.
    func matches(_ line: UnsafeRawBufferPointer) -> Bool {
        conditions.allSatisfy { condition in
            switch condition {
            case .key(let glob):
                guard let found = JSON.find(path: [RecordMatcher.keyName], in: line) else { return false }
                return RecordMatcher.text(of: found, in: line).map { RecordMatcher.glob(glob, $0) } ?? false
            case .header(let name, let glob):
                guard let found = JSON.find(path: [RecordMatcher.headersName, name], in: line) else { return false }
                if found.kind == .array {
                    var any = false
                    JSON.forEachElement(ofArray: UnsafeRawBufferPointer(rebasing: line[found.range])) { range, kind in
                        let base = found.range.lowerBound
                        let element = ((base + range.lowerBound)..<(base + range.upperBound), kind)
                        if !any, kind == .string, let text = RecordMatcher.text(of: element, in: line) { any = RecordMatcher.glob(glob, text) }
                    }
                    return any
                }
                guard found.kind == .string else { return false }
                return RecordMatcher.text(of: found, in: line).map { RecordMatcher.glob(glob, $0) } ?? false
            case .value(let path, let expected):
                return RecordMatcher.value(at: [RecordMatcher.valueName] + path, in: line) == expected
            }
        }
    }

    private static let keyName = Array("key".utf8)
    private static let headersName = Array("headers".utf8)
    private static let valueName = Array("value".utf8)

    /// A string's unescaped text, or the JSON text of anything else but null.
    private static func text(of found: (range: Range<Int>, kind: JSONKind), in bytes: UnsafeRawBufferPointer) -> [UInt8]? {
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
    private static func value(at path: [[UInt8]], in bytes: UnsafeRawBufferPointer) -> [UInt8]? {
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

    private static func glob(_ pattern: [CChar], _ text: [UInt8]) -> Bool {
        guard !text.contains(0) else { return false }
        var subject = text.map { CChar(bitPattern: $0) }
        subject.append(0)
        return fnmatch(pattern, subject, 0) == 0
    }
}
