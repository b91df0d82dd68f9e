#if canImport(Glibc)
import Glibc
#endif

/// Writing JSON text into an output byte buffer.
enum JSONOutput {
    enum PayloadName { case value, key }

    /// Bytes that need an escape inside a JSON string: control characters, `"` and `\`.
    private static let needsEscape: [Bool] = (0..<256).map { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// `bytes` (UTF-8) as a JSON string literal; runs of plain bytes are copied in one append.
    static func appendQuoted(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var runStart = 0
        var index = 0
        let count = bytes.count
        needsEscape.withUnsafeBufferPointer { needsEscape in
            while index < count {
                let byte = bytes[index]
                if !needsEscape[Int(byte)] { index += 1; continue }
                if index > runStart { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<index])) }
                out.append(UInt8(ascii: "\\"))
                switch byte {
                case 0x22: out.append(0x22)
                case 0x5C: out.append(0x5C)
                case 0x0A: out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "t"))
                case 0x08: out.append(UInt8(ascii: "b"))
                case 0x0C: out.append(UInt8(ascii: "f"))
                default:
                    out.append(contentsOf: [UInt8(ascii: "u"), 0x30, 0x30, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]])
                }
                index += 1
                runStart = index
            }
        }
        if count > runStart { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<count])) }
        out.append(UInt8(ascii: "\""))
    }

    /// The contract's payload rule, as one member without a leading comma:
    /// one compact JSON object, array, number, true or false is embedded as it is;
    /// other UTF-8 becomes a string (the four bytes `null` too, as `"null"`); other bytes
    /// `value_b64`/`key_b64`; nil (no value, no key: a Kafka tombstone) is null.
    static func appendPayload(_ bytes: UnsafeRawBufferPointer?, name: PayloadName, to out: inout [UInt8]) {
        out.append(contentsOf: name == .value ? valueLabel : keyLabel)
        guard let bytes else {
            out.append(contentsOf: nullText)
            return
        }
        if isEmbeddable(bytes) {
            out.append(contentsOf: bytes)
        } else if JSON.isValidUTF8(bytes) {
            appendQuoted(bytes, to: &out)
        } else {
            out.removeLast(name == .value ? valueLabel.count : keyLabel.count)
            out.append(contentsOf: name == .value ? valueB64Label : keyB64Label)
            out.append(UInt8(ascii: "\""))
            Base64.append(bytes, to: &out)
            out.append(UInt8(ascii: "\""))
        }
    }

    private static let valueLabel: [UInt8] = Array("\"value\":".utf8)
    private static let keyLabel: [UInt8] = Array("\"key\":".utf8)
    private static let valueB64Label: [UInt8] = Array("\"value_b64\":".utf8)
    private static let keyB64Label: [UInt8] = Array("\"key_b64\":".utf8)
    private static let nullText: [UInt8] = Array("null".utf8)

    /// One JSON value other than a string or null, with no whitespace around it and no raw
    /// CR/LF. The only such text that starts with `n` is exactly `null`, which must stay apart
    /// from an absent payload (written as null): it becomes the string `"null"` instead, so
    /// `n` is not a first byte here and the check costs nothing.
    static func isEmbeddable(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let first = bytes.first, let last = bytes.last else { return false }
        switch first {
        case UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "t"), UInt8(ascii: "f"):
            break
        default:
            return false
        }
        switch last {
        case 0x20, 0x09, 0x0A, 0x0D: return false
        default: break
        }
        guard (try? JSON.validate(bytes)) != nil else { return false }
        // Validated JSON holds raw CR/LF only as whitespace between tokens. memchr, not
        // Sequence.contains: that walked every payload byte by byte, twice (11 % of a channel
        // subscribe in callgrind).
        let start = bytes.baseAddress!
        return memchr(start, 0x0A, bytes.count) == nil && memchr(start, 0x0D, bytes.count) == nil
    }

    /// Stream field values and Kafka header values: a UTF-8 string, `{"b64":"…"}` for other
    /// bytes, null for nil.
    static func appendStringOrB64(_ bytes: UnsafeRawBufferPointer?, to out: inout [UInt8]) {
        guard let bytes else {
            out.append(contentsOf: nullText)
            return
        }
        if JSON.isValidUTF8(bytes) {
            appendQuoted(bytes, to: &out)
        } else {
            out.append(contentsOf: Array("{\"b64\":\"".utf8))
            Base64.append(bytes, to: &out)
            out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: "}")])
        }
    }

    /// Decimal digits without going through String.
    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value < 0 {
            out.append(UInt8(ascii: "-"))
            if value == Int.min {
                out.append(contentsOf: Array("9223372036854775808".utf8))
                return
            }
            appendDecimal(-value, to: &out)
            return
        }
        if value < 10 {
            out.append(UInt8(ascii: "0") &+ UInt8(value))
            return
        }
        var digits = 0
        var rest = value
        while rest > 0 { digits += 1; rest /= 10 }
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: digits))
        rest = value
        var position = start + digits - 1
        while rest > 0 {
            out[position] = UInt8(ascii: "0") &+ UInt8(rest % 10)
            rest /= 10
            position -= 1
        }
    }
}

/// One JSON object built member by member, for the few objects evt prints that are not
/// records (`evt lag`); strings go through the codec's quoting.
struct JSONObjectBuilder {
    private var bytes: [UInt8] = [UInt8(ascii: "{")]

    /// The object's text, with its closing brace.
    var closed: [UInt8] { bytes + [UInt8(ascii: "}")] }

    private mutating func key(_ name: String) {
        if bytes.count > 1 { bytes.append(UInt8(ascii: ",")) }
        appendString(name)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func string(_ name: String, _ value: String) {
        key(name)
        appendString(value)
    }

    /// A number, or `null` for nil.
    mutating func number(_ name: String, _ value: Int64?) {
        raw(name, value.map(String.init) ?? "null")
    }

    mutating func raw(_ name: String, _ json: String) {
        key(name)
        bytes += Array(json.utf8)
    }

    mutating func object(_ name: String, _ value: JSONObjectBuilder) {
        key(name)
        bytes += value.closed
    }

    mutating func array(_ name: String, _ items: [JSONObjectBuilder]) {
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (index, item) in items.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes += item.closed
        }
        bytes.append(UInt8(ascii: "]"))
    }

    private mutating func appendString(_ text: String) {
        var text = text
        text.withUTF8 { JSONOutput.appendQuoted(UnsafeRawBufferPointer($0), to: &bytes) }
    }
}
