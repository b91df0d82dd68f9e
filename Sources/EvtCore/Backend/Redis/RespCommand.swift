/// Builds Redis commands in RESP form straight into a reusable byte buffer, so a pipeline of
/// thousands of XADDs is one buffer and one write(2) — what redis-cli --pipe does.
struct RespCommandBuffer {
    var bytes: [UInt8] = []
    /// Commands appended since the last `removeAll()`.
    private(set) var commandCount = 0

    init(capacity: Int = 1 << 20) { bytes.reserveCapacity(capacity) }

    mutating func beginCommand(arguments: Int) {
        bytes.append(UInt8(ascii: "*"))
        appendDecimal(arguments)
        bytes.append(13); bytes.append(10)
        commandCount += 1
    }

    mutating func argument(_ raw: UnsafeRawBufferPointer) {
        bytes.append(UInt8(ascii: "$"))
        appendDecimal(raw.count)
        bytes.append(13); bytes.append(10)
        bytes.append(contentsOf: raw)
        bytes.append(13); bytes.append(10)
    }

    /// One argument made of two parts (`header.` and a header name), without joining them first.
    mutating func argument(prefix: [UInt8], _ raw: UnsafeRawBufferPointer) {
        bytes.append(UInt8(ascii: "$"))
        appendDecimal(prefix.count + raw.count)
        bytes.append(13); bytes.append(10)
        bytes.append(contentsOf: prefix)
        bytes.append(contentsOf: raw)
        bytes.append(13); bytes.append(10)
    }

    /// Appends one whole command, already in RESP form.
    mutating func appendCommand(_ command: ArraySlice<UInt8>) {
        bytes.append(contentsOf: command)
        commandCount += 1
    }

    /// Appends commands built in another buffer.
    mutating func append(_ other: RespCommandBuffer) {
        bytes.append(contentsOf: other.bytes)
        commandCount += other.commandCount
    }

    mutating func argument(_ text: String) {
        var text = text
        text.withUTF8 { argument(UnsafeRawBufferPointer($0)) }
    }

    mutating func argument(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { argument($0) }
    }

    mutating func command(_ words: [String]) {
        beginCommand(arguments: words.count)
        for word in words { argument(word) }
    }

    mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        commandCount = 0
    }

    private mutating func appendDecimal(_ value: Int) {
        if value < 10 { bytes.append(UInt8(ascii: "0") &+ UInt8(value)); return }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            while rest > 0 {
                buffer[count] = UInt8(ascii: "0") &+ UInt8(rest % 10)
                rest /= 10
                count += 1
            }
            while count > 0 {
                count -= 1
                bytes.append(buffer[count])
            }
        }
    }
}
