/// `250ms`, `30s`, `5m`, `1h`, `2d` (CONTRACT.md, "Positions and durations").
public enum DurationParser {
    /// Milliseconds. A bare number is a usage error with a hint, since "30" could mean anything.
    public static func milliseconds(_ text: String, option: String) throws -> Int {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let unit = text.dropFirst(digits.count)
        guard let value = Int(digits) else {
            throw EvtError.usage("\(option) \(text): expected a duration such as 250ms, 30s, 5m or 1h.")
        }
        switch unit {
        case "ms": return value
        case "s": return value * 1000
        case "m": return value * 60_000
        case "h": return value * 3_600_000
        case "d": return value * 86_400_000
        case "":
            throw EvtError.usage("\(option) \(text): give a unit, e.g. \(text)s or \(text)ms.")
        default:
            throw EvtError.usage("\(option) \(text): unknown unit \(unit); use ms, s, m, h or d.")
        }
    }
}
