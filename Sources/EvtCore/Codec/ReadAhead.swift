#if canImport(Glibc)
import Glibc
#endif

/// Events decoded ahead of the thread that sends them: publish reads and checks lines on one
/// thread (and encodes them with a schema on a second) while the sending thread hands the
/// block before to the sink. Each event's bytes are copied into the block's one buffer, so a
/// block outlives the line reader's buffer and the decoder's scratch; the buffers keep their
/// capacity from block to block.
final class EventBlock {
    /// An `OutgoingEvent` with its buffers as ranges of `bytes`.
    struct Event {
        var line: Int
        var value: Range<Int>
        var valueKind: JSONKind?
        var valueIsNull: Bool
        var key: Range<Int>?
        var keyKind: JSONKind?
        /// Into `headerEntries`.
        var headers: Range<Int>?
        var partition: Int32?
        var sourcePartition: Int32?
        var timestamp: Int64?
        var redisName: Range<Int>?
        var valueSchemaID: Int32?
        var keySchemaID: Int32?
        /// Where it came from, for a later stage that may find the line bad: the whole line,
        /// into `bytes` (kept only for such a stage), and its input file and line there.
        var input: Range<Int>?
        var source: InputLine
    }

    /// An input line's file (an index into `InputFiles.files`) and its number in that file.
    struct InputLine {
        var file: Int
        var line: Int
    }

    /// A line that cannot be sent, in its place among the events.
    struct BadLine {
        /// How many of the block's events come before it.
        let position: Int
        let line: Int
        /// ` (FILE line N)`, or nothing for stdin.
        let place: String
        let reason: String
        let column: Int?
        /// The line's bytes, into `bytes` (for `--dead-letter`).
        let input: Range<Int>
    }

    private var bytes: [UInt8] = []
    private var events: [Event] = []
    private var badLines: [BadLine] = []
    private var headerEntries: [(name: Range<Int>, value: Range<Int>?)] = []
    /// The input paused after this block: the sender lets the sink send what it holds.
    var inputStalled = false
    /// The number of the last input line the block accounts for (sent, bad or empty).
    var lastLine = 0

    /// Big enough that handing blocks over costs nothing per event, small enough that a few
    /// in flight keep memory flat.
    var isFull: Bool { events.count >= 1024 || bytes.count >= 256 << 10 }
    var isEmpty: Bool { events.isEmpty && badLines.isEmpty }

    func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        events.removeAll(keepingCapacity: true)
        badLines.removeAll(keepingCapacity: true)
        headerEntries.removeAll(keepingCapacity: true)
        inputStalled = false
    }

    private func keep(_ buffer: UnsafeRawBufferPointer) -> Range<Int> {
        let start = bytes.count
        bytes.append(contentsOf: buffer)
        return start..<bytes.count
    }

    /// `input`: the whole line, for a stage after this one that may find it bad (it is not
    /// copied a second time when it is the value itself, as a plain JSON line is).
    func append(_ event: borrowing OutgoingEvent, from source: InputLine, input: UnsafeRawBufferPointer? = nil) {
        var headers: Range<Int>?
        if let eventHeaders = event.headers, !eventHeaders.isEmpty {
            let first = headerEntries.count
            let base = eventHeaders.bytes.withUnsafeBytes { keep($0) }.lowerBound
            for entry in eventHeaders.entries {
                let name = (base + entry.name.lowerBound)..<(base + entry.name.upperBound)
                headerEntries.append((name, entry.value.map { (base + $0.lowerBound)..<(base + $0.upperBound) }))
            }
            headers = first..<headerEntries.count
        }
        let value = event.valueIsNull ? 0..<0 : keep(event.value)
        var inputRange: Range<Int>?
        if let input {
            let isTheValue = !event.valueIsNull && input.baseAddress == event.value.baseAddress && input.count == event.value.count
            inputRange = isTheValue ? value : keep(input)
        }
        events.append(Event(line: event.line, value: value,
                            valueKind: event.valueKind, valueIsNull: event.valueIsNull,
                            key: event.key.map(keep), keyKind: event.keyKind, headers: headers,
                            partition: event.partition, sourcePartition: event.sourcePartition,
                            timestamp: event.timestamp, redisName: event.redisName.map(keep),
                            valueSchemaID: event.valueSchemaID, keySchemaID: event.keySchemaID,
                            input: inputRange, source: source))
    }

    func appendBadLine(line: Int, place: String, reason: String, column: Int?, input: UnsafeRawBufferPointer) {
        badLines.append(BadLine(position: events.count, line: line, place: place, reason: reason,
                                column: column, input: keep(input)))
    }

    /// Calls `event` for each event (with where it came from, and its whole line if kept) and
    /// `badLine` for each bad line, in input order; `headers` carries an event's headers for
    /// the duration of its call.
    func forEach(headers: EventHeaders,
                 event body: (borrowing OutgoingEvent, InputLine, UnsafeRawBufferPointer?) throws -> Void,
                 badLine: (BadLine, UnsafeRawBufferPointer) throws -> Void) throws {
        try bytes.withUnsafeBytes { buffer in
            var nextBad = 0
            func badLinesBefore(_ position: Int) throws {
                while nextBad < badLines.count && badLines[nextBad].position == position {
                    let bad = badLines[nextBad]
                    nextBad += 1
                    try badLine(bad, UnsafeRawBufferPointer(rebasing: buffer[bad.input]))
                }
            }
            for position in events.indices {
                try badLinesBefore(position)
                let kept = events[position]
                var event = OutgoingEvent(line: kept.line, value: UnsafeRawBufferPointer(rebasing: buffer[kept.value]),
                                          valueKind: kept.valueKind, valueIsNull: kept.valueIsNull)
                event.key = kept.key.map { UnsafeRawBufferPointer(rebasing: buffer[$0]) }
                event.keyKind = kept.keyKind
                if let range = kept.headers {
                    headers.removeAll()
                    for entry in headerEntries[range] {
                        headers.append(name: UnsafeRawBufferPointer(rebasing: buffer[entry.name]),
                                       value: entry.value.map { UnsafeRawBufferPointer(rebasing: buffer[$0]) })
                    }
                    event.headers = headers
                }
                event.partition = kept.partition
                event.sourcePartition = kept.sourcePartition
                event.timestamp = kept.timestamp
                event.redisName = kept.redisName.map { UnsafeRawBufferPointer(rebasing: buffer[$0]) }
                event.valueSchemaID = kept.valueSchemaID
                event.keySchemaID = kept.keySchemaID
                try body(event, kept.source, kept.input.map { UnsafeRawBufferPointer(rebasing: buffer[$0]) })
            }
            try badLinesBefore(events.count)
        }
    }
}

/// Hands blocks from the thread that decodes them to the thread that sends them, in order,
/// with a fixed number of blocks in all: the decoder waits for an empty one when it is a
/// whole pool ahead, which bounds memory.
final class EventBlockExchange: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var empty: [EventBlock]
    private var full: [EventBlock] = []
    private var decodingDone = false
    private var cancelled = false

    init(blocks: Int = 4) {
        empty = (0..<blocks).map { _ in EventBlock() }
        pthread_mutex_init(lock, nil)
        pthread_cond_init(changed, nil)
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(lock)
        changed.deallocate()
        lock.deallocate()
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return body()
    }

    /// Decoding side: an empty block, waiting for one; nil once the sender cancelled.
    func emptyBlock() -> EventBlock? {
        locked {
            while empty.isEmpty && !cancelled { pthread_cond_wait(changed, lock) }
            if cancelled { return nil }
            let block = empty.removeLast()
            block.removeAll()
            return block
        }
    }

    /// Decoding side: a block to send, after those handed before it.
    func hand(_ block: EventBlock) {
        locked {
            full.append(block)
            pthread_cond_broadcast(changed)
        }
    }

    /// Decoding side: nothing more will come.
    func finishDecoding() {
        locked {
            decodingDone = true
            pthread_cond_broadcast(changed)
        }
    }

    var isCancelled: Bool { locked { cancelled } }

    /// Sending side: the next block, waiting for it; nil once decoding is done and every
    /// block was taken.
    func nextBlock() -> EventBlock? {
        locked {
            while full.isEmpty && !decodingDone { pthread_cond_wait(changed, lock) }
            return full.isEmpty ? nil : full.removeFirst()
        }
    }

    /// Sending side: a block that was sent, for the decoder to fill again.
    func recycle(_ block: EventBlock) {
        locked {
            empty.append(block)
            pthread_cond_broadcast(changed)
        }
    }

    /// Sending side: stop the decoder (it sees it at its next block or input pause).
    func cancel() {
        locked {
            cancelled = true
            pthread_cond_broadcast(changed)
        }
    }
}
