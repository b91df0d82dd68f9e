/// What `--value-schema SPEC` (`--key-schema SPEC`) names (CONTRACT.md, "Schemas"): a schema
/// id; `topic`, the target topic's own subject at its latest version; a subject, at a
/// version or the latest; or a schema file, which wins over a subject of the same name.
enum SchemaSpec: Equatable {
    case id(Int32)
    case topicSubject
    case subject(String, version: Int?)
    case file(path: String)

    /// Reads SPEC; `fileExists` says whether a path names a file (a subject is any other text).
    init(_ text: String, fileExists: (String) -> Bool) throws(EvtError) {
        if !text.isEmpty, text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber) {
            guard let id = Int32(text), id > 0 else {
                throw EvtError.usage("schema id \(text) is out of range: a registry's ids run from 1 to \(Int32.max).")
            }
            self = .id(id)
        } else if text == "topic" {
            self = .topicSubject
        } else if fileExists(text) {
            self = .file(path: text)
        } else if text.isEmpty {
            throw EvtError.usage("an empty schema: give an id (42), topic, a subject (orders-value or orders-value:3), or a schema file.")
        } else if let colon = text.lastIndex(of: ":"), let version = Int(text[text.index(after: colon)...]) {
            guard version > 0, colon != text.startIndex else {
                throw EvtError.usage("schema \(text): a subject's version is a number from 1 (or leave it out for the latest).")
            }
            self = .subject(String(text[..<colon]), version: version)
        } else if text.hasSuffix(".avsc") || text.hasSuffix(".json") {
            throw EvtError.usage("schema file \(text) does not exist (a SPEC ending in .avsc or .json is read as a file). Check the path.")
        } else {
            self = .subject(text, version: nil)
        }
    }

    /// The subject this spec registers or looks up under for `topic`: TOPIC-value or TOPIC-key
    /// (Confluent's TopicNameStrategy).
    static func topicSubject(_ topic: String, forKey: Bool) -> String {
        topic + (forKey ? "-key" : "-value")
    }
}
