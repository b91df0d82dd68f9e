/// A line that cannot be published: its reason and the 1-based column where it went wrong.
struct BadLine: Error {
    let reason: String
    let column: Int?
}

/// Turns one input line into an `OutgoingEvent` as CONTRACT.md's "Publish" section says:
/// by default the line's exact bytes are the value (checked to be JSON unless `--raw`);
/// `--key PATH` takes the key from the value; `--envelope` reads evt's own record shape.
/// All decoded bytes go to buffers reused from line to line.
final class InputDecoder {
    enum Mode { case json, raw, envelope }

    private let mode: Mode
    private let keyPath: [[UInt8]]?
    /// Unescaped / base64-decoded key and value bytes of the current line.
    private var scratch: [UInt8] = []
    private let headers = EventHeaders()

    /// `stream` or `list`: the envelope member that names each event's Redis key
    /// (`stream:*`, `list:*` targets), into `OutgoingEvent.redisName`.
    private let nameMember: String?

    init(mode: Mode, keyPath: String?, nameMember: String? = nil) {
        self.mode = mode
        self.nameMember = nameMember
        self.keyPath = keyPath.map { $0.split(separator: ".", omittingEmptySubsequences: false).map { Array($0.utf8) } }
    }

    func decode(_ line: UnsafeRawBufferPointer, number: Int, _ body: (borrowing OutgoingEvent) throws -> Void) throws {
        switch mode {
        case .raw:
            try body(OutgoingEvent(line: number, value: line, valueKind: nil))
        case .json:
            let kind = try validate(line)
            // A missing path or a JSON null there: no key (null is how records show "no key").
            guard let keyPath, let found = JSON.find(path: keyPath, in: line), found.kind != .null else {
                try body(OutgoingEvent(line: number, value: line, valueKind: kind))
                return
            }
            let keyBytes = UnsafeRawBufferPointer(rebasing: line[found.range])
            if found.kind == .string {
                scratch.removeAll(keepingCapacity: true)
                JSON.appendUnescaped(stringLiteral: keyBytes, to: &scratch)
                try scratch.withUnsafeBytes { key in
                    try body(OutgoingEvent(line: number, value: line, valueKind: kind, key: key))
                }
            } else {
                try body(OutgoingEvent(line: number, value: line, valueKind: kind, key: keyBytes))
            }
        case .envelope:
            try decodeEnvelope(line, number: number, body)
        }
    }

    private func validate(_ line: UnsafeRawBufferPointer) throws -> JSONKind {
        do {
            return try JSON.validate(line)
        } catch {
            throw BadLine(reason: "invalid JSON: \(error.reason)", column: error.offset + 1)
        }
    }

    private func decodeEnvelope(_ line: UnsafeRawBufferPointer, number: Int,
                                _ body: (borrowing OutgoingEvent) throws -> Void) throws {
        guard try validate(line) == .object else {
            throw BadLine(reason: "--envelope expects one JSON object per line, with value or value_b64", column: 1)
        }
        scratch.removeAll(keepingCapacity: true)
        headers.removeAll()
        var value: Range<Int>?           // into `line` (embedded JSON)
        var valueKind: JSONKind?
        var decodedValue: Range<Int>?    // into `scratch`
        var key: Range<Int>?
        var keyKind: JSONKind?
        var decodedKey: Range<Int>?
        var valueSchemaID: Int32?
        var keySchemaID: Int32?
        var partition: Int32?
        var timestamp: Int64?
        var sawValue = false
        var sawStream = false
        var decodedName: Range<Int>?     // the record's stream or list, into `scratch`
        var failure: BadLine?
        func field(_ name: String, _ keyBytes: UnsafeRawBufferPointer) -> Bool {
            keyBytes.count == name.utf8.count + 2 && keyBytes.dropFirst().prefix(name.utf8.count).elementsEqual(name.utf8)
        }
        func decodeInto(_ range: Range<Int>, kind: JSONKind, base64: Bool, what: String) -> Range<Int>? {
            let literal = UnsafeRawBufferPointer(rebasing: line[range])
            let start = scratch.count
            if kind == .string && !base64 {
                JSON.appendUnescaped(stringLiteral: literal, to: &scratch)
            } else if kind == .string {
                var text: [UInt8] = []
                JSON.appendUnescaped(stringLiteral: literal, to: &text)
                guard let bytes = text.withUnsafeBytes({ Base64.decode($0) }) else {
                    failure = BadLine(reason: "\(what) is not valid base64", column: range.lowerBound + 1)
                    return nil
                }
                scratch.append(contentsOf: bytes)
            } else {
                failure = BadLine(reason: "\(what) must be a string", column: range.lowerBound + 1)
                return nil
            }
            return start..<scratch.count
        }
        JSON.forEachMember(ofObject: line) { nameRange, valueRange, kind in
            guard failure == nil else { return }
            let name = UnsafeRawBufferPointer(rebasing: line[nameRange])
            if field("value", name) {
                sawValue = true
                if kind == .string {
                    decodedValue = decodeInto(valueRange, kind: kind, base64: false, what: "value")
                } else if kind != .null {
                    value = valueRange
                    valueKind = kind
                }
            } else if field("value_b64", name) {
                sawValue = true
                decodedValue = decodeInto(valueRange, kind: kind, base64: true, what: "value_b64")
            } else if field("key", name) {
                if kind == .string {
                    decodedKey = decodeInto(valueRange, kind: kind, base64: false, what: "key")
                } else if kind != .null {
                    key = valueRange
                    keyKind = kind
                }
            } else if field("key_b64", name) {
                decodedKey = decodeInto(valueRange, kind: kind, base64: true, what: "key_b64")
            } else if field("partition", name) {
                partition = Int32(String(decoding: line[valueRange], as: UTF8.self))
                if kind != .null && (partition == nil || partition! < 0) {
                    failure = BadLine(reason: "partition must be a whole number, 0 or more", column: valueRange.lowerBound + 1)
                }
            } else if field("timestamp", name) {
                timestamp = Int64(String(decoding: line[valueRange], as: UTF8.self))
                if kind != .null && timestamp == nil {
                    failure = BadLine(reason: "timestamp must be milliseconds since the epoch", column: valueRange.lowerBound + 1)
                }
            } else if field("value_schema_id", name) || field("key_schema_id", name) {
                // The schema that decoded the value (key) when evt read it: it encodes it again.
                let id = Int32(String(decoding: line[valueRange], as: UTF8.self))
                guard kind == .null || (id ?? 0) > 0 else {
                    failure = BadLine(reason: "\(String(decoding: name.dropFirst().dropLast(), as: UTF8.self)) must be a registry's schema id, a whole number from 1", column: valueRange.lowerBound + 1)
                    return
                }
                if field("value_schema_id", name) { valueSchemaID = id } else { keySchemaID = id }
            } else if field("headers", name) {
                decodeHeaders(UnsafeRawBufferPointer(rebasing: line[valueRange]), kind: kind,
                              column: valueRange.lowerBound + 1, failure: &failure)
            } else if let nameMember, field(nameMember, name) {
                sawStream = sawStream || nameMember == "stream"
                decodedName = decodeInto(valueRange, kind: kind, base64: false, what: nameMember)
            } else if field("stream", name) {
                sawStream = true
            }
        }
        if let failure { throw failure }
        guard sawValue else {
            throw BadLine(reason: "--envelope record has no value or value_b64", column: 1)
        }
        if sawStream, let value, valueKind == .object {
            let name = decodedName.map { Array(scratch[$0]) }
            let held = try sendRecordHeldByEntry(UnsafeRawBufferPointer(rebasing: line[value]), number: number) { event in
                guard let name else { return try body(event) }
                var named = copy event
                try name.withUnsafeBytes { bytes in
                    named.redisName = bytes
                    try body(named)
                }
            }
            if held { return }
        }
        try scratch.withUnsafeBytes { decoded in
            var event = OutgoingEvent(line: number, value: UnsafeRawBufferPointer(start: nil, count: 0), valueKind: nil)
            if let value {
                event.value = UnsafeRawBufferPointer(rebasing: line[value])
                event.valueKind = valueKind
            } else if let decodedValue {
                event.value = UnsafeRawBufferPointer(rebasing: decoded[decodedValue])
            } else {
                event.valueIsNull = true
            }
            if let key {
                event.key = UnsafeRawBufferPointer(rebasing: line[key])
                event.keyKind = keyKind
            }
            event.valueSchemaID = valueSchemaID
            event.keySchemaID = keySchemaID
            if let decodedKey { event.key = UnsafeRawBufferPointer(rebasing: decoded[decodedKey]) }
            if let decodedName { event.redisName = UnsafeRawBufferPointer(rebasing: decoded[decodedName]) }
            event.headers = headers.isEmpty ? nil : headers
            event.partition = partition
            event.timestamp = timestamp
            try body(event)
        }
    }

    private let entryFields = EventHeaders()
    private lazy var copyScratch = RecordScratch()
    private lazy var heldRecord = Record()
    private static let quotedSourceField = Array("\"kafka.source\"".utf8)

    /// A stream record whose entry holds a Kafka record (copy-between's mapping: value, key,
    /// header.NAME, kafka.timestamp, kafka.source) is that record again, so
    /// `evt tail stream:S | evt publish topic:T --envelope` gives back what was copied into S.
    private func sendRecordHeldByEntry(_ object: UnsafeRawBufferPointer, number: Int,
                                       _ body: (borrowing OutgoingEvent) throws -> Void) throws -> Bool {
        // Only an entry whose last field is kafka.source can hold a record: look before decoding.
        var lastName: Range<Int>?
        JSON.forEachMember(ofObject: object) { nameRange, _, _ in lastName = nameRange }
        guard let lastName, object[lastName].elementsEqual(InputDecoder.quotedSourceField) else { return false }
        entryFields.removeAll()
        var failure: BadLine?
        InputDecoder.decodeMembers(object, kind: .object, into: entryFields, column: 1, failure: &failure)
        guard failure == nil, !entryFields.entries.contains(where: { $0.value == nil }) else { return false }
        return try entryFields.bytes.withUnsafeBytes { bytes in
            let record = heldRecord
            record.origin = .stream
            record.fields.removeAll()
            for entry in entryFields.entries {
                record.fields.append(UnsafeRawBufferPointer(rebasing: bytes[entry.name]), UnsafeRawBufferPointer(rebasing: bytes[entry.value!]))
            }
            guard record.recordSourceField != nil else { return false }
            try record.withOutgoingEvent(number: number, keyField: nil, exactlyOnce: false, scratch: copyScratch, body)
            return true
        }
    }

    /// `{"name":"text"}`, `{"name":null}`, `{"name":{"b64":"…"}}`, `{"name":["a","b"]}`.
    private func decodeHeaders(_ object: UnsafeRawBufferPointer, kind: JSONKind, column: Int, failure: inout BadLine?) {
        InputDecoder.decodeMembers(object, kind: kind, into: headers, column: column, failure: &failure)
    }

    /// The members of a headers object (or of a stream entry's fields object, which has the same
    /// shape) appended to `headers` in order.
    static func decodeMembers(_ object: UnsafeRawBufferPointer, kind: JSONKind, into headers: EventHeaders,
                              column: Int, failure: inout BadLine?) {
        guard kind == .object else {
            if kind != .null { failure = BadLine(reason: "headers must be an object", column: column) }
            return
        }
        var name: [UInt8] = []
        var value: [UInt8] = []
        var problem: BadLine?
        func add(_ nameBytes: UnsafeRawBufferPointer, _ valueText: UnsafeRawBufferPointer, _ kind: JSONKind) {
            value.removeAll(keepingCapacity: true)
            switch kind {
            case .null:
                headers.append(name: nameBytes, value: nil)
            case .string:
                JSON.appendUnescaped(stringLiteral: valueText, to: &value)
                value.withUnsafeBytes { headers.append(name: nameBytes, value: $0) }
            case .object:
                guard let encoded = JSON.find(path: [Array("b64".utf8)], in: valueText), encoded.kind == .string else {
                    problem = BadLine(reason: "a header value must be a string, null or {\"b64\":…}", column: column)
                    return
                }
                JSON.appendUnescaped(stringLiteral: UnsafeRawBufferPointer(rebasing: valueText[encoded.range]), to: &value)
                guard let bytes = value.withUnsafeBytes({ Base64.decode($0) }) else {
                    problem = BadLine(reason: "a header's b64 is not valid base64", column: column)
                    return
                }
                bytes.withUnsafeBytes { headers.append(name: nameBytes, value: $0) }
            default:
                problem = BadLine(reason: "a header value must be a string, null or {\"b64\":…}", column: column)
            }
        }
        JSON.forEachMember(ofObject: object) { nameRange, valueRange, valueKind in
            name.removeAll(keepingCapacity: true)
            JSON.appendUnescaped(stringLiteral: UnsafeRawBufferPointer(rebasing: object[nameRange]), to: &name)
            // "b64:…": a name that is not UTF-8, as tail writes it.
            if name.starts(with: Array("b64:".utf8)),
               let decoded = name.dropFirst(4).withUnsafeBytes({ Base64.decode($0) }),
               !decoded.withUnsafeBytes({ JSON.isValidUTF8($0) }) {
                name = decoded
            }
            let valueText = UnsafeRawBufferPointer(rebasing: object[valueRange])
            name.withUnsafeBytes { nameBytes in
                if valueKind == .array {
                    // Repeated header: each element in order.
                    var elements: [(Range<Int>, JSONKind)] = []
                    JSON.forEachElement(ofArray: valueText) { elements.append(($0, $1)) }
                    for (range, kind) in elements {
                        add(nameBytes, UnsafeRawBufferPointer(rebasing: valueText[range]), kind)
                    }
                } else {
                    add(nameBytes, valueText, valueKind)
                }
            }
        }
        if let problem { failure = problem }
    }
}
