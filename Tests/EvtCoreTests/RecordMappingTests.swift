import Testing
@testable import EvtCore

/// Bytes that stay put for as long as the test holds them (a Record only borrows its buffers).
private final class PinnedBytes {
    private var buffers: [UnsafeMutableRawBufferPointer] = []

    func callAsFunction(_ text: String) -> UnsafeRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(text.utf8.count, 1), alignment: 1)
        buffer.copyBytes(from: Array(text.utf8))
        buffers.append(buffer)
        return UnsafeRawBufferPointer(rebasing: buffer[..<text.utf8.count])
    }

    deinit { for buffer in buffers { buffer.deallocate() } }
}

/// A stream target's view of one entry, as `Record.writeEntry` writes it.
private final class EntryRecorder: StreamEntryWriter {
    var stream = ""
    var restoredID: String?
    var declaredFieldCount = 0
    var fields: [(String, String)] = []
    /// Refuses an entry that restores an id (as an open MULTI batch does).
    var refusesRestoring = false

    func beginEntry(stream: [UInt8], restoring id: UnsafeRawBufferPointer?, fieldCount: Int) -> Bool {
        if refusesRestoring && id != nil { return false }
        self.stream = String(decoding: stream, as: UTF8.self)
        restoredID = id.map { String(decoding: $0, as: UTF8.self) }
        declaredFieldCount = fieldCount
        fields = []
        return true
    }
    func field(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        fields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
    }
    func field(_ name: [UInt8], _ value: UnsafeRawBufferPointer) {
        name.withUnsafeBytes { field($0, value) }
    }
    func field(prefix: [UInt8], _ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        field(prefix + Array(name), value)
    }
}

/// What `Record.withOutgoingEvent` handed over, copied out of its borrowed buffers.
private struct Sent: Equatable {
    var value: String
    var valueIsNull: Bool
    var key: String?
    var headers: [(String, String?)]
    var timestamp: Int64?
    var sourcePartition: Int32?

    static func == (a: Sent, b: Sent) -> Bool {
        a.value == b.value && a.valueIsNull == b.valueIsNull && a.key == b.key && a.timestamp == b.timestamp
            && a.sourcePartition == b.sourcePartition
            && a.headers.map(\.0) == b.headers.map(\.0) && a.headers.map(\.1) == b.headers.map(\.1)
    }
}

@Suite("The Kafka record ↔ stream entry mapping of copy-between")
struct RecordMappingTests {
    private static func sent(_ record: Record, keyField: KeyField? = nil, exactlyOnce: Bool = false) throws -> Sent {
        var result: Sent?
        try record.withOutgoingEvent(number: 1, keyField: keyField, exactlyOnce: exactlyOnce, scratch: RecordScratch()) { event in
            var headers: [(String, String?)] = []
            if let eventHeaders = event.headers {
                for entry in eventHeaders.entries {
                    headers.append((String(decoding: eventHeaders.bytes[entry.name], as: UTF8.self),
                                    entry.value.map { String(decoding: eventHeaders.bytes[$0], as: UTF8.self) }))
                }
            }
            result = Sent(value: String(decoding: event.value, as: UTF8.self), valueIsNull: event.valueIsNull,
                          key: event.key.map { String(decoding: $0, as: UTF8.self) }, headers: headers,
                          timestamp: event.timestamp, sourcePartition: event.sourcePartition)
        }
        return try #require(result)
    }

    private static func kafkaRecord(_ pin: PinnedBytes, value: String?, key: String?, headers: [(String, String?)],
                                    timestamp: Int64?) -> Record {
        let record = Record()
        record.origin = .kafka
        record.topic = Array("orders".utf8)
        record.partition = 3
        record.offset = 42
        record.value = value.map { pin($0) }
        record.key = key.map { pin($0) }
        record.timestamp = timestamp
        for (name, value) in headers {
            record.headers.append(name: pin(name), value: value.map { pin($0) })
        }
        return record
    }

    private static func streamEntry(_ pin: PinnedBytes, id: String, _ fields: [(String, String)]) -> Record {
        let record = Record()
        record.origin = .stream
        record.id = pin(id)
        record.fields.replace(with: fields.map { (name: pin($0.0), value: pin($0.1)) })
        return record
    }

    @Test("a record becomes value, key, headers, timestamp and kafka.source (last), and comes back unchanged")
    func recordRoundTrip() throws {
        let pin = PinnedBytes()
        let record = Self.kafkaRecord(pin, value: #"{"n":1}"#, key: "k1", headers: [("trace", "t1"), ("gone", nil), ("trace", "t2")],
                                      timestamp: 1_700_000_000_123)
        let entry = EntryRecorder()
        #expect(record.writeEntry(to: entry, stream: Array("copy".utf8), scratch: RecordScratch()))
        let expected: [(String, String)] = [("value", #"{"n":1}"#), ("key", "k1"), ("header.trace", "t1"), ("header-null.gone", ""),
                                            ("header.trace", "t2"), ("kafka.timestamp", "1700000000123"), ("kafka.source", "orders/3/42")]
        #expect(entry.stream == "copy" && entry.restoredID == nil)
        #expect(entry.fields.map(\.0) == expected.map(\.0) && entry.fields.map(\.1) == expected.map(\.1))
        #expect(entry.declaredFieldCount == entry.fields.count)

        let back = Self.streamEntry(pin, id: "1700000000999-0", entry.fields)
        #expect(back.recordSourceField == 6)
        #expect(try Self.sent(back) == Sent(value: #"{"n":1}"#, valueIsNull: false, key: "k1",
                                             headers: [("trace", "t1"), ("gone", nil), ("trace", "t2")],
                                             timestamp: 1_700_000_000_123, sourcePartition: 3))
    }

    @Test("a null value, a null key, no headers and no timestamp leave their fields out, and stay null on the way back")
    func nullsRoundTrip() throws {
        let pin = PinnedBytes()
        let record = Self.kafkaRecord(pin, value: nil, key: nil, headers: [], timestamp: nil)
        let entry = EntryRecorder()
        #expect(record.writeEntry(to: entry, stream: Array("copy".utf8), scratch: RecordScratch()))
        #expect(entry.fields.map(\.0) == ["kafka.source"] && entry.declaredFieldCount == 1)
        let back = Self.streamEntry(pin, id: "5-1", entry.fields)
        #expect(try Self.sent(back) == Sent(value: "", valueIsNull: true, key: nil, headers: [], timestamp: nil, sourcePartition: 3))

        // An empty value is not a null one.
        let empty = Self.kafkaRecord(pin, value: "", key: "", headers: [], timestamp: nil)
        let emptyEntry = EntryRecorder()
        #expect(empty.writeEntry(to: emptyEntry, stream: Array("copy".utf8), scratch: RecordScratch()))
        #expect(emptyEntry.fields.map(\.0) == ["value", "key", "kafka.source"])
        let emptyBack = try Self.sent(Self.streamEntry(pin, id: "5-2", emptyEntry.fields))
        #expect(!emptyBack.valueIsNull && emptyBack.value == "" && emptyBack.key == "")
    }

    @Test("only an entry whose last field is kafka.source, after mapping fields only, holds a record")
    func whichEntriesAreRecords() {
        let pin = PinnedBytes()
        #expect(Self.streamEntry(pin, id: "1-0", [("kafka.source", "t/0/1")]).recordSourceField == 0)
        #expect(Self.streamEntry(pin, id: "1-0", [("value", "v"), ("header-null.h", ""), ("kafka.source", "t/0/1")]).recordSourceField == 2)
        #expect(Self.streamEntry(pin, id: "1-0", [("kafka.source", "t/0/1"), ("value", "v")]).recordSourceField == nil)
        #expect(Self.streamEntry(pin, id: "1-0", [("amount", "5"), ("kafka.source", "t/0/1")]).recordSourceField == nil)
        #expect(Self.streamEntry(pin, id: "1-0", [("value", "v")]).recordSourceField == nil)
        #expect(Self.streamEntry(pin, id: "1-0", []).recordSourceField == nil)
        let list = Record()
        list.origin = .list
        #expect(list.recordSourceField == nil)
    }

    @Test("kafka.source's PARTITION: the number between the last two slashes, or none")
    func sourcePartition() {
        let cases: [(String, Int32?)] = [
            ("orders/3/42", 3), ("orders/0/0", 0), ("t/999999999/1", 999_999_999),
            ("a.b-c_d/12/", 12),
            ("orders/3", nil), ("orders", nil), ("", nil), ("orders//42", nil), ("orders/-1/4", nil),
            ("orders/3a/1", nil), ("orders/1234567890/1", nil), ("/7/", 7),
        ]
        for (text, partition) in cases {
            let found = Array(text.utf8).withUnsafeBytes { RecordMapping.partition(ofSource: $0) }
            #expect(found == partition, "\(text)")
        }
    }

    @Test("any other entry becomes the JSON object of its fields, with its id as a header and its time as the timestamp")
    func plainEntryToRecord() throws {
        let pin = PinnedBytes()
        let entry = Self.streamEntry(pin, id: "1700000000123-7", [("user", "ann"), ("amount", "5")])
        #expect(try Self.sent(entry) == Sent(value: #"{"user":"ann","amount":"5"}"#, valueIsNull: false, key: nil,
                                              headers: [("evt.stream.id", "1700000000123-7")],
                                              timestamp: 1_700_000_000_123, sourcePartition: nil))
        // --key-field names the field that keys it.
        #expect(try Self.sent(entry, keyField: KeyField("user")).key == "ann")
        #expect(try Self.sent(entry, keyField: KeyField("missing")).key == nil)
    }

    @Test("such a record going to a stream is that entry again, its id asked back")
    func plainEntryRoundTrip() throws {
        let pin = PinnedBytes()
        let entry = Self.streamEntry(pin, id: "1700000000123-7", [("user", "ann"), ("amount", "5")])
        let sent = try Self.sent(entry)
        let record = Self.kafkaRecord(pin, value: sent.value, key: nil, headers: sent.headers, timestamp: sent.timestamp)
        let written = EntryRecorder()
        #expect(record.writeEntry(to: written, stream: Array("back".utf8), scratch: RecordScratch()))
        #expect(written.restoredID == "1700000000123-7")
        #expect(written.fields.map(\.0) == ["user", "amount"] && written.fields.map(\.1) == ["ann", "5"])

        // A batch that cannot take an entry restoring its id says so (the target commits first).
        let refusing = EntryRecorder()
        refusing.refusesRestoring = true
        #expect(!record.writeEntry(to: refusing, stream: Array("back".utf8), scratch: RecordScratch()))
    }

    @Test("--exactly-once carries an entry that held a record through a topic and back to the same entry")
    func exactlyOnceRoundTrip() throws {
        let pin = PinnedBytes()
        let fields = [("value", "v"), ("key", "k"), ("header.h", "x"), ("kafka.source", "orders/2/9")]
        let entry = Self.streamEntry(pin, id: "88-1", fields)
        let sent = try Self.sent(entry, exactlyOnce: true)
        #expect(sent.headers.map(\.0) == ["h", "evt.kafka.source", "evt.stream.id"])
        #expect(sent.headers.map(\.1) == ["x", "orders/2/9", "88-1"])
        #expect(sent.sourcePartition == 2)

        let record = Self.kafkaRecord(pin, value: sent.value, key: sent.key, headers: sent.headers, timestamp: sent.timestamp)
        let written = EntryRecorder()
        #expect(record.writeEntry(to: written, stream: Array("back".utf8), scratch: RecordScratch()))
        #expect(written.restoredID == "88-1")
        #expect(written.fields.map(\.0) == fields.map(\.0) && written.fields.map(\.1) == fields.map(\.1))
    }

    @Test("a list item is a value and nothing else, both ways")
    func listItem() throws {
        let pin = PinnedBytes()
        let item = Record()
        item.origin = .list
        item.value = pin("job-1")
        let entry = EntryRecorder()
        #expect(item.writeEntry(to: entry, stream: Array("s".utf8), scratch: RecordScratch()))
        #expect(entry.fields.map(\.0) == ["value"] && entry.fields.map(\.1) == ["job-1"] && entry.restoredID == nil)
        #expect(try Self.sent(item) == Sent(value: "job-1", valueIsNull: false, key: nil, headers: [], timestamp: nil, sourcePartition: nil))
    }
}
