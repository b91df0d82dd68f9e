internal import CAvro
#if canImport(Glibc)
import Glibc
#endif

extension AvroSchema {
    /// Encodes one JSON value, validated JSON text as every line evt reads is, and appends its
    /// Avro binary encoding (no framing) to `out`.
    ///
    /// It takes what `appendJSON` writes, and natural JSON from other tools: a union may be a
    /// bare value when exactly one of its branches takes it; an integer fits int (in range)
    /// and long, any number float and double (and `"NaN"`, `"Infinity"`, `"-Infinity"` too). A
    /// record's missing member takes the field's default. What does not fit throws the
    /// mismatch, with its path: a member the record has no field for, a missing field with no
    /// default, a symbol the enum lacks, an int out of range; `out` is then as it was.
    func encode(json: UnsafeRawBufferPointer, appendingTo out: inout [UInt8]) throws(SchemaMismatch) {
        _ = evt_avro_reset(&value)
        let (range, kind) = JSON.trimmedValue(json)
        var builder = AvroValueBuilder(nodes: nodes, scratch: scratch)
        scratch = []
        defer { scratch = builder.scratch }
        do throws(SchemaMismatch) {
            try withUnsafeMutablePointer(to: &value) { value throws(SchemaMismatch) in
                try builder.set(value, node: 0, json: UnsafeRawBufferPointer(rebasing: json[range]), kind: kind)
            }
        } catch {
            var mismatch = error
            if mismatch.path.hasPrefix("[") { mismatch.path = "." + mismatch.path }
            throw mismatch
        }
        try write(appendingTo: &out)
    }

    /// Writes the built value into `writeBuffer`, grown to the value's size when it does not
    /// fit, and appends the bytes to `out`.
    private func write(appendingTo out: inout [UInt8]) throws(SchemaMismatch) {
        for attempt in 0..<2 {
            avro_writer_memory_set_dest(writer, writeBuffer.baseAddress!.assumingMemoryBound(to: CChar.self), Int64(writeBuffer.count))
            if avro_value_write(writer, &value) == 0 {
                out.append(contentsOf: UnsafeRawBufferPointer(start: writeBuffer.baseAddress, count: Int(avro_writer_tell(writer))))
                return
            }
            var size = 0
            guard attempt == 0, avro_value_sizeof(&value, &size) == 0 else { break }
            writeBuffer.deallocate()
            writeBuffer = .allocate(byteCount: max(size, writeBuffer.count * 2), alignment: 8)
        }
        let reason = avro_strerror().map { String(cString: $0) } ?? "no reason given"
        throw SchemaMismatch(path: ".", expected: "a value libavro can write", found: "one it could not (\(reason))")
    }
}

/// Builds libavro's value from JSON text, walking the text beside the schema's node table.
private struct AvroValueBuilder {
    let nodes: [AvroNode]
    /// Decoded strings, keys and bytes, each used only until libavro has copied it.
    var scratch: [UInt8]

    mutating func set(_ value: UnsafeMutablePointer<avro_value_t>, node index: Int,
                      json: UnsafeRawBufferPointer, kind: JSONKind) throws(SchemaMismatch) {
        let node = nodes[index]
        switch node.kind {
        case .null:
            guard kind == .null else { throw mismatch("null", json, kind) }
            _ = evt_avro_set_null(value)
        case .boolean:
            guard kind == .bool else { throw mismatch("boolean", json, kind) }
            _ = evt_avro_set_boolean(value, json[0] == UInt8(ascii: "t") ? 1 : 0)
        case .int:
            guard kind == .number, let number = AvroValueBuilder.integer(json) else {
                throw mismatch(AvroValueBuilder.isIntegerLiteral(json) ? "int (-2147483648 to 2147483647)" : "int", json, kind)
            }
            guard let small = Int32(exactly: number) else { throw mismatch("int (-2147483648 to 2147483647)", json, kind) }
            _ = evt_avro_set_int(value, small)
        case .long:
            guard kind == .number, let number = AvroValueBuilder.integer(json) else {
                throw mismatch(AvroValueBuilder.isIntegerLiteral(json) ? "long (-9223372036854775808 to 9223372036854775807)" : "long", json, kind)
            }
            _ = evt_avro_set_long(value, number)
        case .float:
            guard let number = floatingPoint(json, kind, single: true) else { throw mismatch("float", json, kind) }
            _ = evt_avro_set_float(value, Float(number))
        case .double:
            guard let number = floatingPoint(json, kind, single: false) else { throw mismatch("double", json, kind) }
            _ = evt_avro_set_double(value, number)
        case .string:
            guard kind == .string else { throw mismatch("string", json, kind) }
            scratch.removeAll(keepingCapacity: true)
            JSON.appendUnescaped(stringLiteral: json, to: &scratch)
            let length = scratch.count
            scratch.append(0)
            _ = scratch.withUnsafeBytes { evt_avro_set_string_len(value, $0.baseAddress!.assumingMemoryBound(to: CChar.self), length + 1) }
        case .bytes:
            guard kind == .string, decodeCodePoints(json) else { throw mismatch("bytes (a string of code points 0-255)", json, kind) }
            _ = scratch.withUnsafeMutableBytes { evt_avro_set_bytes(value, $0.baseAddress, $0.count) }
        case .fixed:
            guard kind == .string, decodeCodePoints(json), scratch.count == node.size else {
                throw mismatch("\(node.name) (\(node.size) bytes as a string of code points 0-255)", json, kind)
            }
            _ = scratch.withUnsafeMutableBytes { evt_avro_set_fixed(value, $0.baseAddress, $0.count) }
        case .enumeration:
            guard kind == .string, let symbol = nameIndex(ofLiteral: json, in: node.names) else {
                throw mismatch("one of the enum's symbols " + list(node.names), json, kind)
            }
            _ = evt_avro_set_enum(value, Int32(symbol))
        case .array:
            guard kind == .array else { throw mismatch("an array", json, kind) }
            _ = evt_avro_reset(value)
            let items = node.children[0]
            var item = avro_value_t()
            var position = 0
            try JSON.forEachElement(ofArray: json) { range, kind throws(SchemaMismatch) in
                _ = evt_avro_append(value, &item)
                do throws(SchemaMismatch) {
                    try set(&item, node: items, json: UnsafeRawBufferPointer(rebasing: json[range]), kind: kind)
                } catch {
                    throw error.inside("[\(position)]")
                }
                position += 1
            }
        case .map:
            guard kind == .object else { throw mismatch("a map (an object)", json, kind) }
            _ = evt_avro_reset(value)
            let values = node.children[0]
            var entry = avro_value_t()
            try JSON.forEachMember(ofObject: json) { keyRange, range, kind throws(SchemaMismatch) in
                scratch.removeAll(keepingCapacity: true)
                JSON.appendUnescaped(stringLiteral: UnsafeRawBufferPointer(rebasing: json[keyRange]), to: &scratch)
                scratch.append(0)
                _ = scratch.withUnsafeBytes { evt_avro_add(value, $0.baseAddress!.assumingMemoryBound(to: CChar.self), &entry) }
                do throws(SchemaMismatch) {
                    try set(&entry, node: values, json: UnsafeRawBufferPointer(rebasing: json[range]), kind: kind)
                } catch {
                    throw error.inside(AvroValueBuilder.memberStep(UnsafeRawBufferPointer(rebasing: json[keyRange])))
                }
            }
        case .record:
            guard kind == .object else { throw mismatch("a \(node.name) record (an object)", json, kind) }
            try setRecord(value, node, json)
        case .union:
            try setUnion(value, node, json, kind)
        }
    }

    private mutating func setRecord(_ value: UnsafeMutablePointer<avro_value_t>, _ node: AvroNode,
                                     _ json: UnsafeRawBufferPointer) throws(SchemaMismatch) {
        let fieldCount = node.children.count
        // Which fields the object gave: bits for the usual record, an array past 64 fields.
        var seenBits: UInt64 = 0
        var seenMore = fieldCount > 64 ? [Bool](repeating: false, count: fieldCount) : []
        var field = avro_value_t()
        var position = 0
        try JSON.forEachMember(ofObject: json) { keyRange, range, kind throws(SchemaMismatch) in
            let key = UnsafeRawBufferPointer(rebasing: json[keyRange])
            // Members usually come in field order: try the field at this position first.
            guard let index = nameIndex(ofLiteral: key, in: node.names, first: position) else {
                throw SchemaMismatch(path: AvroValueBuilder.memberStep(key), expected: "no member here: \(node.name) has no field of that name",
                                     found: AvroValueBuilder.describe(UnsafeRawBufferPointer(rebasing: json[range]), kind))
            }
            position += 1
            let seen = index < 64 ? seenBits & (1 << UInt64(index)) != 0 : seenMore[index]
            guard !seen else {
                throw SchemaMismatch(path: AvroValueBuilder.memberStep(key), expected: "one member of that name", found: "a second one")
            }
            if index < 64 { seenBits |= 1 << UInt64(index) } else { seenMore[index] = true }
            _ = evt_avro_get_by_index(value, index, &field, nil)
            do throws(SchemaMismatch) {
                try set(&field, node: node.children[index], json: UnsafeRawBufferPointer(rebasing: json[range]), kind: kind)
            } catch {
                throw error.inside(AvroValueBuilder.memberStep(key))
            }
        }
        if position == fieldCount { return }
        for index in 0..<fieldCount {
            let seen = index < 64 ? seenBits & (1 << UInt64(index)) != 0 : seenMore[index]
            if seen { continue }
            let step = SchemaMismatch.member(String(decoding: node.names[index], as: UTF8.self), of: ".")
            guard let fallback = node.defaults[index] else {
                throw SchemaMismatch(path: step, expected: describe(node: node.children[index]),
                                     found: "nothing: the member is missing and the field has no default")
            }
            _ = evt_avro_get_by_index(value, index, &field, nil)
            do throws(SchemaMismatch) {
                try fallback.withUnsafeBufferPointer { buffer throws(SchemaMismatch) in
                    let text = UnsafeRawBufferPointer(buffer)
                    let (range, kind) = JSON.trimmedValue(text)
                    try setDefault(&field, node: node.children[index], json: UnsafeRawBufferPointer(rebasing: text[range]), kind: kind)
                }
            } catch {
                throw error.inside(step)
            }
        }
    }

    /// A field's default: for a union, a value of its first branch (the Avro specification's rule).
    private mutating func setDefault(_ value: UnsafeMutablePointer<avro_value_t>, node index: Int,
                                     json: UnsafeRawBufferPointer, kind: JSONKind) throws(SchemaMismatch) {
        guard nodes[index].kind == .union else { return try set(value, node: index, json: json, kind: kind) }
        var branch = avro_value_t()
        _ = evt_avro_set_branch(value, 0, &branch)
        try set(&branch, node: nodes[index].children[0], json: json, kind: kind)
    }

    private mutating func setUnion(_ value: UnsafeMutablePointer<avro_value_t>, _ node: AvroNode,
                                   _ json: UnsafeRawBufferPointer, _ kind: JSONKind) throws(SchemaMismatch) {
        var branch = avro_value_t()
        // {"BRANCH": value}, as appendJSON writes it.
        if kind == .object, let (index, key, range, innerKind) = taggedBranch(json, node) {
            _ = evt_avro_set_branch(value, Int32(index), &branch)
            do throws(SchemaMismatch) {
                try set(&branch, node: node.children[index], json: UnsafeRawBufferPointer(rebasing: json[range]), kind: innerKind)
            } catch {
                throw error.inside(AvroValueBuilder.memberStep(key))
            }
            return
        }
        // A bare value: the branch that takes it, if exactly one does.
        var fitting = 0
        var first = -1
        for index in 0..<node.children.count where mayTake(node.children[index], json, kind) {
            fitting += 1
            if first < 0 { first = index }
        }
        if fitting == 1 {
            _ = evt_avro_set_branch(value, Int32(first), &branch)
            return try set(&branch, node: node.children[first], json: json, kind: kind)
        }
        let branches = "one of the union's branches " + list(node.names)
        guard fitting > 1 else { throw mismatch(branches, json, kind) }
        // Several records or maps may take an object: try each, and take the one that fits.
        if kind == .object {
            var taken = -1
            var count = 0
            for index in 0..<node.children.count where mayTake(node.children[index], json, kind) {
                _ = evt_avro_set_branch(value, Int32(index), &branch)
                if (try? set(&branch, node: node.children[index], json: json, kind: kind)) != nil {
                    count += 1
                    taken = index
                }
            }
            if count == 1 {
                _ = evt_avro_set_branch(value, Int32(taken), &branch)
                return try set(&branch, node: node.children[taken], json: json, kind: kind)
            }
        }
        throw mismatch(branches + ", named as {\"BRANCH\": value} when more than one takes the value", json, kind)
    }

    /// The branch an object of one member `{"BRANCH": value}` names: its index, the key's
    /// literal, the value's range in `json` and kind; nil for any other object.
    private mutating func taggedBranch(_ json: UnsafeRawBufferPointer, _ node: AvroNode) -> (Int, UnsafeRawBufferPointer, Range<Int>, JSONKind)? {
        var index = 1
        func skipWhitespace() {
            while index < json.count, json[index] == 0x20 || json[index] == 0x0A || json[index] == 0x0D || json[index] == 0x09 { index += 1 }
        }
        skipWhitespace()
        guard index < json.count, json[index] == UInt8(ascii: "\"") else { return nil }
        let keyStart = index
        index += 1
        while index < json.count, json[index] != UInt8(ascii: "\"") { index += json[index] == UInt8(ascii: "\\") ? 2 : 1 }
        index += 1
        let key = UnsafeRawBufferPointer(rebasing: json[keyStart..<index])
        guard let branch = nameIndex(ofLiteral: key, in: node.names), nodes[node.children[branch]].kind != .null else { return nil }
        skipWhitespace()
        index += 1   // ':'
        let rest = UnsafeRawBufferPointer(rebasing: json[index...])
        let (range, kind) = JSON.trimmedValue(rest)
        index += range.upperBound
        skipWhitespace()
        guard index < json.count, json[index] == UInt8(ascii: "}") else { return nil }
        let offset = json.count - rest.count
        return (branch, key, (range.lowerBound + offset)..<(range.upperBound + offset), kind)
    }

    /// Whether a bare value of this kind can be of the branch's type; for strings and numbers
    /// this looks at the value (an int's range, an enum's symbols, a fixed's size).
    private mutating func mayTake(_ index: Int, _ json: UnsafeRawBufferPointer, _ kind: JSONKind) -> Bool {
        let node = nodes[index]
        switch node.kind {
        case .null: return kind == .null
        case .boolean: return kind == .bool
        case .int: return kind == .number && AvroValueBuilder.integer(json).flatMap { Int32(exactly: $0) } != nil
        case .long: return kind == .number && AvroValueBuilder.integer(json) != nil
        case .float, .double: return kind == .number
        case .string: return kind == .string
        case .bytes: return kind == .string && decodeCodePoints(json)
        case .fixed: return kind == .string && decodeCodePoints(json) && scratch.count == node.size
        case .enumeration: return kind == .string && nameIndex(ofLiteral: json, in: node.names) != nil
        case .array: return kind == .array
        case .map, .record: return kind == .object
        case .union: return false   // a union cannot hold a union directly
        }
    }

    /// The index of the name a string literal (quotes included) spells, trying `first` first.
    private mutating func nameIndex(ofLiteral literal: UnsafeRawBufferPointer, in names: [[UInt8]], first: Int = 0) -> Int? {
        var text = UnsafeRawBufferPointer(rebasing: literal[1..<(literal.count - 1)])
        if memchr(text.baseAddress!, Int32(UInt8(ascii: "\\")), text.count) != nil {
            scratch.removeAll(keepingCapacity: true)
            JSON.appendUnescaped(stringLiteral: literal, to: &scratch)
            return scratch.withUnsafeBytes { unescaped in
                text = unescaped
                return AvroValueBuilder.find(text, in: names, first: first)
            }
        }
        return AvroValueBuilder.find(text, in: names, first: first)
    }

    private static func find(_ text: UnsafeRawBufferPointer, in names: [[UInt8]], first: Int) -> Int? {
        func matches(_ name: [UInt8]) -> Bool {
            name.count == text.count && name.withUnsafeBytes { memcmp($0.baseAddress!, text.baseAddress!, text.count) == 0 }
        }
        if first < names.count && matches(names[first]) { return first }
        return names.firstIndex(where: matches)
    }

    /// Puts the bytes a string of code points 0–255 stands for into `scratch`; false when it
    /// holds a code point above 255.
    private mutating func decodeCodePoints(_ literal: UnsafeRawBufferPointer) -> Bool {
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
                return false
            }
            written += 1
        }
        scratch.removeLast(count - written)
        return true
    }

    /// A JSON number as a double (a float's range checked), or the strings appendJSON writes
    /// for NaN and the infinities.
    private mutating func floatingPoint(_ json: UnsafeRawBufferPointer, _ kind: JSONKind, single: Bool) -> Double? {
        if kind == .string {
            switch String(decoding: json, as: UTF8.self) {
            case "\"NaN\"": return .nan
            case "\"Infinity\"": return .infinity
            case "\"-Infinity\"": return -.infinity
            default: return nil
            }
        }
        guard kind == .number else { return nil }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: json)
        scratch.append(0)
        // strtof for a float: rounding once, straight from the decimal text, as the peers do.
        let number = scratch.withUnsafeBytes { text in
            let start = text.baseAddress!.assumingMemoryBound(to: CChar.self)
            return single ? Double(strtof(start, nil)) : strtod(start, nil)
        }
        return number.isFinite ? number : nil
    }

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

    private func mismatch(_ expected: String, _ json: UnsafeRawBufferPointer, _ kind: JSONKind) -> SchemaMismatch {
        SchemaMismatch(path: ".", expected: expected, found: AvroValueBuilder.describe(json, kind))
    }

    /// A type in a message's words: `int`, `com.acme.Customer`, `one of the union's branches …`.
    private func describe(node index: Int) -> String {
        let node = nodes[index]
        return node.kind == .union ? "one of the union's branches " + list(node.names) : node.name
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
