/// The kinds of JSON value.
enum JSONKind: Sendable, Equatable {
    case object, array, string, number, bool, null
}

/// Where and why a line is not JSON. `offset` is a byte index into the line.
struct JSONSyntaxError: Error, Equatable {
    let offset: Int
    let reason: String
}

/// A strict RFC 8259 scanner over bytes: validation (UTF-8 included), then cheap walks over
/// text already validated — members of an object, elements of an array, a value at a path.
/// Nothing here allocates except error messages and unescaped output.
enum JSON {
    static let maxDepth = 512

    /// Checks that `bytes` hold exactly one JSON value, with optional whitespace around it.
    static func validate(_ bytes: UnsafeRawBufferPointer) throws(JSONSyntaxError) -> JSONKind {
        var scanner = Validator(bytes: bytes)
        scanner.skipWhitespace()
        guard scanner.index < bytes.count else {
            throw JSONSyntaxError(offset: scanner.index, reason: "no JSON value")
        }
        let kind = try scanner.value(depth: 0)
        scanner.skipWhitespace()
        if scanner.index < bytes.count {
            throw JSONSyntaxError(offset: scanner.index, reason: "trailing characters after the JSON value (\(Validator.describe(bytes[scanner.index])))")
        }
        return kind
    }

    /// True when the bytes are well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF).
    static func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        let count = bytes.count
        while index < count {
            // Fast path: eight ASCII bytes at a time.
            if index + 8 <= count {
                let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                if word & 0x8080_8080_8080_8080 == 0 { index += 8; continue }
            }
            if bytes[index] < 0x80 { index += 1; continue }
            guard let length = utf8SequenceLength(bytes, at: index) else { return false }
            index += length
        }
        return true
    }

    /// The length of the valid multi-byte UTF-8 sequence starting at `index`, or nil.
    @inline(__always)
    static func utf8SequenceLength(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Int? {
        let lead = bytes[index]
        let count = bytes.count
        func continuation(_ offset: Int, _ low: UInt8 = 0x80, _ high: UInt8 = 0xBF) -> Bool {
            index + offset < count && (low...high).contains(bytes[index + offset])
        }
        switch lead {
        case 0xC2...0xDF:
            return continuation(1) ? 2 : nil
        case 0xE0:
            return continuation(1, 0xA0) && continuation(2) ? 3 : nil
        case 0xE1...0xEC, 0xEE...0xEF:
            return continuation(1) && continuation(2) ? 3 : nil
        case 0xED:
            return continuation(1, 0x80, 0x9F) && continuation(2) ? 3 : nil
        case 0xF0:
            return continuation(1, 0x90) && continuation(2) && continuation(3) ? 4 : nil
        case 0xF1...0xF3:
            return continuation(1) && continuation(2) && continuation(3) ? 4 : nil
        case 0xF4:
            return continuation(1, 0x80, 0x8F) && continuation(2) && continuation(3) ? 4 : nil
        default:
            return nil
        }
    }

    /// For validated bytes: the value's range without surrounding whitespace, and its kind.
    static func trimmedValue(_ bytes: UnsafeRawBufferPointer) -> (range: Range<Int>, kind: JSONKind) {
        var walker = Walker(bytes: bytes)
        walker.skipWhitespace()
        let start = walker.index
        let kind = walker.skipValue()
        return (start..<walker.index, kind)
    }

    /// For a validated object: each member's key literal range (quotes included) and its
    /// value's range and kind, in order.
    static func forEachMember(ofObject bytes: UnsafeRawBufferPointer,
                              _ body: (Range<Int>, Range<Int>, JSONKind) throws -> Void) rethrows {
        var walker = Walker(bytes: bytes)
        walker.skipWhitespace()
        guard walker.index < bytes.count, bytes[walker.index] == UInt8(ascii: "{") else { return }
        walker.index += 1
        while true {
            walker.skipWhitespace()
            guard walker.index < bytes.count, bytes[walker.index] == UInt8(ascii: "\"") else { return }
            let keyStart = walker.index
            walker.skipString()
            let keyRange = keyStart..<walker.index
            walker.skipWhitespace()
            walker.index += 1   // ':'
            walker.skipWhitespace()
            let valueStart = walker.index
            let kind = walker.skipValue()
            try body(keyRange, valueStart..<walker.index, kind)
            walker.skipWhitespace()
            guard walker.index < bytes.count, bytes[walker.index] == UInt8(ascii: ",") else { return }
            walker.index += 1
        }
    }

    /// For a validated array: each element's range and kind, in order.
    static func forEachElement(ofArray bytes: UnsafeRawBufferPointer,
                               _ body: (Range<Int>, JSONKind) throws -> Void) rethrows {
        var walker = Walker(bytes: bytes)
        walker.skipWhitespace()
        guard walker.index < bytes.count, bytes[walker.index] == UInt8(ascii: "[") else { return }
        walker.index += 1
        while true {
            walker.skipWhitespace()
            guard walker.index < bytes.count, bytes[walker.index] != UInt8(ascii: "]") else { return }
            let start = walker.index
            let kind = walker.skipValue()
            try body(start..<walker.index, kind)
            walker.skipWhitespace()
            guard walker.index < bytes.count, bytes[walker.index] == UInt8(ascii: ",") else { return }
            walker.index += 1
        }
    }

    /// For validated JSON: the value at a path of object keys (`--key user.id` is
    /// ["user", "id"]), keys compared after unescaping; nil if absent or not reachable.
    static func find(path: [[UInt8]], in bytes: UnsafeRawBufferPointer) -> (range: Range<Int>, kind: JSONKind)? {
        var current = trimmedValue(bytes)
        var scratch: [UInt8] = []
        for component in path {
            guard current.kind == .object else { return nil }
            let object = UnsafeRawBufferPointer(rebasing: bytes[current.range])
            var found: (Range<Int>, JSONKind)?
            forEachMember(ofObject: object) { keyRange, valueRange, kind in
                guard found == nil else { return }
                let literal = UnsafeRawBufferPointer(rebasing: object[keyRange])
                let inner = UnsafeRawBufferPointer(rebasing: literal[1..<(literal.count - 1)])
                let matches: Bool
                if inner.contains(UInt8(ascii: "\\")) {
                    scratch.removeAll(keepingCapacity: true)
                    appendUnescaped(stringLiteral: literal, to: &scratch)
                    matches = scratch == component
                } else {
                    matches = inner.elementsEqual(component)
                }
                if matches { found = (valueRange, kind) }
            }
            guard let (range, kind) = found else { return nil }
            let base = current.range.lowerBound
            current = ((base + range.lowerBound)..<(base + range.upperBound), kind)
        }
        return current
    }

    /// Appends the decoded bytes of a validated string literal (quotes included).
    static func appendUnescaped(stringLiteral literal: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        var index = 1
        let end = literal.count - 1
        while index < end {
            // Copy the run up to the next backslash in one go.
            var runEnd = index
            while runEnd < end && literal[runEnd] != UInt8(ascii: "\\") { runEnd += 1 }
            if runEnd > index { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: literal[index..<runEnd])) }
            index = runEnd
            guard index < end else { break }
            let escaped = literal[index + 1]
            index += 2
            switch escaped {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex4(literal, at: index)
                index += 4
                if (0xD800...0xDBFF).contains(scalar), index + 5 < literal.count,
                   literal[index] == UInt8(ascii: "\\"), literal[index + 1] == UInt8(ascii: "u") {
                    let low = hex4(literal, at: index + 2)
                    if (0xDC00...0xDFFF).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        index += 6
                    }
                }
                appendUTF8(Unicode.Scalar(scalar) ?? "\u{FFFD}", to: &out)
            default: out.append(escaped)   // \" \\ \/
            }
        }
    }

    @inline(__always)
    static func hex4(_ bytes: UnsafeRawBufferPointer, at index: Int) -> UInt32 {
        var value: UInt32 = 0
        for offset in 0..<4 { value = value << 4 | UInt32(hexValue(bytes[index + offset]) ?? 0) }
        return value
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    static func appendUTF8(_ scalar: Unicode.Scalar, to out: inout [UInt8]) {
        let value = scalar.value
        switch value {
        case 0..<0x80:
            out.append(UInt8(value))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | (value >> 6)))
            out.append(UInt8(0x80 | (value & 0x3F)))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | (value >> 12)))
            out.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (value & 0x3F)))
        default:
            out.append(UInt8(0xF0 | (value >> 18)))
            out.append(UInt8(0x80 | ((value >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (value & 0x3F)))
        }
    }
}

/// Validating recursive-descent scanner; recursion is bounded by `JSON.maxDepth`.
private struct Validator {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    static func describe(_ byte: UInt8) -> String {
        switch byte {
        case 0x20..<0x7F: return "'\(Character(Unicode.Scalar(byte)))'"
        case 0x0A: return "a line feed"
        case 0x0D: return "a carriage return"
        default: return "byte 0x" + String(byte, radix: 16, uppercase: true)
        }
    }

    func fail(_ reason: String, at offset: Int? = nil) -> JSONSyntaxError {
        JSONSyntaxError(offset: offset ?? index, reason: reason)
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func value(depth: Int) throws(JSONSyntaxError) -> JSONKind {
        guard index < bytes.count else { throw fail("unexpected end of line: a value is missing") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            try object(depth: depth + 1)
            return .object
        case UInt8(ascii: "["):
            try array(depth: depth + 1)
            return .array
        case UInt8(ascii: "\""):
            try string()
            return .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try number()
            return .number
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case let byte:
            throw fail("unexpected \(Validator.describe(byte)) where a value should start")
        }
    }

    mutating func object(depth: Int) throws(JSONSyntaxError) {
        guard depth <= JSON.maxDepth else { throw fail("nesting deeper than \(JSON.maxDepth) levels") }
        index += 1
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "}") { index += 1; return }
        while true {
            guard index < bytes.count else { throw fail("unexpected end of line inside an object") }
            guard bytes[index] == UInt8(ascii: "\"") else {
                throw fail("expected a string key in double quotes, found \(Validator.describe(bytes[index]))")
            }
            try string()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw fail("expected ':' after an object key")
            }
            index += 1
            skipWhitespace()
            _ = try value(depth: depth)
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of line inside an object (missing '}')") }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return }
            guard bytes[index] == UInt8(ascii: ",") else {
                throw fail("expected ',' or '}' in an object, found \(Validator.describe(bytes[index]))")
            }
            index += 1
            skipWhitespace()
            if index < bytes.count && bytes[index] == UInt8(ascii: "}") { throw fail("trailing comma before '}'") }
        }
    }

    mutating func array(depth: Int) throws(JSONSyntaxError) {
        guard depth <= JSON.maxDepth else { throw fail("nesting deeper than \(JSON.maxDepth) levels") }
        index += 1
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "]") { index += 1; return }
        while true {
            _ = try value(depth: depth)
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of line inside an array (missing ']')") }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return }
            guard bytes[index] == UInt8(ascii: ",") else {
                throw fail("expected ',' or ']' in an array, found \(Validator.describe(bytes[index]))")
            }
            index += 1
            skipWhitespace()
            if index < bytes.count && bytes[index] == UInt8(ascii: "]") { throw fail("trailing comma before ']'") }
        }
    }

    mutating func string() throws(JSONSyntaxError) {
        let start = index
        index += 1
        while index < bytes.count {
            // Fast path: skip eight plain ASCII bytes at a time (no quote, backslash, control
            // character or non-ASCII byte among them).
            while index + 8 <= bytes.count {
                let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                if Validator.hasSpecialByte(word) { break }
                index += 8
            }
            guard index < bytes.count else { break }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { index += 1; return }
            if byte == UInt8(ascii: "\\") {
                guard index + 1 < bytes.count else { break }
                switch bytes[index + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                     UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 2
                case UInt8(ascii: "u"):
                    guard index + 6 <= bytes.count,
                          (2..<6).allSatisfy({ JSON.hexValue(bytes[index + $0]) != nil }) else {
                        throw fail("\\u must be followed by four hex digits")
                    }
                    index += 6
                default:
                    throw fail("invalid escape \\\(Character(Unicode.Scalar(bytes[index + 1]))) in a string")
                }
            } else if byte < 0x20 {
                throw fail("\(Validator.describe(byte)) inside a string must be escaped")
            } else if byte < 0x80 {
                index += 1
            } else {
                guard let length = JSON.utf8SequenceLength(bytes, at: index) else {
                    throw fail("invalid UTF-8 in a string")
                }
                index += length
            }
        }
        throw fail("unterminated string (opened at column \(start + 1))", at: start)
    }

    mutating func number() throws(JSONSyntaxError) {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number: a digit must follow '-'", at: start) }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count && isDigit(bytes[index]) { throw fail("invalid number: no leading zeros", at: start) }
        } else {
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number: a digit must follow '.'", at: start) }
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count && (bytes[index] | 0x20) == UInt8(ascii: "e") {
            index += 1
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number: the exponent has no digits", at: start) }
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
        }
    }

    @inline(__always)
    func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    /// Whether any byte of `word` is < 0x20, '"', '\\' or >= 0x80 (SWAR: each test sets a
    /// byte's high bit when it matches).
    @inline(__always)
    static func hasSpecialByte(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        func hasZero(_ value: UInt64) -> UInt64 { (value &- ones) & ~value & highs }
        let control = (word &- 0x2020_2020_2020_2020) & ~word & highs
        let quote = hasZero(word ^ 0x2222_2222_2222_2222)
        let backslash = hasZero(word ^ 0x5C5C_5C5C_5C5C_5C5C)
        return (control | quote | backslash | (word & highs)) != 0
    }

    mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let length = word.utf8CodeUnitCount
        let expected = UnsafeRawBufferPointer(start: word.utf8Start, count: length)
        guard index + length <= bytes.count,
              UnsafeRawBufferPointer(rebasing: bytes[index..<(index + length)]).elementsEqual(expected) else {
            throw fail("invalid literal (expected \(word))")
        }
        index += length
    }
}

/// Walks text already validated: no checks, just boundaries.
private struct Walker {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inline(__always)
    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func skipString() {
        index += 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""): index += 1; return
            case UInt8(ascii: "\\"): index += 2
            default: index += 1
            }
        }
    }

    mutating func skipValue() -> JSONKind {
        guard index < bytes.count else { return .null }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            skipString()
            return .string
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let kind: JSONKind = bytes[index] == UInt8(ascii: "{") ? .object : .array
            var depth = 0
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    skipString()
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { index += 1; return kind }
                default:
                    break
                }
                index += 1
            }
            return kind
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            index += bytes[index] == UInt8(ascii: "t") ? 4 : 5
            return .bool
        case UInt8(ascii: "n"):
            index += 4
            return .null
        default:
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D: return .number
                default: index += 1
                }
            }
            return .number
        }
    }
}
