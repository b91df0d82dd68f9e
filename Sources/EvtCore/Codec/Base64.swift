/// Standard base64 (RFC 4648, with padding) for `value_b64`, `key_b64` and `{"b64":…}`.
enum Base64 {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    static func append(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        var index = 0
        let count = bytes.count
        out.reserveCapacity(out.count + (count + 2) / 3 * 4)
        alphabet.withUnsafeBufferPointer { alphabet in
            while index + 3 <= count {
                let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
                out.append(alphabet[Int(chunk >> 18)])
                out.append(alphabet[Int((chunk >> 12) & 63)])
                out.append(alphabet[Int((chunk >> 6) & 63)])
                out.append(alphabet[Int(chunk & 63)])
                index += 3
            }
            let rest = count - index
            if rest == 1 {
                let chunk = UInt32(bytes[index]) << 16
                out.append(alphabet[Int(chunk >> 18)])
                out.append(alphabet[Int((chunk >> 12) & 63)])
                out.append(UInt8(ascii: "="))
                out.append(UInt8(ascii: "="))
            } else if rest == 2 {
                let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
                out.append(alphabet[Int(chunk >> 18)])
                out.append(alphabet[Int((chunk >> 12) & 63)])
                out.append(alphabet[Int((chunk >> 6) & 63)])
                out.append(UInt8(ascii: "="))
            }
        }
    }

    /// The decoded bytes, or nil for a length that is not a multiple of 4 or a bad character.
    static func decode(_ text: UnsafeRawBufferPointer) -> [UInt8]? {
        guard text.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(text.count / 4 * 3)
        var index = 0
        while index < text.count {
            var chunk: UInt32 = 0
            var padding = 0
            for offset in 0..<4 {
                let byte = text[index + offset]
                if byte == UInt8(ascii: "=") && index + 4 == text.count && offset >= 2 {
                    padding += 1
                    chunk <<= 6
                    continue
                }
                let value = decodeTable[Int(byte)]
                guard value != 0xFF, padding == 0 else { return nil }
                chunk = chunk << 6 | UInt32(value)
            }
            out.append(UInt8(chunk >> 16))
            if padding < 2 { out.append(UInt8((chunk >> 8) & 0xFF)) }
            if padding < 1 { out.append(UInt8(chunk & 0xFF)) }
            index += 4
        }
        return out
    }
}
