#if canImport(Glibc)
import Glibc
#endif

/// Where reading starts (CONTRACT.md, "Positions and durations"): one grammar for Kafka and
/// Redis; each backend says which forms it takes.
public enum Position: Equatable, Sendable {
    case beginning
    case end
    /// A Kafka offset (`1200`).
    case offset(Int64)
    /// A Redis stream entry id (`1763812345123-0`).
    case streamID(String)
    /// `-N`: N before the end (per partition on Kafka).
    case fromEnd(Int64)
    /// `@TIME`, as milliseconds since the epoch.
    case time(Int64)

    /// Parses `beginning`, `end`, `N`, `MS-SEQ`, `-N` or `@TIME`: ms since the epoch, ISO 8601
    /// such as `2026-11-20T10:00:00Z` (no zone means UTC), or a time relative to `now`,
    /// `@-10m`, `@-2h`, `@+5s` (units ms, s, m, h, d).
    public static func parse(_ text: String, option: String) throws -> Position {
        try parse(text, option: option, now: epochMilliseconds())
    }

    static func parse(_ text: String, option: String, now: Int64) throws -> Position {
        func bad(_ why: String) -> EvtError {
            EvtError.usage("\(option) \(text): \(why)")
        }
        switch text {
        case "beginning", "earliest", "oldest": return .beginning
        case "end", "latest", "newest", "$": return .end
        default: break
        }
        if text.hasPrefix("@") {
            let time = text.dropFirst()
            if let sign = time.first, sign == "-" || sign == "+" {
                guard let offset = try? DurationParser.milliseconds(String(time.dropFirst()), option: option) else {
                    throw bad("expected a time relative to now such as @-10m, @-2h or @+5s (units ms, s, m, h, d).")
                }
                return .time(max(0, sign == "-" ? now - Int64(offset) : now + Int64(offset)))
            }
            if let milliseconds = Int64(time), milliseconds >= 0 { return .time(milliseconds) }
            guard let milliseconds = iso8601Milliseconds(String(time)) else {
                throw bad("expected @MILLISECONDS, @ISO-8601 such as @2026-11-20T10:00:00Z, or a time relative to now such as @-10m or @+5s.")
            }
            return .time(milliseconds)
        }
        if text.hasPrefix("-") {
            guard let count = Int64(text.dropFirst()), count >= 0 else {
                throw bad("expected -N, the number of events before the end.")
            }
            return .fromEnd(count)
        }
        if let offset = Int64(text), offset >= 0 { return .offset(offset) }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        if parts.count == 2, UInt64(parts[0]) != nil, UInt64(parts[1]) != nil { return .streamID(text) }
        throw bad("expected beginning, end, an offset (1200), a stream id (1763812345123-0), -N or @TIME.")
    }

    /// `2026-11-20T10:00:00Z`, `2026-11-20T10:00:00.250+01:00`, `2026-11-20 10:00`, `2026-11-20`.
    static func iso8601Milliseconds(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ digits: Int) -> Int? {
            guard index + digits <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<(index + digits)] {
                guard byte >= 0x30 && byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            index += digits
            return value
        }
        func skip(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }
        guard let year = number(4), skip(UInt8(ascii: "-")), let month = number(2), skip(UInt8(ascii: "-")),
              let day = number(2), (1...12).contains(month), (1...31).contains(day) else { return nil }
        var hour = 0, minute = 0, second = 0, milliseconds = 0, zoneSeconds = 0
        if skip(UInt8(ascii: "T")) || skip(UInt8(ascii: " ")) {
            guard let h = number(2), skip(UInt8(ascii: ":")), let m = number(2), h < 24, m < 60 else { return nil }
            hour = h
            minute = m
            if skip(UInt8(ascii: ":")) {
                guard let s = number(2), s < 61 else { return nil }
                second = s
                if skip(UInt8(ascii: ".")) {
                    var scale = 100
                    var digits = 0
                    while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                        milliseconds += Int(bytes[index] - 0x30) * scale
                        scale /= 10
                        index += 1
                        digits += 1
                    }
                    guard digits > 0 else { return nil }
                }
            }
            if skip(UInt8(ascii: "Z")) {
            } else if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
                index += 1
                guard let zh = number(2) else { return nil }
                _ = skip(UInt8(ascii: ":"))
                guard let zm = number(2) else { return nil }
                zoneSeconds = sign * (zh * 3600 + zm * 60)
            }
        }
        guard index == bytes.count else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts)
        return (Int64(seconds) - Int64(zoneSeconds)) * 1000 + Int64(milliseconds)
    }
}
