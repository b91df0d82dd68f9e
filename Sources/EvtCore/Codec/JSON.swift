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
        if let kind = QuickCheck.kind(of: bytes) { return kind }
        return try validateNamingError(bytes)
    }

    /// The recursive scanner: slower than QuickCheck, but it says where and why a line is
    /// not JSON (and accepts nesting deeper than QuickCheck's 64 levels).
    static func validateNamingError(_ bytes: UnsafeRawBufferPointer) throws(JSONSyntaxError) -> JSONKind {
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
    static func forEachMember<Failure: Error>(ofObject bytes: UnsafeRawBufferPointer,
                                              _ body: (Range<Int>, Range<Int>, JSONKind) throws(Failure) -> Void) throws(Failure) {
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
    static func forEachElement<Failure: Error>(ofArray bytes: UnsafeRawBufferPointer,
                                               _ body: (Range<Int>, JSONKind) throws(Failure) -> Void) throws(Failure) {
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
        for component in path {
            guard let found = member(component, of: current, in: bytes) else { return nil }
            current = found
        }
        return current
    }

    /// For validated JSON: the value of the first member named `name` (compared after
    /// unescaping) of the object at `value` in `bytes`; nil when it has none or is no object.
    static func member(_ name: [UInt8], of value: (range: Range<Int>, kind: JSONKind),
                       in bytes: UnsafeRawBufferPointer) -> (range: Range<Int>, kind: JSONKind)? {
        guard value.kind == .object else { return nil }
        let object = UnsafeRawBufferPointer(rebasing: bytes[value.range])
        var scratch: [UInt8] = []
        var found: (Range<Int>, JSONKind)?
        forEachMember(ofObject: object) { keyRange, valueRange, kind in
            guard found == nil else { return }
            let literal = UnsafeRawBufferPointer(rebasing: object[keyRange])
            let inner = UnsafeRawBufferPointer(rebasing: literal[1..<(literal.count - 1)])
            let matches: Bool
            if inner.contains(UInt8(ascii: "\\")) {
                scratch.removeAll(keepingCapacity: true)
                appendUnescaped(stringLiteral: literal, to: &scratch)
                matches = scratch == name
            } else {
                matches = inner.elementsEqual(name)
            }
            if matches { found = (valueRange, kind) }
        }
        guard let (range, kind) = found else { return nil }
        let base = value.range.lowerBound
        return ((base + range.lowerBound)..<(base + range.upperBound), kind)
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

/// The hot path of validation: one loop, no recursion and no error text. It returns the
/// kind of a valid value and nil for anything else (including nesting deeper than 64);
/// `JSON.validate` then runs the Validator to accept the deep case or name the error.
/// Both must accept exactly the same lines up to 64 levels; the codec tests check that.
enum QuickCheck {
    /// The kind of the one JSON value in `bytes` (whitespace around it allowed), or nil when
    /// they are not exactly one valid value or nest deeper than 64 levels.
    ///
    /// One loop over a pointer, with the string scan written once (keys and values alike):
    /// as separate functions the scans were not inlined, and their calls (register saves,
    /// constants reloaded) cost more than the bytes of the short keys they scan.
    static func kind(of bytes: UnsafeRawBufferPointer) -> JSONKind? {
        guard let start = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
        let end = start + bytes.count
        var p = start
        @inline(__always) func skipWhitespace() {
            // Most bytes are above 0x20: one compare tells them from whitespace.
            while p < end && p.pointee <= 0x20 {
                let byte = p.pointee
                guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
                p += 1
            }
        }
        @inline(__always) func isDigit(_ at: UnsafePointer<UInt8>) -> Bool { at < end && at.pointee &- UInt8(ascii: "0") < 10 }
        @inline(__always) func word(_ at: UnsafePointer<UInt8>) -> UInt32 {
            UInt32(littleEndian: UnsafeRawPointer(at).loadUnaligned(as: UInt32.self))
        }
        skipWhitespace()
        guard p < end else { return nil }
        let kind: JSONKind
        switch p.pointee {
        case UInt8(ascii: "{"): kind = .object
        case UInt8(ascii: "["): kind = .array
        case UInt8(ascii: "\""): kind = .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): kind = .bool
        case UInt8(ascii: "n"): kind = .null
        default: kind = .number
        }
        var objects: UInt64 = 0   // bit d: the container at depth d+1 is an object
        var depth = 0
        var wantsKey = false      // the next token is a member's key, in quotes
        value: while true {
            guard p < end else { return nil }
            let first = p.pointee
            if first == UInt8(ascii: "\"") {
                p += 1
                while true {
                    while end - p >= 8 {
                        let special = Validator.specialBytes(UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
                        if special != 0 {
                            p += special.trailingZeroBitCount &>> 3
                            break
                        }
                        p += 8
                    }
                    guard p < end else { return nil }
                    let byte = p.pointee
                    if byte == UInt8(ascii: "\"") { break }
                    if byte == UInt8(ascii: "\\") {
                        guard end - p >= 2 else { return nil }
                        switch p[1] {
                        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                             UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                            p += 2
                        case UInt8(ascii: "u"):
                            guard end - p >= 6, JSON.hexValue(p[2]) != nil, JSON.hexValue(p[3]) != nil,
                                  JSON.hexValue(p[4]) != nil, JSON.hexValue(p[5]) != nil else { return nil }
                            p += 6
                        default:
                            return nil
                        }
                    } else if byte < 0x20 {
                        return nil
                    } else if byte < 0x80 {
                        p += 1
                    } else {
                        guard let length = JSON.utf8SequenceLength(bytes, at: p - start) else { return nil }
                        p += length
                    }
                }
                p += 1
                if wantsKey {
                    skipWhitespace()
                    guard p < end, p.pointee == UInt8(ascii: ":") else { return nil }
                    p += 1
                    skipWhitespace()
                    wantsKey = false
                    continue value
                }
            } else if wantsKey {
                return nil
            } else if first == UInt8(ascii: "{") || first == UInt8(ascii: "[") {
                guard depth < 64 else { return nil }
                let isObject = first == UInt8(ascii: "{")
                if isObject { objects |= 1 &<< UInt64(depth) } else { objects &= ~(1 &<< UInt64(depth)) }
                depth &+= 1
                p += 1
                skipWhitespace()
                if p < end && p.pointee == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    depth &-= 1
                    p += 1
                } else {
                    wantsKey = isObject
                    continue value
                }
            } else if first == UInt8(ascii: "t") {
                guard end - p >= 4, word(p) == 0x6575_7274 else { return nil }           // "true"
                p += 4
            } else if first == UInt8(ascii: "f") {
                guard end - p >= 5, word(p + 1) == 0x6573_6C61 else { return nil }       // "alse"
                p += 5
            } else if first == UInt8(ascii: "n") {
                guard end - p >= 4, word(p) == 0x6C6C_756E else { return nil }           // "null"
                p += 4
            } else {
                if first == UInt8(ascii: "-") { p += 1 }
                guard isDigit(p) else { return nil }
                if p.pointee == UInt8(ascii: "0") {
                    p += 1
                } else {
                    repeat { p += 1 } while isDigit(p)
                }
                if p < end && p.pointee == UInt8(ascii: ".") {
                    p += 1
                    guard isDigit(p) else { return nil }
                    repeat { p += 1 } while isDigit(p)
                }
                if p < end && p.pointee | 0x20 == UInt8(ascii: "e") {
                    p += 1
                    if p < end && (p.pointee == UInt8(ascii: "+") || p.pointee == UInt8(ascii: "-")) { p += 1 }
                    guard isDigit(p) else { return nil }
                    repeat { p += 1 } while isDigit(p)
                }
            }
            // After a value: close containers, or a comma and the next value.
            while true {
                skipWhitespace()
                if depth == 0 { return p == end ? kind : nil }
                guard p < end else { return nil }
                let byte = p.pointee
                let inObject = objects & (1 &<< UInt64(depth &- 1)) != 0
                if byte == UInt8(ascii: ",") {
                    p += 1
                    skipWhitespace()
                    wantsKey = inObject
                    continue value
                }
                guard byte == (inObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) else { return nil }
                depth &-= 1
                p += 1
            }
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

    /// Byte by byte, to name the problem (this runs on lines QuickCheck rejected).
    mutating func string() throws(JSONSyntaxError) {
        let start = index
        let count = bytes.count
        var i = index &+ 1
        defer { index = i }
        while true {
            guard i < count else { break }
            let byte = bytes[i]
            if byte == UInt8(ascii: "\"") { i &+= 1; return }
            if byte == UInt8(ascii: "\\") {
                guard i &+ 1 < count else { break }
                switch bytes[i &+ 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                     UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i &+= 2
                case UInt8(ascii: "u"):
                    guard i &+ 6 <= count,
                          (2..<6).allSatisfy({ JSON.hexValue(bytes[i &+ $0]) != nil }) else {
                        throw fail("\\u must be followed by four hex digits", at: i)
                    }
                    i &+= 6
                default:
                    throw fail("invalid escape \\\(Character(Unicode.Scalar(bytes[i &+ 1]))) in a string", at: i)
                }
            } else if byte < 0x20 {
                throw fail("\(Validator.describe(byte)) inside a string must be escaped", at: i)
            } else if byte < 0x80 {
                i &+= 1
            } else {
                guard let length = JSON.utf8SequenceLength(bytes, at: i) else {
                    throw fail("invalid UTF-8 in a string", at: i)
                }
                i &+= length
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

    /// A mask with the high bit set in each byte of `word` that is < 0x20, '"', '\\' or
    /// >= 0x80 (SWAR). Bytes above the first match may be flagged falsely (borrows carry
    /// upwards), but the lowest set bit marks the first special byte exactly.
    @inline(__always)
    static func specialBytes(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        func zeroBytes(_ value: UInt64) -> UInt64 { (value &- ones) & ~value & highs }
        let control = (word &- 0x2020_2020_2020_2020) & ~word & highs
        let quote = zeroBytes(word ^ 0x2222_2222_2222_2222)
        let backslash = zeroBytes(word ^ 0x5C5C_5C5C_5C5C_5C5C)
        return control | quote | backslash | (word & highs)
    }

    mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let length = word.utf8CodeUnitCount
        let expected = UnsafeRawBufferPointer(start: word.utf8Start, count: length)
        guard index + length <= bytes.count,
              UnsafeRawBufferPointer(rebasing: bytes[index..<(index + length)]).elementsEqual(expected) else {
            let seen = String(decoding: bytes[index..<min(bytes.count, index + 12)].prefix { $0 > 0x20 && $0 < 0x7F }, as: UTF8.self)
            throw fail("invalid literal \(seen)… (only true, false and null are bare words in JSON; is it a string missing its quotes?)")
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
