#if canImport(Glibc)
import Glibc
#endif

/// `--match` (tail, replay-from-offset, subscribe): conditions on a record, all of which must
/// hold, each answered as it reads on the record as evt prints it (CONTRACT, "Records").
/// - `key=GLOB`: the record's key (a Kafka key; text, or the JSON it is) matches the shell
///   pattern GLOB (fnmatch: `*`, `?`, `[…]`).
/// - `header.NAME=GLOB`: a Kafka header NAME (any of its values, when repeated) matches.
/// - `value.PATH=VALUE`: the value at the dotted PATH in the record's value is VALUE exactly
///   (a string's text, or the JSON of a number, true, false, null). A stream entry's value
///   is the object of its fields; a PATH that goes on inside a field that holds JSON text
///   (`value.user.id` where the field `user` is `{"id":7}`) reads that JSON.
///
/// It reads the record's own buffers before anything is encoded, so a record left out costs
/// no output and `-c N` can count the records that pass; a value's JSON is scanned only when
/// a path goes into it. Its scratch buffers are kept from record to record.
final class RecordMatcher {
    /// One condition, as `--match` gives it (Commands/ parses the option's text).
    enum Condition: Equatable {
        case key(glob: String)
        case header(name: String, glob: String)
        /// An empty `path` is the whole value.
        case value(path: [String], equals: String)
    }

    private enum Test {
        case key(glob: [CChar])
        case header(name: PrintedName, glob: [CChar])
        /// `field`: the path's first name, which names a stream entry's field.
        case value(path: [[UInt8]], field: PrintedName?, expected: [UInt8])
    }

    /// A stream field or Kafka header name as a condition gives it. evt prints a name that is
    /// not UTF-8 as `b64:BASE64`, so that text names those bytes too.
    private struct PrintedName {
        let text: [UInt8]
        let bytes: [UInt8]?

        init(_ text: String) {
            self.text = Array(text.utf8)
            let prefix = "b64:".utf8
            guard self.text.starts(with: prefix),
                  let decoded = self.text.dropFirst(prefix.count).withUnsafeBytes({ Base64.decode($0) }),
                  !decoded.withUnsafeBytes({ JSON.isValidUTF8($0) }) else {
                bytes = nil
                return
            }
            var encoded: [UInt8] = []
            decoded.withUnsafeBytes { Base64.append($0, to: &encoded) }
            bytes = encoded.elementsEqual(self.text.dropFirst(prefix.count)) ? decoded : nil
        }

        /// Whether a name prints as this one (a UTF-8 name as itself, other bytes as b64:…).
        func names(_ name: UnsafeRawBufferPointer) -> Bool {
            name.elementsEqual(text) || (bytes.map { name.elementsEqual($0) } ?? false)
        }
    }

    private let tests: [Test]
    /// One buffer per level of JSON text read out of a string (a field holding JSON).
    private let unescaped: [Scratch]
    private var subject: [UInt8] = []
    /// A stream entry's value as printed, for the rare condition on all of it.
    private let printed = OutputWriter(fd: -1, flushThreshold: 0)

    private final class Scratch { var bytes: [UInt8] = [] }

    init(_ conditions: [Condition]) {
        tests = conditions.map { condition in
            switch condition {
            case .key(let glob):
                return .key(glob: Array(glob.utf8CString))
            case .header(let name, let glob):
                return .header(name: PrintedName(name), glob: Array(glob.utf8CString))
            case .value(let path, let expected):
                return .value(path: path.map { Array($0.utf8) }, field: path.first.map(PrintedName.init),
                              expected: Array(expected.utf8))
            }
        }
        let depth = conditions.map { condition in
            switch condition {
            case .value(let path, _): path.count
            default: 0
            }
        }.max() ?? 0
        unescaped = (0...depth).map { _ in Scratch() }
    }

    /// Whether `record` meets every condition.
    func matches(_ record: Record) -> Bool {
        for test in tests where !passes(test, record) { return false }
        return true
    }

    private static let null = Array("null".utf8)
    private static let b64 = Array("b64".utf8)

    private func passes(_ test: Test, _ record: Record) -> Bool {
        switch test {
        case .key(let glob):
            // Only a Kafka record has a key; one that is not UTF-8 prints as key_b64.
            guard record.origin == .kafka, let key = record.key, JSON.isValidUTF8(key) else { return false }
            return globMatches(glob, key)
        case .header(let name, let glob):
            return record.origin == .kafka && header(name, of: record.headers, matches: glob)
        case .value(let path, let field, let expected):
            switch record.origin {
            case .kafka:
                // A tombstone's value prints as null.
                guard let value = record.value else { return path.isEmpty && expected == RecordMatcher.null }
                return payload(value, at: path[...], equals: expected)
            case .list, .channel:
                return payload(record.value ?? UnsafeRawBufferPointer(start: nil, count: 0), at: path[...], equals: expected)
            case .stream:
                return fields(record.fields, at: path[...], field: field, equal: expected)
            }
        }
    }

    /// The first header printed under `name` (names that print alike are one member), any of
    /// its values that prints as a string.
    private func header(_ name: PrintedName, of headers: EventHeaders, matches glob: [CChar]) -> Bool {
        headers.bytes.withUnsafeBytes { bytes in
            func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[range]) }
            guard let first = headers.entries.first(where: { name.names(slice($0.name)) }) else { return false }
            let printedName = slice(first.name)
            for entry in headers.entries where slice(entry.name).elementsEqual(printedName) {
                guard let value = entry.value.map(slice), JSON.isValidUTF8(value) else { continue }
                if globMatches(glob, value) { return true }
            }
            return false
        }
    }

    /// A Kafka record's or list item's value: printed as the JSON it is, as a string when it
    /// is other UTF-8 (a path then reads on into the JSON the string holds), or as value_b64,
    /// which no condition reads. `expected` is UTF-8, so equal bytes are printed as text.
    private func payload(_ value: UnsafeRawBufferPointer, at path: ArraySlice<[UInt8]>, equals expected: [UInt8]) -> Bool {
        if path.isEmpty { return value.elementsEqual(expected) }
        guard (try? JSON.validate(value)) != nil else { return false }
        return json(value, at: path, equals: expected, depth: 0)
    }

    /// A stream entry's value, the object of its fields: each a string, or `{"b64":…}` for
    /// bytes that are not UTF-8.
    private func fields(_ fields: StreamFields,
                        at path: ArraySlice<[UInt8]>, field: PrintedName?, equal expected: [UInt8]) -> Bool {
        let text = printed
        text.buffer.removeAll(keepingCapacity: true)
        guard let field else {
            text.buffer.append(UInt8(ascii: "{"))
            for (index, field) in fields.enumerated() { text.appendStreamField(field.name, field.value, first: index == 0) }
            text.buffer.append(UInt8(ascii: "}"))
            return text.buffer == expected
        }
        guard let value = fields.first(where: { field.names($0.name) })?.value else { return false }
        let rest = path.dropFirst()
        if JSON.isValidUTF8(value) {
            if rest.isEmpty { return value.elementsEqual(expected) }
            return (try? JSON.validate(value)) != nil && json(value, at: rest, equals: expected, depth: 0)
        }
        if rest.isEmpty {
            JSONOutput.appendStringOrB64(value, to: &text.buffer)
        } else if rest.count == 1, rest.first == RecordMatcher.b64 {
            Base64.append(value, to: &text.buffer)
        } else {
            return false
        }
        return text.buffer == expected
    }

    /// In validated JSON: the value at the longest part of `path` that is there. A string
    /// where the path goes on is read as the JSON it holds.
    private func json(_ json: UnsafeRawBufferPointer, at path: ArraySlice<[UInt8]>, equals expected: [UInt8], depth: Int) -> Bool {
        var found = JSON.trimmedValue(json)
        var walked = path.startIndex
        while walked < path.endIndex, let member = JSON.member(path[walked], of: found, in: json) {
            found = member
            walked += 1
        }
        guard walked > path.startIndex else { return false }
        let literal = UnsafeRawBufferPointer(rebasing: json[found.range])
        let inner = unescaped[depth]
        if walked == path.endIndex {
            switch found.kind {
            case .null: return expected == RecordMatcher.null
            case .string:
                let text = UnsafeRawBufferPointer(rebasing: literal[1..<(literal.count - 1)])
                guard text.contains(UInt8(ascii: "\\")) else { return text.elementsEqual(expected) }
                inner.bytes.removeAll(keepingCapacity: true)
                JSON.appendUnescaped(stringLiteral: literal, to: &inner.bytes)
                return inner.bytes == expected
            default: return literal.elementsEqual(expected)
            }
        }
        guard found.kind == .string else { return false }
        inner.bytes.removeAll(keepingCapacity: true)
        JSON.appendUnescaped(stringLiteral: literal, to: &inner.bytes)
        return inner.bytes.withUnsafeBytes { text in
            (try? JSON.validate(text)) != nil && self.json(text, at: path[walked...], equals: expected, depth: depth + 1)
        }
    }

    private func globMatches(_ pattern: [CChar], _ text: UnsafeRawBufferPointer) -> Bool {
        guard !text.contains(0) else { return false }
        subject.removeAll(keepingCapacity: true)
        subject.append(contentsOf: text)
        subject.append(0)
        return subject.withUnsafeBytes { fnmatch(pattern, $0.baseAddress!.assumingMemoryBound(to: CChar.self), 0) == 0 }
    }
}
