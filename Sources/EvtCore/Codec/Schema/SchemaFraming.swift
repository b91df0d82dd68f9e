/// Confluent's framing of a key or value encoded with a registry's schema (CONTRACT.md,
/// "Schemas"): byte 0, the schema id as 4 bytes big-endian, then the payload (Avro binary, or
/// JSON text for JSON Schema).
enum SchemaFraming {
    static let headerSize = 5

    /// The schema id and the payload of framed `bytes`; nil when they are not framed.
    @inline(__always)
    static func unframe(_ bytes: UnsafeRawBufferPointer) -> (id: Int32, payload: UnsafeRawBufferPointer)? {
        guard bytes.count >= headerSize, bytes[0] == 0 else { return nil }
        let id = Int32(bitPattern: UInt32(bytes[1]) << 24 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 8 | UInt32(bytes[4]))
        guard id > 0 else { return nil }
        return (id, UnsafeRawBufferPointer(rebasing: bytes[headerSize...]))
    }

    /// Appends the frame's header for schema `id`; the payload goes after it.
    @inline(__always)
    static func appendHeader(id: Int32, to out: inout [UInt8]) {
        let id = UInt32(bitPattern: id)
        out.append(0)
        out.append(UInt8(truncatingIfNeeded: id >> 24))
        out.append(UInt8(truncatingIfNeeded: id >> 16))
        out.append(UInt8(truncatingIfNeeded: id >> 8))
        out.append(UInt8(truncatingIfNeeded: id))
    }
}
