#if canImport(Glibc)
import Glibc
#endif

extension AvroSchema {
    /// Encodes one JSON value, validated JSON text as every line evt reads is, and appends its
    /// Avro binary encoding (no framing) to `out`, byte for byte what fastavro (confluent-kafka's
    /// AvroSerializer) writes: arrays and maps as one block.
    ///
    /// It takes what `appendJSON` writes, and natural JSON from other tools: a union may be a
    /// bare value when exactly one of its branches takes it; an integer fits int (in range)
    /// and long, any number float and double (and `"NaN"`, `"Infinity"`, `"-Infinity"` too);
    /// a record's members may come in any order, and a missing one takes the field's default.
    /// What does not fit throws the mismatch, with its path: a member the record has no field
    /// for, a missing field with no default, a symbol the enum lacks, an int out of range;
    /// `out` is then as it was.
    ///
    /// One pass over the text, writing as it goes, with no libavro value in between: building
    /// libavro's value with its setters, then writing it, cost ~49 000 instructions per record
    /// of the rich test schema (callgrind), most of them walking the text again at each level.
    func encode(json: UnsafeRawBufferPointer, appendingTo out: inout [UInt8]) throws(SchemaMismatch) {
        var bytes = AvroBytes(base: buffer, capacity: bufferCapacity)
        defer {
            buffer = bytes.base
            bufferCapacity = bytes.capacity
        }
        do throws(SchemaMismatch) {
            try nodes.withUnsafeBufferPointer { nodes throws(SchemaMismatch) in
                var writer = AvroBinaryWriter(nodes: nodes.baseAddress!, text: json, scratch: scratch)
                scratch = []
                defer { scratch = writer.scratch }
                try writer.value(node: 0, to: &bytes)
            }
            out.append(contentsOf: UnsafeRawBufferPointer(start: bytes.base, count: bytes.count))
        } catch {
            var mismatch = error
            if mismatch.path.hasPrefix("[") { mismatch.path = "." + mismatch.path }
            throw mismatch
        }
    }
}

/// Parses JSON text beside the schema's node table and writes Avro's binary encoding.
private struct AvroBinaryWriter {
    /// The schema's node table, borrowed: a copy of a node would retain each of its arrays.
    let nodes: UnsafePointer<AvroNode>
    /// The text being read (the value, or a field's default while that is written).
    var text: UnsafeRawBufferPointer
    var position = 0
    /// Unescaped strings and numbers on their way into the output.
    var scratch: [UInt8]

    init(nodes: UnsafePointer<AvroNode>, text: UnsafeRawBufferPointer, scratch: [UInt8]) {
        self.nodes = nodes
        self.text = text
        self.scratch = scratch
    }

    // MARK: Values

    mutating func value(node index: Int, to out: inout AvroBytes) throws(SchemaMismatch) {
        skipWhitespace()
        let node = nodes + index
        let kind = kindHere()
        switch node.pointee.kind {
        case .null:
            guard kind == .null else { throw mismatch("null", kind) }
            position += 4
        case .boolean:
            guard kind == .bool else { throw mismatch("boolean", kind) }
            let isTrue = text[position] == UInt8(ascii: "t")
            out.byte(isTrue ? 1 : 0)
            position += isTrue ? 4 : 5
        case .int, .long:
            let isInt = node.pointee.kind == .int
            guard kind == .number else { throw mismatch(isInt ? "int" : "long", kind) }
            let literal = numberHere()
            guard let number = AvroBinaryWriter.integer(literal), !isInt || Int32(exactly: number) != nil else {
                let range = isInt ? "int (-2147483648 to 2147483647)" : "long (-9223372036854775808 to 9223372036854775807)"
                throw mismatch(AvroBinaryWriter.isIntegerLiteral(literal) ? range : isInt ? "int" : "long", kind)
            }
            position += literal.count
            out.varint(number)
        case .float:
            guard let number = floatingPoint(kind, single: true) else { throw mismatch("float", kind) }
            withUnsafeBytes(of: Float(number).bitPattern.littleEndian) { out.bytes($0) }
        case .double:
            guard let number = floatingPoint(kind, single: false) else { throw mismatch("double", kind) }
            withUnsafeBytes(of: number.bitPattern.littleEndian) { out.bytes($0) }
        case .string:
            guard kind == .string else { throw mismatch("string", kind) }
            appendString(to: &out)
        case .bytes:
            guard kind == .string, let length = decodeCodePoints() else { throw mismatch("bytes (a string of code points 0-255)", kind) }
            position += length
            out.varint(Int64(scratch.count))
            scratch.withUnsafeBytes { out.bytes($0) }
        case .fixed:
            guard kind == .string, let length = decodeCodePoints(), scratch.count == node.pointee.size else {
                throw mismatch("\(node.pointee.name) (\(node.pointee.size) bytes as a string of code points 0-255)", kind)
            }
            position += length
            scratch.withUnsafeBytes { out.bytes($0) }
        case .enumeration:
            let literal = stringHere()
            guard kind == .string, let symbol = nameIndex(ofLiteral: literal, in: node.pointee.names) else {
                throw mismatch("one of the enum's symbols " + list(node.pointee.names), kind)
            }
            position += literal.count
            out.varint(Int64(symbol))
        case .array:
            guard kind == .array else { throw mismatch("an array", kind) }
            try block(of: node.pointee.children[0], isMap: false, to: &out)
        case .map:
            guard kind == .object else { throw mismatch("a map (an object)", kind) }
            try block(of: node.pointee.children[0], isMap: true, to: &out)
        case .record:
            guard kind == .object else { throw mismatch("a \(node.pointee.name) record (an object)", kind) }
            try record(node, to: &out)
        case .union:
            try union(node, kind, to: &out)
        }
    }

    /// An array's elements or a map's members as one block: its count, the items, then 0 (an
    /// empty one is just the 0), as fastavro writes them.
    private mutating func block(of items: Int, isMap: Bool, to out: inout AvroBytes) throws(SchemaMismatch) {
        position += 1
        let start = out.count
        var count = 0
        while true {
            skipWhitespace()
            if text[position] == (isMap ? UInt8(ascii: "}") : UInt8(ascii: "]")) { break }
            if count > 0 {
                position += 1   // ','
                skipWhitespace()
            }
            if isMap {
                let key = stringHere()
                appendString(to: &out)
                skipWhitespace()
                position += 1   // ':'
                do throws(SchemaMismatch) {
                    try value(node: items, to: &out)
                } catch {
                    throw error.inside(AvroBinaryWriter.memberStep(key))
                }
            } else {
                do throws(SchemaMismatch) {
                    try value(node: items, to: &out)
                } catch {
                    throw error.inside("[\(count)]")
                }
            }
            count += 1
        }
        position += 1
        if count > 0 {
            out.insertVarint(Int64(count), at: start)
        }
        out.byte(0)
    }

    /// A record's fields in the schema's order. Members in that order are written as they
    /// come; a member out of order sends the record to `recordInAnyOrder`.
    private mutating func record(_ node: UnsafePointer<AvroNode>, to out: inout AvroBytes) throws(SchemaMismatch) {
        let objectStart = position
        let outStart = out.count
        let fieldCount = node.pointee.children.count
        var next = 0
        position += 1
        while true {
            skipWhitespace()
            if text[position] == UInt8(ascii: "}") { break }
            if text[position] == UInt8(ascii: ",") {
                position += 1
                skipWhitespace()
            }
            let key = stringHere()
            guard let field = nameIndex(ofLiteral: key, in: node.pointee.names, first: next) else {
                position += key.count
                skipWhitespace()
                position += 1
                skipWhitespace()
                throw SchemaMismatch(path: AvroBinaryWriter.memberStep(key), expected: "no member here: \(node.pointee.name) has no field of that name",
                                     found: AvroBinaryWriter.describe(valueHere(), kindHere()))
            }
            if field != next {
                guard field > next else {
                    throw SchemaMismatch(path: AvroBinaryWriter.memberStep(key), expected: "one member of that name", found: "a second one")
                }
                out.count = outStart
                position = objectStart
                return try recordInAnyOrder(node, to: &out)
            }
            position += key.count
            skipWhitespace()
            position += 1   // ':'
            do throws(SchemaMismatch) {
                try value(node: node.pointee.children[field], to: &out)
            } catch {
                throw error.inside(AvroBinaryWriter.memberStep(key))
            }
            next += 1
        }
        position += 1
        for field in next..<fieldCount {
            try appendDefault(node, field: field, to: &out)
        }
    }

    /// A record whose members are not in field order: where each member's value starts, then
    /// the fields in order from there.
    private mutating func recordInAnyOrder(_ node: UnsafePointer<AvroNode>, to out: inout AvroBytes) throws(SchemaMismatch) {
        var starts = [Int?](repeating: nil, count: node.pointee.children.count)
        let object = UnsafeRawBufferPointer(rebasing: text[position...])
        let (range, _) = JSON.trimmedValue(object)
        let base = position
        try JSON.forEachMember(ofObject: UnsafeRawBufferPointer(rebasing: object[range])) { keyRange, valueRange, kind throws(SchemaMismatch) in
            let key = UnsafeRawBufferPointer(rebasing: object[keyRange])
            guard let field = nameIndex(ofLiteral: key, in: node.pointee.names) else {
                throw SchemaMismatch(path: AvroBinaryWriter.memberStep(key), expected: "no member here: \(node.pointee.name) has no field of that name",
                                     found: AvroBinaryWriter.describe(UnsafeRawBufferPointer(rebasing: object[valueRange]), kind))
            }
            guard starts[field] == nil else {
                throw SchemaMismatch(path: AvroBinaryWriter.memberStep(key), expected: "one member of that name", found: "a second one")
            }
            starts[field] = base + valueRange.lowerBound
        }
        let end = base + range.upperBound
        for field in 0..<starts.count {
            guard let start = starts[field] else {
                try appendDefault(node, field: field, to: &out)
                continue
            }
            position = start
            do throws(SchemaMismatch) {
                try value(node: node.pointee.children[field], to: &out)
            } catch {
                throw error.inside(SchemaMismatch.member(String(decoding: node.pointee.names[field], as: UTF8.self), of: "."))
            }
        }
        position = end
    }

    /// A missing field's default, from the schema's text: for a union, a value of its first
    /// branch (the Avro specification's rule).
    private mutating func appendDefault(_ node: UnsafePointer<AvroNode>, field: Int, to out: inout AvroBytes) throws(SchemaMismatch) {
        let step = SchemaMismatch.member(String(decoding: node.pointee.names[field], as: UTF8.self), of: ".")
        let child = node.pointee.children[field]
        guard let fallback = node.pointee.defaults[field] else {
            let expected = nodes[child].kind == .union ? "one of the union's branches " + list(nodes[child].names) : nodes[child].name
            throw SchemaMismatch(path: step, expected: expected, found: "nothing: the member is missing and the field has no default")
        }
        let (savedText, savedPosition) = (text, position)
        defer { (text, position) = (savedText, savedPosition) }
        do throws(SchemaMismatch) {
            try fallback.withUnsafeBufferPointer { buffer throws(SchemaMismatch) in
                text = UnsafeRawBufferPointer(buffer)
                position = 0
                if nodes[child].kind == .union {
                    out.varint(0)
                    try value(node: nodes[child].children[0], to: &out)
                } else {
                    try value(node: child, to: &out)
                }
            }
        } catch {
            throw error.inside(step)
        }
    }

    private mutating func union(_ node: UnsafePointer<AvroNode>, _ kind: JSONKind, to out: inout AvroBytes) throws(SchemaMismatch) {
        let branches = node.pointee.children
        if kind == .null, let index = branches.firstIndex(where: { nodes[$0].kind == .null }) {
            position += 4
            out.varint(Int64(index))
            return
        }
        let start = position
        let outStart = out.count
        // {"BRANCH": value}, as appendJSON writes it: one member, named for a branch.
        if kind == .object {
            position += 1
            skipWhitespace()
            let key = text[position] == UInt8(ascii: "\"") ? stringHere() : UnsafeRawBufferPointer(start: nil, count: 0)
            if !key.isEmpty, let index = nameIndex(ofLiteral: key, in: node.pointee.names), nodes[branches[index]].kind != .null {
                position += key.count
                skipWhitespace()
                position += 1   // ':'
                out.varint(Int64(index))
                do throws(SchemaMismatch) {
                    try value(node: branches[index], to: &out)
                    skipWhitespace()
                    if text[position] == UInt8(ascii: "}") {
                        position += 1
                        return
                    }
                } catch {
                    if memberCount(at: start) == 1 { throw error.inside(AvroBinaryWriter.memberStep(key)) }
                }
            }
            position = start
            out.count = outStart
        }
        // A bare value: the branch that takes it, if exactly one does.
        var fitting = 0
        var first = -1
        for index in 0..<branches.count where mayTake(branches[index], kind) {
            fitting += 1
            if first < 0 { first = index }
        }
        if fitting == 1 {
            out.varint(Int64(first))
            return try value(node: branches[first], to: &out)
        }
        let expected = "one of the union's branches " + list(node.pointee.names)
        guard fitting > 1 else { throw mismatch(expected, kind) }
        // Several records or maps may take an object: try each, and take the one that fits.
        if kind == .object {
            var taken = -1
            var count = 0
            for index in 0..<branches.count where mayTake(branches[index], kind) {
                if (try? value(node: branches[index], to: &out)) != nil {
                    count += 1
                    taken = index
                }
                position = start
                out.count = outStart
            }
            if count == 1 {
                out.varint(Int64(taken))
                return try value(node: branches[taken], to: &out)
            }
        }
        throw mismatch(expected + ", named as {\"BRANCH\": value} when more than one takes the value", kind)
    }

    /// Whether a bare value can be of the branch's type; for strings and numbers this looks
    /// at the value (an int's range, an enum's symbols, a fixed's size).
    private mutating func mayTake(_ index: Int, _ kind: JSONKind) -> Bool {
        let node = nodes + index
        switch node.pointee.kind {
        case .null: return kind == .null
        case .boolean: return kind == .bool
        case .int: return kind == .number && AvroBinaryWriter.integer(numberHere()).flatMap { Int32(exactly: $0) } != nil
        case .long: return kind == .number && AvroBinaryWriter.integer(numberHere()) != nil
        case .float, .double: return kind == .number
        case .string: return kind == .string
        case .bytes: return kind == .string && decodeCodePoints() != nil
        case .fixed: return kind == .string && decodeCodePoints() != nil && scratch.count == node.pointee.size
        case .enumeration: return kind == .string && nameIndex(ofLiteral: stringHere(), in: node.pointee.names) != nil
        case .array: return kind == .array
        case .map, .record: return kind == .object
        case .union: return false   // a union cannot hold a union directly
        }
    }

    // MARK: The text

    @inline(__always)
    private mutating func skipWhitespace() {
        while position < text.count {
            switch text[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    /// The kind of the value at `position` (validated text: its first byte says).
    private func kindHere() -> JSONKind {
        guard position < text.count else { return .null }
        switch text[position] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        default: return .number
        }
    }

    /// The string literal at `position`, quotes included. A byte loop: the strings of a
    /// record (keys, symbols, short values) are shorter than a call to memchr costs.
    private func stringHere() -> UnsafeRawBufferPointer {
        let start = text.baseAddress!.assumingMemoryBound(to: UInt8.self) + position
        let end = text.baseAddress!.assumingMemoryBound(to: UInt8.self) + text.count
        // memchr to each quote, then the backslashes before it: escaped when they are odd.
        // Short keys cost a call; the long values that dominate a line cost 1/16 a byte.
        var cursor = start + 1
        while cursor < end, let found = memchr(cursor, Int32(UInt8(ascii: "\"")), end - cursor) {
            let quote = UnsafePointer(found.assumingMemoryBound(to: UInt8.self))
            var back = quote - 1
            while back > start && back.pointee == UInt8(ascii: "\\") { back -= 1 }
            if (quote - 1 - back) & 1 == 0 { return UnsafeRawBufferPointer(start: start, count: quote + 1 - start) }
            cursor = quote + 1
        }
        return UnsafeRawBufferPointer(start: start, count: text.count - position)
    }

    /// The number literal at `position`.
    private func numberHere() -> UnsafeRawBufferPointer {
        var end = position
        while end < text.count {
            switch text[end] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."),
                 UInt8(ascii: "e"), UInt8(ascii: "E"):
                end += 1
            default:
                return UnsafeRawBufferPointer(rebasing: text[position..<end])
            }
        }
        return UnsafeRawBufferPointer(rebasing: text[position..<end])
    }

    /// The whole value at `position`, for a message.
    private func valueHere() -> UnsafeRawBufferPointer {
        let rest = UnsafeRawBufferPointer(rebasing: text[position...])
        return UnsafeRawBufferPointer(rebasing: rest[JSON.trimmedValue(rest).range])
    }

    /// How many members the object at `start` has.
    private func memberCount(at start: Int) -> Int {
        let rest = UnsafeRawBufferPointer(rebasing: text[start...])
        var count = 0
        JSON.forEachMember(ofObject: UnsafeRawBufferPointer(rebasing: rest[JSON.trimmedValue(rest).range])) { _, _, _ in count += 1 }
        return count
    }

    /// The string at `position` as Avro writes one: its length, then its UTF-8; `position`
    /// moves past it.
    private mutating func appendString(to out: inout AvroBytes) {
        let literal = stringHere()
        position += literal.count
        let inner = UnsafeRawBufferPointer(rebasing: literal[1..<(literal.count - 1)])
        if inner.isEmpty || memchr(inner.baseAddress!, Int32(UInt8(ascii: "\\")), inner.count) == nil {
            out.varint(Int64(inner.count))
            out.bytes(inner)
        } else {
            scratch.removeAll(keepingCapacity: true)
            JSON.appendUnescaped(stringLiteral: literal, to: &scratch)
            out.varint(Int64(scratch.count))
            scratch.withUnsafeBytes { out.bytes($0) }
        }
    }

    /// Puts the bytes the string of code points 0–255 at `position` stands for into
    /// `scratch`, and says how long its literal is; nil when it holds a code point above 255.
    private mutating func decodeCodePoints() -> Int? {
        let literal = stringHere()
        scratch.removeAll(keepingCapacity: true)
        JSON.appendUnescaped(stringLiteral: literal, to: &scratch)
        var written = 0
        var index = 0
        let count = scratch.count
        while index < count {
            let byte = scratch[index]
            if byte < 0x80 {
                scratch[written] = byte
                index += 1
            } else if (byte == 0xC2 || byte == 0xC3) && index + 1 < count {
                scratch[written] = (byte & 0x03) << 6 | (scratch[index + 1] & 0x3F)
                index += 2
            } else {
                return nil
            }
            written += 1
        }
        scratch.removeLast(count - written)
        return literal.count
    }

    /// The number at `position` as a double (a float's range checked), or the strings
    /// appendJSON writes for NaN and the infinities; `position` moves past it.
    private mutating func floatingPoint(_ kind: JSONKind, single: Bool) -> Double? {
        if kind == .string {
            let literal = stringHere()
            let value: Double
            switch String(decoding: literal, as: UTF8.self) {
            case "\"NaN\"": value = .nan
            case "\"Infinity\"": value = .infinity
            case "\"-Infinity\"": value = -.infinity
            default: return nil
            }
            position += literal.count
            return value
        }
        guard kind == .number else { return nil }
        let literal = numberHere()
        // A float rounds once, straight from the decimal text, as the peers do.
        let number = single ? Double(DecimalFloatingPoint.float(literal)) : DecimalFloatingPoint.double(literal)
        guard number.isFinite else { return nil }
        position += literal.count
        return number
    }

    /// The index of the name a string literal (quotes included) spells, trying `first` first.
    /// Names hold no quote or backslash, so a literal with an escape is unescaped first.
    private mutating func nameIndex(ofLiteral literal: UnsafeRawBufferPointer, in names: [[UInt8]], first: Int = 0) -> Int? {
        let inner = UnsafeRawBufferPointer(rebasing: literal[1..<(literal.count - 1)])
        if first < names.count && AvroBinaryWriter.equal(names[first], inner) { return first }
        if !inner.isEmpty && memchr(inner.baseAddress!, Int32(UInt8(ascii: "\\")), inner.count) != nil {
            scratch.removeAll(keepingCapacity: true)
            JSON.appendUnescaped(stringLiteral: literal, to: &scratch)
            return scratch.withUnsafeBytes { unescaped in names.firstIndex { AvroBinaryWriter.equal($0, unescaped) } }
        }
        return names.firstIndex { AvroBinaryWriter.equal($0, inner) }
    }

    @inline(__always)
    private static func equal(_ name: [UInt8], _ text: UnsafeRawBufferPointer) -> Bool {
        guard name.count == text.count else { return false }
        return name.withUnsafeBufferPointer { name in
            for index in 0..<name.count where name[index] != text[index] { return false }
            return true
        }
    }

    // MARK: Numbers and messages

    /// The value of an integer literal (no fraction, no exponent) that fits a long.
    static func integer(_ json: UnsafeRawBufferPointer) -> Int64? {
        guard let first = json.first else { return nil }
        let negative = first == UInt8(ascii: "-")
        var index = negative ? 1 : 0
        guard index < json.count else { return nil }
        var value: Int64 = 0
        while index < json.count {
            let digit = json[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
            let (next, carry) = negative ? shifted.subtractingReportingOverflow(Int64(digit)) : shifted.addingReportingOverflow(Int64(digit))
            guard !overflow && !carry else { return nil }
            value = next
            index += 1
        }
        return value
    }

    static func isIntegerLiteral(_ json: UnsafeRawBufferPointer) -> Bool {
        !json.contains(UInt8(ascii: ".")) && !json.contains(UInt8(ascii: "e")) && !json.contains(UInt8(ascii: "E"))
    }

    /// `.name` (or `."odd name"`) for a key literal, quotes included.
    static func memberStep(_ literal: UnsafeRawBufferPointer) -> String {
        var name: [UInt8] = []
        JSON.appendUnescaped(stringLiteral: literal, to: &name)
        return SchemaMismatch.member(String(decoding: name, as: UTF8.self), of: ".")
    }

    /// The value at `position` does not fit: `expected` names what would have.
    private func mismatch(_ expected: String, _ kind: JSONKind) -> SchemaMismatch {
        SchemaMismatch(path: ".", expected: expected, found: AvroBinaryWriter.describe(valueHere(), kind))
    }

    private func list(_ names: [[UInt8]]) -> String {
        names.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ", ")
    }

    /// A value as a message shows it: short literals as they are, long ones cut, containers by kind.
    static func describe(_ json: UnsafeRawBufferPointer, _ kind: JSONKind) -> String {
        switch kind {
        case .object: return "an object"
        case .array: return "an array"
        default:
            guard json.count > 40 else { return String(decoding: json, as: UTF8.self) }
            var end = 36
            while end > 0 && json[end] & 0xC0 == 0x80 { end -= 1 }   // not inside a UTF-8 sequence
            return String(decoding: json[..<end], as: UTF8.self) + "…" + (kind == .string ? "\"" : "")
        }
    }
}

private extension SchemaMismatch {
    /// The same mismatch seen from one level up: `step` (`.name`, `[2]`) goes before its path.
    func inside(_ step: String) -> SchemaMismatch {
        var outer = self
        outer.path = step + (path == "." ? "" : path)
        return outer
    }
}

/// A JSON number's text as the nearest double or float, exactly what strtod and strtof give
/// (round to nearest, ties to even), at a fraction of their cost for the short numbers events
/// hold: ~170 and ~300 instructions a call went to strtod and strtof, most in setting up for
/// any length of text.
///
/// The fast path is Clinger's: when the text's digits, leading zeros dropped, make an integer
/// the type holds exactly (up to 2^53 for a double, 2^24 for a float) and the power of ten
/// that scales it is exact too (10^22 for a double, 10^10 for a float), one multiplication or
/// division of two exact values rounds once, as strtod does. Anything else (more digits,
/// larger exponents, denormals, overflow) goes to strtod or strtof.
enum DecimalFloatingPoint {
    /// The text of a number JSON allows (validated), as a double; infinite past its range.
    static func double(_ literal: UnsafeRawBufferPointer) -> Double {
        if let (negative, digits, exponent) = decompose(literal) {
            if digits == 0 { return negative ? -0.0 : 0.0 }
            if digits <= 1 << 53 && (-22...22).contains(exponent) {
                var power = 1.0
                for _ in 0..<exponent.magnitude { power *= 10 }   // 10^k for k <= 22 is exact
                let magnitude = exponent < 0 ? Double(digits) / power : Double(digits) * power
                return negative ? -magnitude : magnitude
            }
        }
        return withTerminatedCopy(literal) { strtod($0, nil) }
    }

    /// The same as a float, rounded once from the text (not through a double).
    static func float(_ literal: UnsafeRawBufferPointer) -> Float {
        if let (negative, digits, exponent) = decompose(literal) {
            if digits == 0 { return negative ? -0.0 : 0.0 }
            if digits <= 1 << 24 && (-10...10).contains(exponent) {
                var power: Float = 1
                for _ in 0..<exponent.magnitude { power *= 10 }   // 10^k for k <= 10 is exact
                let magnitude = exponent < 0 ? Float(digits) / power : Float(digits) * power
                return negative ? -magnitude : magnitude
            }
        }
        return withTerminatedCopy(literal) { strtof($0, nil) }
    }

    /// The number as ±digits × 10^exponent, its digits without leading zeros; nil when they
    /// are more than 19 (a UInt64 may not hold them).
    private static func decompose(_ literal: UnsafeRawBufferPointer) -> (negative: Bool, digits: UInt64, exponent: Int)? {
        var index = 0
        let count = literal.count
        let negative = count > 0 && literal[0] == UInt8(ascii: "-")
        if negative { index += 1 }
        var digits: UInt64 = 0
        var digitCount = 0
        var exponent = 0
        var inFraction = false
        while index < count {
            let byte = literal[index]
            if byte == UInt8(ascii: ".") {
                inFraction = true
            } else {
                let digit = byte &- UInt8(ascii: "0")
                guard digit < 10 else { break }
                if digits != 0 || digit != 0 {
                    guard digitCount < 19 else { return nil }
                    digits = digits &* 10 &+ UInt64(digit)
                    digitCount += 1
                }
                if inFraction { exponent -= 1 }
            }
            index += 1
        }
        if index < count {   // 'e' or 'E', an optional sign, digits
            index += 1
            let negativeExponent = literal[index] == UInt8(ascii: "-")
            if negativeExponent || literal[index] == UInt8(ascii: "+") { index += 1 }
            var written = 0
            while index < count {
                // Past a million the fast path is out of reach either way: stop before overflow.
                if written < 1_000_000 { written = written * 10 + Int(literal[index] &- UInt8(ascii: "0")) }
                index += 1
            }
            exponent += negativeExponent ? -written : written
        }
        return (negative, digits, exponent)
    }

    private static func withTerminatedCopy<T>(_ literal: UnsafeRawBufferPointer, _ body: (UnsafePointer<CChar>) -> T) -> T {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: literal.count + 1) { copy in
            literal.withMemoryRebound(to: CChar.self) { source in
                _ = copy.initialize(fromContentsOf: source)
            }
            copy[literal.count] = 0
            return body(copy.baseAddress!)
        }
    }
}
