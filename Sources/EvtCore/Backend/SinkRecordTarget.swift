/// Any target but a stream, through its publish sink (a topic, a list, a channel): each
/// record becomes an event with publish's delivery rules (RecordMapping), and a drain is a
/// barrier: every event sent so far acknowledged, or an error that says which were not.
final class SinkRecordTarget: RecordTarget {
    private let sink: EventSink
    private let description: String
    private let keyField: KeyField?
    /// --exactly-once: records carry their entry id, and the first refused one stops the copy.
    private let exactlyOnce: Bool
    private let alreadyCopied: AlreadyCopiedFilter?
    private let unit: String
    private let encoding: SchemaEncoding?
    private let scratch = RecordScratch()
    private var sent = 0
    private(set) var confirmed: SourcePosition?
    private(set) var delivered = 0
    var keepsCheckpoint: Bool { false }
    var confirmsAsItGoes: Bool { false }

    init(sink: EventSink, description: String, options: CopyOptions, alreadyCopied: AlreadyCopiedFilter? = nil) {
        self.sink = sink
        self.description = description
        keyField = options.keyField
        exactlyOnce = options.exactlyOnce
        self.alreadyCopied = alreadyCopied
        unit = options.unit
        encoding = options.encoding
    }

    func write(_ record: Record, after cursor: SourceCursor) throws -> Bool {
        var written = true
        try record.withOutgoingEvent(number: sent + 1, keyField: keyField, exactlyOnce: exactlyOnce, scratch: scratch) { event in
            if let alreadyCopied, let id = StreamID(record.id), alreadyCopied.contains(id, event) {
                written = false
                return
            }
            if event.valueSchemaID != nil || event.keySchemaID != nil, encoding == nil {
                throw EvtError(.usage, "\(description): entry \(String(decoding: record.id, as: UTF8.self)) holds a value (or key) that a registry's schema decoded (value.schema_id): give --schema-registry URL (or set EVT_SCHEMA_REGISTRY_URL) so it is encoded again, byte for byte.")
            }
            sent += 1
            do {
                if let encoding {
                    do {
                        // A record's value is JSON to encode when its bytes are JSON (a JSON
                        // topic copied into an Avro one), else the text of a string.
                        var event = copy event
                        if event.valueKind == nil && event.valueSchemaID == nil && !event.valueIsNull {
                            event.valueKind = QuickCheck.kind(of: event.value)
                        }
                        try encoding.encode(event) { try sink.send($0) }
                    } catch let bad as BadLine {
                        // A record that does not fit the target's schema: it cannot be sent,
                        // and nothing after it may be (the checkpoint stays before it).
                        sent -= 1
                        try drain(at: cursor)
                        throw EvtError(.badInput, "\(description): \(unit) \(sent + 1) (\(Self.place(of: record))): \(bad.reason)")
                    }
                } else {
                    try sink.send(event)
                }
            } catch let stopped as SinkStopped {
                // Not sent: the target stopped answering. The drain reports what became of
                // the events before it; either way the copy stops before this one.
                sent -= 1
                try drain(at: cursor)
                throw EvtError(stopped.cause, "\(description): \(stopped.reason)")
            }
            if exactlyOnce && !sink.tally.failedLines.isEmpty {
                try drain(at: cursor)   // reports the failure: nothing after a gap may be sent
            }
        }
        return written
    }

    func reached(_ cursor: SourceCursor, batchEnded: Bool) throws {}

    /// `topic orders partition 3 offset 42`, `stream orders entry 1-0`, for a message.
    private static func place(of record: Record) -> String { SchemaDecoding.place(of: record) }

    func drain(at cursor: SourceCursor) throws {
        sink.finish()
        guard sink.tally.allDelivered(sent: sent) else {
            for message in sink.tally.summary(sent: sent, unit: unit) { Diagnostics.print(message) }
            // A lost or starting target is retried by a bridge (-f) from the confirmed position;
            // what a stop signal cut short ends the copy with 130/143.
            throw EvtError(sink.tally.cause,
                           "\(description) did not acknowledge every event; the checkpoint stays before them, so a rerun copies them again.")
        }
        delivered = sent
        confirmed = cursor.position
    }
}

/// Which records a target has already: an --exactly-once copy resuming skips them.
protocol AlreadyCopiedFilter: AnyObject {
    func contains(_ id: StreamID, _ event: borrowing OutgoingEvent) -> Bool
}
