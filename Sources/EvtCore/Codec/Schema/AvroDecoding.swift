#if canImport(Glibc)
import Glibc
#endif

extension AvroSchema {
    /// Decodes one Avro binary payload of this schema and appends the Avro specification's
    /// JSON encoding of it, as kafka-avro-console-consumer and fastavro's json_writer write it:
    /// records as objects in field order; an enum as its symbol; a union's null as `null` and
    /// any other branch as `{"BRANCH": value}` (a primitive's name, or a named type's full
    /// name); bytes and fixed as strings of the code points 0–255, one per byte; logical types
    /// (decimal, timestamp-millis, date, uuid, …) as their underlying type.
    ///
    /// Floats and doubles are JSON numbers, as short as reads back to the same value. JSON has
    /// no NaN or infinities: those become the strings `"NaN"`, `"Infinity"` and `"-Infinity"`
    /// (as Jackson writes them for the Java tools), which the encoder reads back.
    ///
    /// Returns false, with `out` as it was, when the payload does not decode: too short,
    /// bytes left over after the value, a branch or symbol the schema does not have, a string
    /// that is not UTF-8, a boolean byte other than 0 or 1, nesting past 512 levels, or arrays
    /// and maps counting more than 65 536 items beyond one per byte left (only items of no
    /// bytes, nulls or empty records, can: a payload of a few bytes must not print gigabytes).
    /// Printing those as raw bytes instead loses nothing.
    ///
    /// The payload is read here, not by libavro: libavro's generic value allocates twice per
    /// string and map key and reaches each value through its interface table, which cost
    /// ~36 000 instructions per record of the rich test schema (callgrind), where a tail of
    /// raw bytes costs a few thousand per record.
    func appendJSON(of payload: UnsafeRawBufferPointer, to out: inout [UInt8]) -> Bool {
        var writer = AvroJSONBytes(base: decodeBuffer, capacity: decodeCapacity)
        defer {
            decodeBuffer = writer.base
            decodeCapacity = writer.capacity
        }
        var reader = AvroBinaryReader(payload, placeholder: decodeBuffer)
        let decoded = flat.nodes.withUnsafeBufferPointer { nodes in
            flat.children.withUnsafeBufferPointer { children in
                flat.labelOffsets.withUnsafeBufferPointer { labelOffsets in
                    flat.labelBytes.withUnsafeBufferPointer { labelBytes in
                        let walk = AvroPayloadWalk(nodes: nodes.baseAddress!, children: children.baseAddress!,
                                                   labelOffsets: labelOffsets.baseAddress!, labelBytes: labelBytes.baseAddress!)
                        return walk.append(node: 0, depth: 0, from: &reader, to: &writer)
                    }
                }
            }
        }
        guard decoded, reader.position == reader.end else { return false }
        out.append(contentsOf: UnsafeRawBufferPointer(start: writer.base, count: writer.count))
        return true
    }
}

/// Avro's binary encoding read from a payload, every length checked against what is left.
private struct AvroBinaryReader {
    let base: UnsafePointer<UInt8>
    var position = 0
    let end: Int

    /// `placeholder` stands in for the address of an empty payload, which has none: no byte
    /// is read from it.
    init(_ payload: UnsafeRawBufferPointer, placeholder: UnsafePointer<UInt8>) {
        base = payload.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? placeholder
        end = payload.count
    }

    var remaining: Int { end - position }

    /// Items beyond one per byte left that blocks may still count: only items of no bytes
    /// (nulls, empty records) need it, and it keeps a few bytes from printing gigabytes.
    private var allowance = 1 << 16

    mutating func spend(allowance items: Int) -> Bool {
        guard items <= allowance else { return false }
        allowance -= items
        return true
    }

    /// A zigzag varint of at most 10 bytes.
    @inline(__always)
    mutating func long() -> Int64? {
        var raw: UInt64 = 0
        var shift: UInt64 = 0
        while position < end {
            let byte = base[position]
            position += 1
            raw |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1))) }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }

    /// The next `count` bytes.
    @inline(__always)
    mutating func take(_ count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, count <= end - position else { return nil }
        defer { position += count }
        return UnsafeRawBufferPointer(start: base + position, count: count)
    }

    /// A length, then that many bytes (bytes and strings).
    @inline(__always)
    mutating func lengthPrefixed() -> UnsafeRawBufferPointer? {
        guard let length = long(), length <= Int64(end - position) else { return nil }
        return take(Int(length))
    }
}

/// The JSON text of one record, built in a buffer the schema keeps: appends that inline to
/// stores, where each append to an Array checks its uniqueness and capacity (~4 000
/// instructions a record).
private struct AvroJSONBytes {
    var base: UnsafeMutablePointer<UInt8>
    var count = 0
    var capacity: Int

    init(base: UnsafeMutablePointer<UInt8>, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    @inline(__always)
    mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(extra) }
    }

    mutating func grow(_ extra: Int) {
        let bigger = max(capacity * 2, count + extra)
        let moved = UnsafeMutablePointer<UInt8>.allocate(capacity: bigger)
        moved.update(from: base, count: count)
        base.deallocate()
        base = moved
        capacity = bigger
    }

    @inline(__always)
    mutating func byte(_ value: UInt8) {
        reserve(1)
        base[count] = value
        count += 1
    }

    @inline(__always)
    mutating func bytes(_ start: UnsafePointer<UInt8>, _ length: Int) {
        reserve(length)
        (base + count).update(from: start, count: length)
        count += length
    }

    mutating func decimal(_ value: Int64) {
        reserve(20)
        var magnitude = value.magnitude
        if value < 0 {
            base[count] = UInt8(ascii: "-")
            count += 1
        }
        var digits = 1
        var rest = magnitude / 10
        while rest > 0 { digits += 1; rest /= 10 }
        var position = count + digits - 1
        repeat {
            base[position] = UInt8(ascii: "0") &+ UInt8(magnitude % 10)
            magnitude /= 10
            position -= 1
        } while magnitude > 0
        count += digits
    }

    /// A JSON string of UTF-8 `text` (already checked): runs of plain bytes copied whole.
    mutating func quoted(_ text: UnsafeRawBufferPointer) {
        reserve(text.count + 2)
        base[count] = UInt8(ascii: "\"")
        count += 1
        guard let start = text.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            byte(UInt8(ascii: "\""))
            return
        }
        var runStart = 0
        for index in 0..<text.count {
            let value = start[index]
            if value >= 0x20 && value != 0x22 && value != 0x5C { continue }
            bytes(start + runStart, index - runStart)
            escape(value)
            runStart = index + 1
        }
        bytes(start + runStart, text.count - runStart)
        byte(UInt8(ascii: "\""))
    }

    /// Bytes as a JSON string of the code points 0–255: ASCII as JSON quotes it, 0x80–0xFF as
    /// the UTF-8 of U+0080–U+00FF.
    mutating func codePoints(_ data: UnsafeRawBufferPointer) {
        reserve(data.count * 2 + 2)
        byte(UInt8(ascii: "\""))
        for value in data {
            if value >= 0x80 {
                reserve(2)
                base[count] = 0xC0 | (value >> 6)
                base[count + 1] = 0x80 | (value & 0x3F)
                count += 2
            } else if value >= 0x20 && value != 0x22 && value != 0x5C {
                byte(value)
            } else {
                escape(value)
            }
        }
        byte(UInt8(ascii: "\""))
    }

    /// A control character, quote or backslash, as JSON escapes it.
    mutating func escape(_ value: UInt8) {
        reserve(6)
        base[count] = UInt8(ascii: "\\")
        switch value {
        case 0x22, 0x5C: base[count + 1] = value
        case 0x0A: base[count + 1] = UInt8(ascii: "n")
        case 0x0D: base[count + 1] = UInt8(ascii: "r")
        case 0x09: base[count + 1] = UInt8(ascii: "t")
        case 0x08: base[count + 1] = UInt8(ascii: "b")
        case 0x0C: base[count + 1] = UInt8(ascii: "f")
        default:
            let hex: StaticString = "0123456789abcdef"
            base[count + 1] = UInt8(ascii: "u")
            base[count + 2] = UInt8(ascii: "0")
            base[count + 3] = UInt8(ascii: "0")
            base[count + 4] = hex.utf8Start[Int(value >> 4)]
            base[count + 5] = hex.utf8Start[Int(value & 0xF)]
            count += 6
            return
        }
        count += 2
    }

    /// A float or double, or the string that stands for NaN or an infinity.
    mutating func number(_ value: Double, single: Bool) {
        if value.isNaN {
            text("\"NaN\"")
        } else if value.isInfinite {
            text(value < 0 ? "\"-Infinity\"" : "\"Infinity\"")
        } else {
            // Swift's description is the shortest text that reads back to the same value (of
            // a Float, for a float); up to 15 bytes it is a small string, with no allocation.
            var description = single ? Float(value).description : value.description
            description.withUTF8 { bytes($0.baseAddress!, $0.count) }
        }
    }

    mutating func text(_ literal: StaticString) {
        bytes(literal.utf8Start, literal.utf8CodeUnitCount)
    }
}

/// The walk of a payload beside the flat node table.
private struct AvroPayloadWalk {
    let nodes: UnsafePointer<AvroFlatPlan.Node>
    let children: UnsafePointer<Int>
    let labelOffsets: UnsafePointer<Int>
    let labelBytes: UnsafePointer<UInt8>

    @inline(__always)
    func label(_ index: Int, to out: inout AvroJSONBytes) {
        out.bytes(labelBytes + labelOffsets[index], labelOffsets[index + 1] - labelOffsets[index])
    }

    func append(node index: Int, depth: Int, from payload: inout AvroBinaryReader, to out: inout AvroJSONBytes) -> Bool {
        let node = nodes[index]
        switch node.kind {
        case .null:
            out.text("null")
        case .boolean:
            guard let byte = payload.take(1)?.first, byte <= 1 else { return false }
            out.text(byte == 1 ? "true" : "false")
        case .int:
            guard let number = payload.long(), Int32(exactly: number) != nil else { return false }
            out.decimal(number)
        case .long:
            guard let number = payload.long() else { return false }
            out.decimal(number)
        case .float:
            guard let bytes = payload.take(4) else { return false }
            out.number(Double(Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(as: UInt32.self)))), single: true)
        case .double:
            guard let bytes = payload.take(8) else { return false }
            out.number(Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))), single: false)
        case .string:
            guard let text = payload.lengthPrefixed(), JSON.isValidUTF8(text) else { return false }
            out.quoted(text)
        case .bytes:
            guard let data = payload.lengthPrefixed() else { return false }
            out.codePoints(data)
        case .fixed:
            guard let data = payload.take(node.size) else { return false }
            out.codePoints(data)
        case .enumeration:
            guard let symbol = payload.long(), symbol >= 0, symbol < node.labelCount else { return false }
            label(node.labelStart + Int(symbol), to: &out)
        case .record:
            guard depth < JSON.maxDepth else { return false }
            out.byte(UInt8(ascii: "{"))
            for field in 0..<node.childCount {
                label(node.labelStart + field, to: &out)
                guard append(node: children[node.childStart + field], depth: depth + 1, from: &payload, to: &out) else { return false }
            }
            out.byte(UInt8(ascii: "}"))
        case .union:
            guard depth < JSON.maxDepth, let branch = payload.long(), branch >= 0, branch < node.childCount else { return false }
            let child = children[node.childStart + Int(branch)]
            label(node.labelStart + Int(branch), to: &out)
            if nodes[child].kind != .null {
                guard append(node: child, depth: depth + 1, from: &payload, to: &out) else { return false }
                out.byte(UInt8(ascii: "}"))
            }
        case .array, .map:
            guard depth < JSON.maxDepth else { return false }
            let isMap = node.kind == .map
            let items = children[node.childStart]
            out.byte(isMap ? UInt8(ascii: "{") : UInt8(ascii: "["))
            var first = true
            while true {
                guard var count = payload.long() else { return false }
                if count == 0 { break }
                if count < 0 {
                    // A negative count is followed by the block's size in bytes.
                    guard count != .min, payload.long() != nil else { return false }
                    count = -count
                }
                guard count <= payload.remaining || payload.spend(allowance: Int(count)) else { return false }
                for _ in 0..<Int(count) {
                    if !first { out.byte(UInt8(ascii: ",")) }
                    first = false
                    if isMap {
                        guard let key = payload.lengthPrefixed(), JSON.isValidUTF8(key) else { return false }
                        out.quoted(key)
                        out.byte(UInt8(ascii: ":"))
                    }
                    guard append(node: items, depth: depth + 1, from: &payload, to: &out) else { return false }
                }
            }
            out.byte(isMap ? UInt8(ascii: "}") : UInt8(ascii: "]"))
        }
        return true
    }
}
