/// Why a JSON value does not fit a schema (Avro or JSON Schema), for the bad-line message
/// `line N: … .items[2].qty: expected int, got "three"` (CONTRACT.md, "Schemas").
struct SchemaMismatch: Error, Equatable, CustomStringConvertible {
    /// Where in the value, jq-style: `.` for the value itself, `.items[2].qty` inside it
    /// (a member name that is not a plain identifier is quoted: `."first name"`).
    var path: String
    /// What the schema wanted there, in its own words: `int`, `one of the union's branches
    /// null, string`, `a string of at most 8 characters`.
    var expected: String
    /// What the value holds there, short: `"three"`, `an object`, `null`; nil when it says
    /// nothing more than `expected` does.
    var found: String?

    var description: String {
        "\(path): expected \(expected)" + (found.map { ", got \($0)" } ?? "")
    }

    /// `.name` or `."odd name"`, appended to a jq-style path.
    static func member(_ name: String, of path: String) -> String {
        let plain = !name.isEmpty && name.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil)) }
            && !(name.unicodeScalars.first!.properties.numericType != nil)
        let step = plain ? name : String(decoding: OutputWriter.quoted(name), as: UTF8.self)
        return (path == "." ? "" : path) + "." + step
    }

    /// `[index]`, appended to a jq-style path.
    static func element(_ index: Int, of path: String) -> String {
        (path == "." ? "" : path) + "[\(index)]"
    }
}
