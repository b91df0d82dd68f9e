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
        var writer = AvroBytes(base: buffer, capacity: bufferCapacity)
        defer {
            buffer = writer.base
            bufferCapacity = writer.capacity
        }
        var reader = AvroBinaryReader(payload, placeholder: buffer)
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

/// The walk of a payload beside the flat node table.
private struct AvroPayloadWalk {
    let nodes: UnsafePointer<AvroFlatPlan.Node>
    let children: UnsafePointer<Int>
    let labelOffsets: UnsafePointer<Int>
    let labelBytes: UnsafePointer<UInt8>

    @inline(__always)
    func label(_ index: Int, to out: inout AvroBytes) {
        out.bytes(labelBytes + labelOffsets[index], labelOffsets[index + 1] - labelOffsets[index])
    }

    func append(node index: Int, depth: Int, from payload: inout AvroBinaryReader, to out: inout AvroBytes) -> Bool {
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
