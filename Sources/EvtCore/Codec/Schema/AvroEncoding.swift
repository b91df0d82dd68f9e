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
            try flat.nodes.withUnsafeBufferPointer { nodes throws(SchemaMismatch) in
                try flat.children.withUnsafeBufferPointer { children throws(SchemaMismatch) in
                    try flat.names.withUnsafeBufferPointer { names throws(SchemaMismatch) in
                        try flat.nameBytes.withUnsafeBufferPointer { nameBytes throws(SchemaMismatch) in
                            var writer = AvroBinaryWriter(schema: self, nodes: nodes, children: children, names: names,
                                                          nameBytes: UnsafeRawBufferPointer(nameBytes), text: json, scratch: scratch)
                            scratch = []
                            defer { scratch = writer.scratch }
                            try writer.value(node: 0, to: &bytes)
                        }
                    }
                }
            }
            out.append(contentsOf: UnsafeRawBufferPointer(start: bytes.base, count: bytes.count))
        } catch {
            var mismatch = error
            if mismatch.path.hasPrefix("[") { mismatch.path = "." + mismatch.path }
            throw mismatch
        }
    }
}

/// Parses JSON text beside the schema's flat tables and writes Avro's binary encoding.
///
/// The walk reads only plain numbers and bytes: reaching a node's arrays of names and children
/// through `AvroNode` retained and released each of them at every value, ~1 500 instructions
/// a line of the bench's Orders (callgrind). `AvroNode`'s strings serve messages only.
private struct AvroBinaryWriter {
    /// For messages: the names of types, fields and symbols as strings. The schema owns this
    /// writer's tables and outlives it.
    unowned(unsafe) let schema: AvroSchema
    let nodes: UnsafeBufferPointer<AvroFlatPlan.Node>
    let children: UnsafeBufferPointer<Int>
    let names: UnsafeBufferPointer<AvroFlatPlan.Name>
    let nameBytes: UnsafeRawBufferPointer
    /// The text being read (the value, or a field's default while that is written).
    var text: UnsafeRawBufferPointer
    var position = 0
    /// Unescaped strings and names on their way into the output or a comparison.
    var scratch: [UInt8]

    init(schema: AvroSchema, nodes: UnsafeBufferPointer<AvroFlatPlan.Node>, children: UnsafeBufferPointer<Int>,
         names: UnsafeBufferPointer<AvroFlatPlan.Name>, nameBytes: UnsafeRawBufferPointer, text: UnsafeRawBufferPointer, scratch: [UInt8]) {
        self.schema = schema
        self.nodes = nodes
        self.children = children
        self.names = names
        self.nameBytes = nameBytes
        self.text = text
        self.scratch = scratch
    }

    // MARK: Values

    mutating func value(node index: Int, to out: inout AvroBytes) throws(SchemaMismatch) {
        skipWhitespace()
        let node = nodes[index]
        let kind = kindHere()
        switch node.kind {
        case .null:
            guard kind == .null else { throw mismatch("null", kind) }
            position += 4
        case .boolean:
            guard kind == .bool else { throw mismatch("boolean", kind) }
            let isTrue = text[position] == UInt8(ascii: "t")
            out.byte(isTrue ? 1 : 0)
            position += isTrue ? 4 : 5
        case .int, .long:
            let isInt = node.kind == .int
            guard kind == .number else { throw mismatch(isInt ? "int" : "long", kind) }
            guard let (number, length) = integerHere(), !isInt || Int32(exactly: number) != nil else {
                let range = isInt ? "int (-2147483648 to 2147483647)" : "long (-9223372036854775808 to 9223372036854775807)"
                throw mismatch(AvroBinaryWriter.isIntegerLiteral(numberHere()) ? range : isInt ? "int" : "long", kind)
            }
            position += length
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
            let slot = out.count
            out.byte(0)   // the length's place, filled in once the bytes are written
            guard kind == .string, let length = appendCodePoints(to: &out) else { throw mismatch("bytes (a string of code points 0-255)", kind) }
            position += length
            out.setVarint(Int64(out.count - slot - 1), inSlotAt: slot)
        case .fixed:
            let start = out.count
            guard kind == .string, let length = appendCodePoints(to: &out), out.count - start == node.size else {
                throw mismatch("\(schema.nodes[index].name) (\(node.size) bytes as a string of code points 0-255)", kind)
            }
            position += length
        case .enumeration:
            guard kind == .string, let (symbol, length) = nameHere(of: node) else {
                throw mismatch("one of the enum's symbols " + list(index), kind)
            }
            position += length
            out.varint(Int64(symbol))
        case .array:
            guard kind == .array else { throw mismatch("an array", kind) }
            try block(of: children[node.childStart], isMap: false, to: &out)
        case .map:
            guard kind == .object else { throw mismatch("a map (an object)", kind) }
            try block(of: children[node.childStart], isMap: true, to: &out)
        case .record:
            guard kind == .object else { throw mismatch("a \(schema.nodes[index].name) record (an object)", kind) }
            try record(index, to: &out)
        case .union:
            try union(index, kind, to: &out)
        }
    }

    /// An array's elements or a map's members as one block: its count, the items, then 0 (an
    /// empty one is just the 0), as fastavro writes them.
    private mutating func block(of items: Int, isMap: Bool, to out: inout AvroBytes) throws(SchemaMismatch) {
        position += 1
        let slot = out.count
        out.byte(0)   // the count's place; an empty block's one 0 as it stands
        var count = 0
        let close = isMap ? UInt8(ascii: "}") : UInt8(ascii: "]")
        while true {
            skipWhitespace()
            if text[position] == close { break }
            if count > 0 {
                position += 1   // ','
                skipWhitespace()
            }
            if isMap {
                let key = appendString(to: &out)
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
            out.setVarint(Int64(count), inSlotAt: slot)
            out.byte(0)
        }
    }

    /// A record's fields in the schema's order. Members in that order are written as they
    /// come; a member out of order sends the record to `recordInAnyOrder`.
    private mutating func record(_ index: Int, to out: inout AvroBytes) throws(SchemaMismatch) {
        let node = nodes[index]
        let objectStart = position
        let outStart = out.count
        var next = 0
        position += 1
        while true {
            skipWhitespace()
            if text[position] == UInt8(ascii: "}") { break }
            if text[position] == UInt8(ascii: ",") {
                position += 1
                skipWhitespace()
            }
            guard let (field, keyLength) = nameHere(of: node, first: next) else {
                let key = stringHere().literal
                position += key.count
                skipWhitespace()
                position += 1
                skipWhitespace()
                throw SchemaMismatch(path: AvroBinaryWriter.memberStep(key), expected: "no member here: \(schema.nodes[index].name) has no field of that name",
                                     found: AvroBinaryWriter.describe(valueHere(), kindHere()))
            }
            let keyStart = position
            if field != next {
                guard field > next else {
                    throw SchemaMismatch(path: memberStep(keyStart, keyLength), expected: "one member of that name", found: "a second one")
                }
                out.count = outStart
                position = objectStart
                return try recordInAnyOrder(index, to: &out)
            }
            position += keyLength
            skipWhitespace()
            position += 1   // ':'
            do throws(SchemaMismatch) {
                try value(node: children[node.childStart + field], to: &out)
            } catch {
                throw error.inside(memberStep(keyStart, keyLength))
            }
            next += 1
        }
        position += 1
        for field in next..<node.childCount {
            try appendDefault(index, field: field, to: &out)
        }
    }

    /// A record whose members are not in field order: where each member's value starts, then
    /// the fields in order from there.
    private mutating func recordInAnyOrder(_ index: Int, to out: inout AvroBytes) throws(SchemaMismatch) {
        let node = nodes[index]
        var starts = [Int?](repeating: nil, count: node.childCount)
        let object = UnsafeRawBufferPointer(rebasing: text[position...])
        let (range, _) = JSON.trimmedValue(object)
        let base = position
        try JSON.forEachMember(ofObject: UnsafeRawBufferPointer(rebasing: object[range])) { keyRange, valueRange, kind throws(SchemaMismatch) in
            let key = UnsafeRawBufferPointer(rebasing: object[keyRange])
            guard let field = nameIndex(ofLiteral: key, in: node) else {
                throw SchemaMismatch(path: AvroBinaryWriter.memberStep(key), expected: "no member here: \(schema.nodes[index].name) has no field of that name",
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
                try appendDefault(index, field: field, to: &out)
                continue
            }
            position = start
            do throws(SchemaMismatch) {
                try value(node: children[node.childStart + field], to: &out)
            } catch {
                throw error.inside(fieldStep(index, field))
            }
        }
        position = end
    }

    /// A missing field's default, from the schema's text: for a union, a value of its first
    /// branch (the Avro specification's rule).
    private mutating func appendDefault(_ index: Int, field: Int, to out: inout AvroBytes) throws(SchemaMismatch) {
        let node = nodes[index]
        let child = children[node.childStart + field]
        guard let fallback = names[node.labelStart + field].defaultText else {
            let expected = nodes[child].kind == .union ? "one of the union's branches " + list(child) : schema.nodes[child].name
            throw SchemaMismatch(path: fieldStep(index, field), expected: expected, found: "nothing: the member is missing and the field has no default")
        }
        let (savedText, savedPosition) = (text, position)
        defer { (text, position) = (savedText, savedPosition) }
        text = UnsafeRawBufferPointer(rebasing: nameBytes[fallback])
        position = 0
        do throws(SchemaMismatch) {
            if nodes[child].kind == .union {
                out.varint(0)
                try value(node: children[nodes[child].childStart], to: &out)
            } else {
                try value(node: child, to: &out)
            }
        } catch {
            throw error.inside(fieldStep(index, field))
        }
    }

    private mutating func union(_ index: Int, _ kind: JSONKind, to out: inout AvroBytes) throws(SchemaMismatch) {
        let node = nodes[index]
        let branchCount = node.childCount
        @inline(__always) func branch(_ number: Int) -> Int { children[node.childStart + number] }
        if kind == .null {
            for number in 0..<branchCount where nodes[branch(number)].kind == .null {
                position += 4
                out.varint(Int64(number))
                return
            }
        }
        let start = position
        let outStart = out.count
        // {"BRANCH": value}, as appendJSON writes it: one member, named for a branch.
        if kind == .object {
            position += 1
            skipWhitespace()
            if text[position] == UInt8(ascii: "\""), let (number, keyLength) = nameHere(of: node), nodes[branch(number)].kind != .null {
                let key = UnsafeRawBufferPointer(rebasing: text[position..<(position + keyLength)])
                position += keyLength
                skipWhitespace()
                position += 1   // ':'
                out.varint(Int64(number))
                do throws(SchemaMismatch) {
                    try value(node: branch(number), to: &out)
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
        for number in 0..<branchCount where mayTake(branch(number), kind) {
            fitting += 1
            if first < 0 { first = number }
        }
        if fitting == 1 {
            out.varint(Int64(first))
            return try value(node: branch(first), to: &out)
        }
        let expected = "one of the union's branches " + list(index)
        guard fitting > 1 else { throw mismatch(expected, kind) }
        // Several records or maps may take an object: try each, and take the one that fits.
        if kind == .object {
            var taken = -1
            var count = 0
            for number in 0..<branchCount where mayTake(branch(number), kind) {
                if (try? value(node: branch(number), to: &out)) != nil {
                    count += 1
                    taken = number
                }
                position = start
                out.count = outStart
            }
            if count == 1 {
                out.varint(Int64(taken))
                return try value(node: branch(taken), to: &out)
            }
        }
        throw mismatch(expected + ", named as {\"BRANCH\": value} when more than one takes the value", kind)
    }

    /// Whether a bare value can be of the branch's type; for strings and numbers this looks
    /// at the value (an int's range, an enum's symbols, a fixed's size).
    private mutating func mayTake(_ index: Int, _ kind: JSONKind) -> Bool {
        let node = nodes[index]
        switch node.kind {
        case .null: return kind == .null
        case .boolean: return kind == .bool
        case .int, .long:
            guard kind == .number, let (number, _) = integerHere() else { return false }
            return node.kind == .long || Int32(exactly: number) != nil
        case .float, .double: return kind == .number
        case .string: return kind == .string
        case .bytes: return kind == .string && codePointsHere(into: nil) != nil
        case .fixed: return kind == .string && codePointsHere(into: nil)?.count == node.size
        case .enumeration: return kind == .string && nameHere(of: node) != nil
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
    @inline(__always)
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

    /// The string literal at `position`, quotes included, and whether it holds an escape.
    /// Eight bytes at a time to the closing quote or a backslash: a line's long values (notes,
    /// names) cost an eighth of a byte loop, and its short keys no call (memchr's cost more
    /// than the keys' bytes).
    private func stringHere() -> (literal: UnsafeRawBufferPointer, escaped: Bool) {
        let base = text.baseAddress!
        let count = text.count
        var index = position + 1
        var escaped = false
        while true {
            while count - index >= 8 {
                let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                let found = AvroBinaryWriter.quotesAndBackslashes(word)
                if found != 0 {
                    index += found.trailingZeroBitCount &>> 3
                    break
                }
                index += 8
            }
            guard index < count else { break }
            let byte = text[index]
            if byte == UInt8(ascii: "\"") {
                return (UnsafeRawBufferPointer(rebasing: text[position...index]), escaped)
            }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                index += 2
            } else {
                index += 1
            }
        }
        return (UnsafeRawBufferPointer(rebasing: text[position...]), escaped)
    }

    /// A mask with the high bit set in each byte of `word` that is '"' or '\\' (SWAR). Bytes
    /// above the first match may be flagged falsely (borrows carry upwards), but the lowest
    /// set bit marks the first one exactly.
    @inline(__always)
    private static func quotesAndBackslashes(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quotes = word ^ 0x2222_2222_2222_2222
        let backslashes = word ^ 0x5C5C_5C5C_5C5C_5C5C
        return ((quotes &- ones) & ~quotes | (backslashes &- ones) & ~backslashes) & highs
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

    /// The value of the integer literal at `position` (no fraction, no exponent) and its
    /// length, when it fits a long.
    private func integerHere() -> (value: Int64, length: Int)? {
        let count = text.count
        var end = position
        let negative = text[end] == UInt8(ascii: "-")
        if negative { end += 1 }
        let digitsStart = end
        var magnitude: UInt64 = 0
        while end < count {
            let digit = text[end] &- UInt8(ascii: "0")
            guard digit < 10 else { break }
            magnitude = magnitude &* 10 &+ UInt64(digit)
            end += 1
        }
        if end < count && (text[end] == UInt8(ascii: ".") || text[end] | 0x20 == UInt8(ascii: "e")) { return nil }
        // Up to 18 digits always fit; longer ones may not, and take the checked path.
        guard end - digitsStart <= 18 else {
            return AvroBinaryWriter.integer(UnsafeRawBufferPointer(rebasing: text[position..<end])).map { ($0, end - position) }
        }
        return (negative ? -Int64(magnitude) : Int64(magnitude), end - position)
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
    /// moves past it. Returns its literal.
    @discardableResult
    private mutating func appendString(to out: inout AvroBytes) -> UnsafeRawBufferPointer {
        let (literal, escaped) = stringHere()
        position += literal.count
        if !escaped {
            out.varint(Int64(literal.count - 2))
            out.bytes(UnsafeRawBufferPointer(rebasing: literal[1..<(literal.count - 1)]))
        } else {
            scratch.removeAll(keepingCapacity: true)
            JSON.appendUnescaped(stringLiteral: literal, to: &scratch)
            out.varint(Int64(scratch.count))
            scratch.withUnsafeBytes { out.bytes($0) }
        }
        return literal
    }

    /// Appends the bytes the string of code points 0–255 at `position` stands for, and says
    /// how long its literal is; nil when it holds a code point above 255 (`out` may then hold
    /// some of its bytes).
    private func appendCodePoints(to out: inout AvroBytes) -> Int? {
        out.reserve(text.count - position)   // never more bytes than the literal has
        guard let (length, count) = codePointsHere(into: out.base + out.count) else { return nil }
        out.count += count
        return length
    }

    /// Reads the string of code points 0–255 at `position` as the bytes it stands for, written
    /// to `destination` when there is one (room for the rest of the text): its literal's length
    /// and the bytes' count; nil when it holds a code point above 255. One pass, escapes and
    /// UTF-8 decoded straight to bytes: scanning for the literal's end first, then unescaping
    /// to UTF-8 in an array, then decoding that cost ~2 800 instructions a line of the bench's
    /// Orders.
    private func codePointsHere(into destination: UnsafeMutablePointer<UInt8>?) -> (length: Int, count: Int)? {
        var index = position + 1
        var count = 0
        while true {
            var byte = text[index]
            if byte == UInt8(ascii: "\"") { return (index + 1 - position, count) }
            if byte == UInt8(ascii: "\\") {
                let escaped = text[index + 1]
                index += 2
                switch escaped {
                case UInt8(ascii: "b"): byte = 0x08
                case UInt8(ascii: "f"): byte = 0x0C
                case UInt8(ascii: "n"): byte = 0x0A
                case UInt8(ascii: "r"): byte = 0x0D
                case UInt8(ascii: "t"): byte = 0x09
                case UInt8(ascii: "u"):
                    // A surrogate (a pair, or one alone) is above 255 too.
                    let scalar = JSON.hex4(text, at: index)
                    guard scalar <= 0xFF else { return nil }
                    byte = UInt8(scalar)
                    index += 4
                default: byte = escaped   // \" \\ \/
                }
            } else if byte < 0x80 {
                index += 1
            } else if byte == 0xC2 || byte == 0xC3 {   // U+0080–U+00FF in UTF-8 (valid: a continuation byte follows)
                byte = (byte & 0x03) << 6 | (text[index + 1] & 0x3F)
                index += 2
            } else {
                return nil
            }
            if let destination { destination[count] = byte }
            count += 1
        }
    }

    /// The number at `position` as a double (a float's range checked), or the strings
    /// appendJSON writes for NaN and the infinities; `position` moves past it.
    private mutating func floatingPoint(_ kind: JSONKind, single: Bool) -> Double? {
        if kind == .string {
            let literal = stringHere().literal
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
        let rest = UnsafeRawBufferPointer(rebasing: text[position...])
        // A float rounds once, straight from the decimal text, as the peers do.
        let number: Double
        let length: Int
        if single {
            let float = DecimalFloatingPoint.float(atStartOf: rest)
            (number, length) = (Double(float.value), float.length)
        } else {
            (number, length) = DecimalFloatingPoint.double(atStartOf: rest)
        }
        guard number.isFinite else { return nil }
        position += length
        return number
    }

    /// Which name of `node` (field, symbol, branch) the string literal at `position` spells,
    /// trying `first` first, and the literal's length. Each name is compared with the text in
    /// place: names hold no quote or backslash, so a quote right after a name's bytes closes
    /// the literal, and the literal needs no scan of its own. A literal with an escape is
    /// unescaped, then compared.
    @inline(__always)
    private mutating func nameHere(of node: AvroFlatPlan.Node, first: Int = 0) -> (index: Int, length: Int)? {
        if first < node.labelCount, let length = literalLength(spelling: node.labelStart + first) { return (first, length) }
        return anyNameHere(of: node)
    }

    /// The same, for a literal that is not name `first`: a member out of order, a symbol, a
    /// branch, or none of them.
    private mutating func anyNameHere(of node: AvroFlatPlan.Node) -> (index: Int, length: Int)? {
        for index in 0..<node.labelCount {
            if let length = literalLength(spelling: node.labelStart + index) { return (index, length) }
        }
        let (literal, escaped) = stringHere()
        guard escaped, let index = nameIndex(ofLiteral: literal, in: node) else { return nil }
        return (index, literal.count)
    }

    /// The length of the string literal at `position` when it is name `label`, in quotes and
    /// with no escape.
    @inline(__always)
    private func literalLength(spelling label: Int) -> Int? {
        let name = names[label].name
        let closingQuote = position + 1 + name.count
        guard closingQuote < text.count, text[closingQuote] == UInt8(ascii: "\""),
              name.isEmpty || AvroBinaryWriter.equal(text.baseAddress! + position + 1, nameBytes.baseAddress! + name.lowerBound, name.count) else { return nil }
        return name.count + 2
    }

    /// The index of the name of `node` that a string literal (quotes included) spells.
    private mutating func nameIndex(ofLiteral literal: UnsafeRawBufferPointer, in node: AvroFlatPlan.Node) -> Int? {
        scratch.removeAll(keepingCapacity: true)
        JSON.appendUnescaped(stringLiteral: literal, to: &scratch)
        return scratch.withUnsafeBytes { unescaped in
            (0..<node.labelCount).first { label in
                let name = names[node.labelStart + label].name
                return name.count == unescaped.count && (name.isEmpty || AvroBinaryWriter.equal(unescaped.baseAddress!, nameBytes.baseAddress! + name.lowerBound, name.count))
            }
        }
    }

    /// Whether `count` bytes at `a` and `b` are the same, in the fewest loads: names are
    /// short, and a call to memcmp costs more than comparing them.
    @inline(__always)
    private static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
        var offset = 0
        while count - offset >= 8 {
            guard a.loadUnaligned(fromByteOffset: offset, as: UInt64.self) == b.loadUnaligned(fromByteOffset: offset, as: UInt64.self) else { return false }
            offset += 8
        }
        if count - offset >= 4 {
            guard a.loadUnaligned(fromByteOffset: offset, as: UInt32.self) == b.loadUnaligned(fromByteOffset: offset, as: UInt32.self) else { return false }
            offset += 4
        }
        if count - offset >= 2 {
            guard a.loadUnaligned(fromByteOffset: offset, as: UInt16.self) == b.loadUnaligned(fromByteOffset: offset, as: UInt16.self) else { return false }
            offset += 2
        }
        return offset == count || a.load(fromByteOffset: offset, as: UInt8.self) == b.load(fromByteOffset: offset, as: UInt8.self)
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

    /// `.name` (or `."odd name"`) for the key literal of `length` bytes at `start`.
    private func memberStep(_ start: Int, _ length: Int) -> String {
        AvroBinaryWriter.memberStep(UnsafeRawBufferPointer(rebasing: text[start..<(start + length)]))
    }

    /// `.name` (or `."odd name"`) for a key literal, quotes included.
    static func memberStep(_ literal: UnsafeRawBufferPointer) -> String {
        var name: [UInt8] = []
        JSON.appendUnescaped(stringLiteral: literal, to: &name)
        return SchemaMismatch.member(String(decoding: name, as: UTF8.self), of: ".")
    }

    /// `.name` for field `field` of record node `index`.
    private func fieldStep(_ index: Int, _ field: Int) -> String {
        SchemaMismatch.member(String(decoding: schema.nodes[index].names[field], as: UTF8.self), of: ".")
    }

    /// The value at `position` does not fit: `expected` names what would have.
    private func mismatch(_ expected: String, _ kind: JSONKind) -> SchemaMismatch {
        SchemaMismatch(path: ".", expected: expected, found: AvroBinaryWriter.describe(valueHere(), kind))
    }

    /// Node `index`'s names (symbols, branches), for a message.
    private func list(_ index: Int) -> String {
        schema.nodes[index].names.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ", ")
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
    /// The number JSON allows (validated) that `text` starts with, as a double (infinite past
    /// its range), and the length of its text.
    static func double(atStartOf text: UnsafeRawBufferPointer) -> (value: Double, length: Int) {
        let number = decompose(text)
        if number.isExact {
            if number.digits == 0 { return (number.negative ? -0.0 : 0.0, number.length) }
            if number.digits <= 1 << 53 && (-22...22).contains(number.exponent) {
                var power = 1.0
                for _ in 0..<number.exponent.magnitude { power *= 10 }   // 10^k for k <= 22 is exact
                let magnitude = number.exponent < 0 ? Double(number.digits) / power : Double(number.digits) * power
                return (number.negative ? -magnitude : magnitude, number.length)
            }
        }
        return (withTerminatedCopy(text, number.length) { strtod($0, nil) }, number.length)
    }

    /// The same as a float, rounded once from the text (not through a double).
    static func float(atStartOf text: UnsafeRawBufferPointer) -> (value: Float, length: Int) {
        let number = decompose(text)
        if number.isExact {
            if number.digits == 0 { return (number.negative ? -0.0 : 0.0, number.length) }
            if number.digits <= 1 << 24 && (-10...10).contains(number.exponent) {
                var power: Float = 1
                for _ in 0..<number.exponent.magnitude { power *= 10 }   // 10^k for k <= 10 is exact
                let magnitude = number.exponent < 0 ? Float(number.digits) / power : Float(number.digits) * power
                return (number.negative ? -magnitude : magnitude, number.length)
            }
        }
        return (withTerminatedCopy(text, number.length) { strtof($0, nil) }, number.length)
    }

    /// The number at the start of `text` as ±digits × 10^exponent, its digits without leading
    /// zeros, and its text's length. Not exact when the digits are more than 19 (a UInt64 may
    /// not hold them) or the exponent is past a million (no fast path reaches it either way).
    private static func decompose(_ text: UnsafeRawBufferPointer) -> (negative: Bool, digits: UInt64, exponent: Int, length: Int, isExact: Bool) {
        var index = 0
        let count = text.count
        let negative = text[0] == UInt8(ascii: "-")
        if negative { index += 1 }
        var digits: UInt64 = 0
        var digitCount = 0
        var exponent = 0
        var isExact = true
        var inFraction = false
        while index < count {
            let byte = text[index]
            if byte == UInt8(ascii: ".") {
                inFraction = true
            } else {
                let digit = byte &- UInt8(ascii: "0")
                guard digit < 10 else { break }
                if digits != 0 || digit != 0 {
                    if digitCount < 19 {
                        digits = digits &* 10 &+ UInt64(digit)
                        digitCount += 1
                    } else {
                        isExact = false
                    }
                }
                if inFraction { exponent -= 1 }
            }
            index += 1
        }
        if index < count && text[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            let negativeExponent = text[index] == UInt8(ascii: "-")
            if negativeExponent || text[index] == UInt8(ascii: "+") { index += 1 }
            var written = 0
            while index < count {
                let digit = text[index] &- UInt8(ascii: "0")
                guard digit < 10 else { break }
                if written < 1_000_000 { written = written * 10 + Int(digit) } else { isExact = false }
                index += 1
            }
            exponent += negativeExponent ? -written : written
        }
        return (negative, digits, exponent, index, isExact)
    }

    private static func withTerminatedCopy<T>(_ text: UnsafeRawBufferPointer, _ length: Int, _ body: (UnsafePointer<CChar>) -> T) -> T {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { copy in
            UnsafeRawBufferPointer(rebasing: text[..<length]).withMemoryRebound(to: CChar.self) { source in
                _ = copy.initialize(fromContentsOf: source)
            }
            copy[length] = 0
            return body(copy.baseAddress!)
        }
    }
}
