/// How `copy-between` carries an event from one system to the other so that a round trip gives
/// it back unchanged (evt-copy-between(1), "MAPPING"):
///
/// A Kafka record becomes a stream entry with the fields, in this order,
///   `value` (absent for a null value), `value.schema_id` (when a registry's schema decoded
///   the value into `value`), `key` (absent for a null key), `key.schema_id` (likewise),
///   `header.NAME` for each header in order (`header-null.NAME`, empty, for a null header value),
///   `kafka.timestamp` (ms, absent when the record has none),
///   `kafka.source` = `TOPIC/PARTITION/OFFSET` (always last: it marks the entry as a record).
/// Such an entry going to a topic becomes that record again (value, key, headers, timestamp).
///
/// Any other stream entry becomes a record whose value is the JSON object of its fields, as
/// `tail` prints it (a non-UTF-8 value as {"b64":…}), keyed by `--key-field`, timestamped with
/// the id's milliseconds, with the header `evt.stream.id` = the entry id. Such a record going to
/// a stream becomes the entry again, with its id restored where the stream allows it.
enum RecordMapping {
    static let value = Array("value".utf8)
    static let key = Array("key".utf8)
    static let headerPrefix = Array("header.".utf8)
    static let nullHeaderPrefix = Array("header-null.".utf8)
    static let timestamp = Array("kafka.timestamp".utf8)
    /// The registry schema that decoded the value (key) into the JSON text of the `value`
    /// (`key`) field: the way back into a topic encodes it again with it.
    static let valueSchemaID = Array("value.schema_id".utf8)
    static let keySchemaID = Array("key.schema_id".utf8)
    static let source = Array("kafka.source".utf8)
    /// The source entry id, on every record copied from a stream entry that was not a record.
    static let streamIDHeader = Array("evt.stream.id".utf8)
    /// The `kafka.source` of an entry that was a record, with `--exactly-once` (whose resume
    /// step needs `evt.stream.id` on every record): so it comes back on the way to a stream.
    static let kafkaSourceHeader = Array("evt.kafka.source".utf8)

    /// PARTITION of a `kafka.source` value `TOPIC/PARTITION/OFFSET` (a topic name has no `/`).
    static func partition(ofSource source: UnsafeRawBufferPointer) -> Int32? {
        guard let offsetSlash = source.lastIndex(of: UInt8(ascii: "/")),
              let partitionSlash = source[..<offsetSlash].lastIndex(of: UInt8(ascii: "/")) else { return nil }
        var partition: Int32 = 0
        let digits = source[(partitionSlash + 1)..<offsetSlash]
        guard !digits.isEmpty, digits.count <= 9 else { return nil }
        for byte in digits {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            partition = partition * 10 + Int32(digit)
        }
        return partition
    }
}

/// A stream entry id `MS-SEQ`, ordered as Redis orders them.
struct StreamID: Comparable, CustomStringConvertible {
    var milliseconds: UInt64
    var sequence: UInt64

    static let zero = StreamID(milliseconds: 0, sequence: 0)

    init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// Parses `MS-SEQ` (no allocation: it runs once per copied entry).
    init?(_ bytes: UnsafeRawBufferPointer) {
        var milliseconds: UInt64 = 0
        var value: UInt64 = 0
        var digits = 0
        var sawDash = false
        for byte in bytes {
            if byte == UInt8(ascii: "-") {
                guard !sawDash, digits > 0 else { return nil }
                sawDash = true
                milliseconds = value
                value = 0
                digits = 0
                continue
            }
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit))
            guard !overflow1 && !overflow2 else { return nil }
            value = sum
            digits += 1
        }
        guard sawDash, digits > 0 else { return nil }
        self.init(milliseconds: milliseconds, sequence: value)
    }

    init?(_ text: String) {
        var text = text
        guard let id = text.withUTF8({ StreamID(UnsafeRawBufferPointer($0)) }) else { return nil }
        self = id
    }

    var description: String { "\(milliseconds)-\(sequence)" }

    static func < (a: StreamID, b: StreamID) -> Bool {
        (a.milliseconds, a.sequence) < (b.milliseconds, b.sequence)
    }
}

/// One event a source hands over (copy-between, replay, tail, subscribe, claim-pending): a
/// Kafka record, a stream entry, a list item or a channel message. The buffers are the
/// source's, valid only during the call that hands the record over.
final class Record {
    /// `list`: an item of a Redis list, a value and nothing else. `channel`: a message
    /// published on a channel, a value and the channel (and pattern) it came by.
    enum Origin { case kafka, stream, list, channel }
    var origin: Origin = .kafka
    /// The topic, stream or list name as a JSON string literal (set once per read, from
    /// `Record.quoted`).
    var quotedSource: [UInt8] = []

    /// A source's name as `quotedSource` holds it.
    static func quoted(_ name: String) -> [UInt8] { OutputWriter.quoted(name) }

    // A Kafka record.
    var topic: [UInt8] = []
    var partition: Int32 = 0
    var offset: Int64 = 0
    var timestamp: Int64?
    var key: UnsafeRawBufferPointer?
    var value: UnsafeRawBufferPointer?
    let headers = EventHeaders()
    /// Set when a registry's schema decoded the key (value): `key` (`value`) is then that
    /// decoding's JSON text, printed as it is, with `"key_schema_id"` (`"value_schema_id"`)
    /// beside it. Every source that points a record at new bytes clears them.
    var keySchemaID: Int32?
    var valueSchemaID: Int32?

    // A stream entry.
    var id = UnsafeRawBufferPointer(start: nil, count: 0)
    let fields = StreamFields()
    /// How many times a group delivered the entry, for an entry re-read from a pending list
    /// (claim-pending, a consumer's own pending entries); nil for any other read.
    var deliveries: Int?

    // A channel message (its value is `value`): the channel it was published on, and the
    // pattern it matched for a pattern subscription.
    var channel = UnsafeRawBufferPointer(start: nil, count: 0)
    var pattern: UnsafeRawBufferPointer?

    /// For a stream entry that holds a Kafka record (see RecordMapping): the index of its
    /// `kafka.source` field, or nil when the entry is not one.
    var recordSourceField: Int? {
        guard origin == .stream, let last = fields.last, last.name.elementsEqual(RecordMapping.source) else { return nil }
        for field in fields.dropLast() {
            let name = field.name
            guard name.elementsEqual(RecordMapping.value) || name.elementsEqual(RecordMapping.key)
                    || name.starts(with: RecordMapping.headerPrefix) || name.starts(with: RecordMapping.nullHeaderPrefix)
                    || name.elementsEqual(RecordMapping.timestamp)
                    || name.elementsEqual(RecordMapping.valueSchemaID) || name.elementsEqual(RecordMapping.keySchemaID) else { return nil }
        }
        return fields.count - 1
    }
}

/// A stream entry's field/value pairs, borrowed like the rest of a Record. Slots are
/// overwritten in place from entry to entry: filling them costs a store per field, with none of
/// an array's uniqueness and exclusivity checks per append (they cost 4 % on `subscribe`).
final class StreamFields: RandomAccessCollection {
    typealias Field = (name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)
    private var slots: UnsafeMutablePointer<Field>
    private var capacity: Int
    private(set) var count = 0

    init() {
        capacity = 16
        slots = .allocate(capacity: capacity)
    }

    deinit { slots.deallocate() }

    var startIndex: Int { 0 }
    var endIndex: Int { count }

    subscript(index: Int) -> Field {
        precondition(index >= 0 && index < count, "field index out of range")
        return slots[index]
    }

    /// Calls `body` with each field in order (`first`: it is the first).
    func forEachField(_ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, _ first: Bool) -> Void) {
        let slots = slots
        for index in 0..<count { body(slots[index].name, slots[index].value, index == 0) }
    }

    /// Empties the list, keeping its slots.
    func removeAll() { count = 0 }

    func append(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        if count == capacity { grow() }
        (slots + count).initialize(to: (name, value))
        count += 1
    }

    /// The list becomes `fields`.
    func replace(with fields: some Sequence<Field>) {
        removeAll()
        for field in fields { append(field.name, field.value) }
    }

    /// The list becomes `count` fields, `field(i)` the i-th: one capacity check per entry,
    /// not one per field.
    @inline(__always)
    func fill(count: Int, _ field: (Int) -> Field) {
        while capacity < count { grow() }
        let slots = slots
        for index in 0..<count { (slots + index).initialize(to: field(index)) }
        self.count = count
    }

    private func grow() {
        let larger = UnsafeMutablePointer<Field>.allocate(capacity: capacity * 2)
        larger.initialize(from: slots, count: count)
        slots.deallocate()
        slots = larger
        capacity *= 2
    }
}

/// Buffers reused from record to record while mapping.
final class RecordScratch {
    var number: [UInt8] = []
    var key: [UInt8] = []
    let fields = EventHeaders()
    let headers = EventHeaders()
    let value = OutputWriter(fd: -1, flushThreshold: 0)
}

/// `--key-field F`: a field's bytes, or (`payload.user.id`) a dotted JSON path inside a field.
struct KeyField {
    let field: [UInt8]
    let path: [[UInt8]]?
    let whole: [UInt8]

    init(_ text: String) {
        whole = Array(text.utf8)
        if let dot = whole.firstIndex(of: UInt8(ascii: ".")) {
            field = Array(whole[..<dot])
            path = whole[(dot + 1)...].split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).map(Array.init)
        } else {
            field = whole
            path = nil
        }
    }

    /// Calls `body` with the key for an entry's fields, or nil when it has none there.
    func withKey<R>(in fields: StreamFields, scratch: inout [UInt8],
                    _ body: (UnsafeRawBufferPointer?) throws -> R) rethrows -> R {
        if let exact = fields.first(where: { $0.name.elementsEqual(whole) }) { return try body(exact.value) }
        guard let path, let holder = fields.first(where: { $0.name.elementsEqual(field) }),
              let found = JSON.find(path: path, in: holder.value), found.kind != .null else { return try body(nil) }
        let bytes = UnsafeRawBufferPointer(rebasing: holder.value[found.range])
        guard found.kind == .string else { return try body(bytes) }
        scratch.removeAll(keepingCapacity: true)
        JSON.appendUnescaped(stringLiteral: bytes, to: &scratch)
        return try scratch.withUnsafeBytes { try body($0) }
    }
}

/// Where `Record.writeEntry` puts an entry: a stream target building a batch.
protocol StreamEntryWriter {
    /// Starts an entry of `fieldCount` field/value pairs in `stream`; `restoring`: the source
    /// entry id to give it. False when the open batch cannot take such an entry.
    func beginEntry(stream: [UInt8], restoring id: UnsafeRawBufferPointer?, fieldCount: Int) -> Bool
    func field(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer)
    func field(_ name: [UInt8], _ value: UnsafeRawBufferPointer)
    /// A field whose name is `prefix` + `name` (`header.trace`).
    func field(prefix: [UInt8], _ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer)
}

extension Record {
    /// The record as a stream entry (see RecordMapping) into `stream`. False when the target's
    /// open batch cannot take it (commit, then call again).
    func writeEntry(to target: some StreamEntryWriter, stream: [UInt8], scratch: RecordScratch) -> Bool {
        if origin == .stream {
            guard target.beginEntry(stream: stream, restoring: id, fieldCount: fields.count) else { return false }
            for field in fields { target.field(field.name, field.value) }
            return true
        }
        if origin == .list || origin == .channel {
            guard target.beginEntry(stream: stream, restoring: nil, fieldCount: 1) else { return false }
            target.field(RecordMapping.value, value ?? UnsafeRawBufferPointer(start: nil, count: 0))
            return true
        }
        return headers.bytes.withUnsafeBytes { headerBytes in
            func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: headerBytes[range]) }
            func header(fromEnd: Int, is name: [UInt8]) -> UnsafeRawBufferPointer? {
                let entries = headers.entries
                guard entries.count > fromEnd else { return nil }
                let entry = entries[entries.count - 1 - fromEnd]
                guard bytes(entry.name).elementsEqual(name), let value = entry.value else { return nil }
                return bytes(value)
            }
            var headerCount = headers.entries.count
            var sourceText: UnsafeRawBufferPointer?
            var restoredID: UnsafeRawBufferPointer?
            if let streamID = header(fromEnd: 0, is: RecordMapping.streamIDHeader) {
                if let kafkaSource = header(fromEnd: 1, is: RecordMapping.kafkaSourceHeader) {
                    // A record that was a stream entry holding a record: that entry again.
                    sourceText = kafkaSource
                    restoredID = streamID
                    headerCount -= 2
                } else if let value, decodeFields(value, into: scratch.fields) {
                    // A stream entry carried as a JSON object of its fields: the entry again.
                    guard target.beginEntry(stream: stream, restoring: streamID, fieldCount: scratch.fields.entries.count) else { return false }
                    scratch.fields.bytes.withUnsafeBytes { fieldBytes in
                        for entry in scratch.fields.entries {
                            target.field(UnsafeRawBufferPointer(rebasing: fieldBytes[entry.name]),
                                         UnsafeRawBufferPointer(rebasing: fieldBytes[entry.value!]))
                        }
                    }
                    return true
                }
            }
            let count = (value == nil ? 0 : 1) + (key == nil ? 0 : 1) + headerCount + (timestamp == nil ? 0 : 1) + 1
                + (valueSchemaID == nil ? 0 : 1) + (keySchemaID == nil ? 0 : 1)
            guard target.beginEntry(stream: stream, restoring: restoredID, fieldCount: count) else { return false }
            func schemaIDField(_ name: [UInt8], _ id: Int32) {
                scratch.number.removeAll(keepingCapacity: true)
                JSONOutput.appendDecimal(Int(id), to: &scratch.number)
                scratch.number.withUnsafeBytes { target.field(name, $0) }
            }
            if let value { target.field(RecordMapping.value, value) }
            if let valueSchemaID { schemaIDField(RecordMapping.valueSchemaID, valueSchemaID) }
            if let key { target.field(RecordMapping.key, key) }
            if let keySchemaID { schemaIDField(RecordMapping.keySchemaID, keySchemaID) }
            for entry in headers.entries.prefix(headerCount) {
                if let valueRange = entry.value {
                    target.field(prefix: RecordMapping.headerPrefix, bytes(entry.name), bytes(valueRange))
                } else {
                    target.field(prefix: RecordMapping.nullHeaderPrefix, bytes(entry.name), UnsafeRawBufferPointer(start: nil, count: 0))
                }
            }
            if let timestamp {
                scratch.number.removeAll(keepingCapacity: true)
                JSONOutput.appendDecimal(Int(timestamp), to: &scratch.number)
                scratch.number.withUnsafeBytes { target.field(RecordMapping.timestamp, $0) }
            }
            if let sourceText {
                target.field(RecordMapping.source, sourceText)
            } else {
                scratch.number.removeAll(keepingCapacity: true)
                scratch.number.append(contentsOf: topic)
                scratch.number.append(UInt8(ascii: "/"))
                JSONOutput.appendDecimal(Int(partition), to: &scratch.number)
                scratch.number.append(UInt8(ascii: "/"))
                JSONOutput.appendDecimal(Int(offset), to: &scratch.number)
                scratch.number.withUnsafeBytes { target.field(RecordMapping.source, $0) }
            }
            return true
        }
    }

    /// A JSON object of string (or {"b64":…}) members into `fields`; false when `value` is not
    /// one (then the record is copied as a record).
    private func decodeFields(_ value: UnsafeRawBufferPointer, into fields: EventHeaders) -> Bool {
        fields.removeAll()
        guard (try? JSON.validate(value)) == .object else { return false }
        var failure: BadLine?
        InputDecoder.decodeMembers(value, kind: .object, into: fields, column: 1, failure: &failure)
        return failure == nil && !fields.entries.contains { $0.value == nil }
    }

    /// The record as an event for a topic, list or channel (see RecordMapping).
    func withOutgoingEvent(number: Int, keyField: KeyField?, exactlyOnce: Bool, scratch: RecordScratch,
                           _ body: (borrowing OutgoingEvent) throws -> Void) throws {
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        if origin == .kafka {
            try body(OutgoingEvent(line: number, value: value ?? empty, valueKind: nil, valueIsNull: value == nil,
                                   key: key, headers: headers.isEmpty ? nil : headers, partition: nil,
                                   sourcePartition: partition, timestamp: timestamp))
            return
        }
        if origin == .list || origin == .channel {
            try body(OutgoingEvent(line: number, value: value ?? empty, valueKind: nil))
            return
        }
        let headers = scratch.headers
        headers.removeAll()
        if let sourceField = recordSourceField {
            // An entry holding a Kafka record: that record again.
            var recordValue: UnsafeRawBufferPointer?
            var recordKey: UnsafeRawBufferPointer?
            var recordTimestamp: Int64?
            var valueSchemaID: Int32?
            var keySchemaID: Int32?
            for field in fields[..<sourceField] {
                let name = field.name
                if name.elementsEqual(RecordMapping.value) {
                    recordValue = field.value
                } else if name.elementsEqual(RecordMapping.key) {
                    recordKey = field.value
                } else if name.elementsEqual(RecordMapping.valueSchemaID) {
                    valueSchemaID = Int32(String(decoding: field.value, as: UTF8.self))
                } else if name.elementsEqual(RecordMapping.keySchemaID) {
                    keySchemaID = Int32(String(decoding: field.value, as: UTF8.self))
                } else if name.starts(with: RecordMapping.headerPrefix) {
                    headers.append(name: UnsafeRawBufferPointer(rebasing: name[RecordMapping.headerPrefix.count...]), value: field.value)
                } else if name.starts(with: RecordMapping.nullHeaderPrefix) {
                    headers.append(name: UnsafeRawBufferPointer(rebasing: name[RecordMapping.nullHeaderPrefix.count...]), value: nil)
                } else if name.elementsEqual(RecordMapping.timestamp) {
                    recordTimestamp = Int64(String(decoding: field.value, as: UTF8.self))
                }
            }
            if exactlyOnce {
                // The resume step needs the entry id on every record; the source comes along
                // so that the way back to a stream restores the entry exactly.
                RecordMapping.kafkaSourceHeader.withUnsafeBytes { headers.append(name: $0, value: fields[sourceField].value) }
                RecordMapping.streamIDHeader.withUnsafeBytes { headers.append(name: $0, value: id) }
            }
            var event = OutgoingEvent(line: number, value: recordValue ?? empty, valueKind: nil, valueIsNull: recordValue == nil,
                                      key: recordKey, headers: headers.isEmpty ? nil : headers, partition: nil,
                                      sourcePartition: RecordMapping.partition(ofSource: fields[sourceField].value),
                                      timestamp: recordTimestamp)
            // A value (key) a schema decoded is its JSON text, for the encoder to read.
            if let valueSchemaID, let recordValue {
                event.valueSchemaID = valueSchemaID
                event.valueKind = QuickCheck.kind(of: recordValue)
            }
            if let keySchemaID, let recordKey {
                event.keySchemaID = keySchemaID
                event.keyKind = QuickCheck.kind(of: recordKey)
            }
            try body(event)
            return
        }
        // Any other entry: the JSON object of its fields, as tail prints it.
        let writer = scratch.value
        writer.buffer.removeAll(keepingCapacity: true)
        writer.buffer.append(UInt8(ascii: "{"))
        for (index, field) in fields.enumerated() {
            writer.appendStreamField(field.name, field.value, first: index == 0)
        }
        writer.buffer.append(UInt8(ascii: "}"))
        RecordMapping.streamIDHeader.withUnsafeBytes { headers.append(name: $0, value: id) }
        let milliseconds = StreamID(id).map { Int64(clamping: $0.milliseconds) }
        func send(_ key: UnsafeRawBufferPointer?) throws {
            try writer.buffer.withUnsafeBytes { value in
                try body(OutgoingEvent(line: number, value: value, valueKind: nil, key: key, headers: headers,
                                       partition: nil, timestamp: milliseconds))
            }
        }
        if let keyField { try keyField.withKey(in: fields, scratch: &scratch.key, send) } else { try send(nil) }
    }
}
