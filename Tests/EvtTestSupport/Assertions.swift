import Foundation

/// The line numbers in evt's `lines 17-19, 25` / `line 7` summaries on stderr, for the
/// summary line that contains `marker` ("not delivered" or "unconfirmed"), or the indented
/// lines that follow a "not delivered" header.
public func reportedLines(in stderr: String, marker: String) -> Set<Int> {
    var result = Set<Int>()
    let lines = stderr.split(separator: "\n").map(String.init)
    var inSection = false
    for line in lines {
        if line.contains(marker) {
            inSection = true
            if marker == "unconfirmed" { result.formUnion(parseRanges(line)) }
            continue
        }
        if inSection && marker == "not delivered" && line.hasPrefix("evt:   ") {
            result.formUnion(parseRanges(line))
        } else {
            inSection = false
        }
    }
    return result
}

/// `lines 1-3, 7` → {1,2,3,7} (the part after "line"/"lines" up to a colon).
public func parseRanges(_ text: String) -> Set<Int> {
    guard let start = text.range(of: "line") else { return [] }
    var rest = text[start.upperBound...]
    if rest.hasPrefix("s") { rest = rest.dropFirst() }
    if let colon = rest.firstIndex(of: ":") { rest = rest[..<colon] }
    var result = Set<Int>()
    for part in rest.split(separator: ",") {
        let bounds = part.trimmingCharacters(in: .whitespaces).split(separator: "-").compactMap { Int($0) }
        if bounds.count == 2 { result.formUnion(bounds[0]...bounds[1]) }
        if bounds.count == 1 { result.insert(bounds[0]) }
    }
    return result
}

/// The `n` field of one of `sampleLines`' JSON lines.
public func sequenceNumber(of json: String) -> Int? {
    guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return nil }
    return object["n"] as? Int
}

/// The sh blocks of README.md's section `heading` (`## Examples`), as one script: README's
/// examples are tests too.
public func readmeShellBlocks(_ heading: String) throws -> String {
    try readmeBlocks(heading, language: "sh").joined()
}

/// The text of each code block in `language` (```yaml) of README.md's section `heading`.
public func readmeBlocks(_ heading: String, language: String) throws -> [String] {
    let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
    guard let section = readme.range(of: heading)?.upperBound else { throw MissingReadmeSection(heading: heading) }
    let end = readme.range(of: "\n## ", range: section..<readme.endIndex)?.lowerBound ?? readme.endIndex
    var blocks: [String] = []
    var block: String?
    for line in readme[section..<end].split(separator: "\n", omittingEmptySubsequences: false) {
        if block == nil && line == "```" + language { block = ""; continue }
        if block != nil && line == "```" { blocks.append(block!); block = nil; continue }
        block? += line + "\n"
    }
    return blocks
}

public struct MissingReadmeSection: Error { public let heading: String }
