/// Writes events to a Redis stream (XADD), list (LPUSH) or channel (PUBLISH), pipelined:
/// commands are built into one buffer and written in large batches, replies are read as
/// they arrive, and each reply is matched to its input line in FIFO order.
final class RedisSink: EventSink {
    let tally = DeliveryTally()
    private let connection: RedisConnection
    private let kind: RedisKind
    private let name: [UInt8]
    private let maxlen: [UInt8]?
    private let requireSubscribers: Bool
    private let timeoutMs: Int
    /// Lines whose command was sent (or is in `connection.outgoing`) and not yet answered.
    private var inFlight = LineQueue()
    /// How many of the newest `inFlight` commands are still in `connection.outgoing`.
    private var unsent = 0
    private var lastLine = 0
    private var warnedAboutDroppedParts = false
    private var flushing = false
    /// Unescaped field names and values of the current stream entry.
    private var scratch: [UInt8] = []
    private var fieldRanges: [Range<Int>] = []

    private static let batchBytes = 256 << 10
    private static let maxInFlight = 16_384

    init(server: RedisServerAddress, kind: RedisKind, name: String, options: SinkOptions) throws {
        connection = try RedisConnection(server)
        connection.writeStallLimitMs = options.timeoutMs
        self.kind = kind
        self.name = Array(name.utf8)
        self.maxlen = options.maxlen.map { Array(String($0).utf8) }
        self.requireSubscribers = options.requireSubscribers
        self.timeoutMs = options.timeoutMs
    }

    func send(_ event: borrowing OutgoingEvent) throws {
        if !warnedAboutDroppedParts && (event.key != nil || event.headers != nil || event.timestamp != nil) {
            // --envelope records from Kafka: a Redis entry or message holds the value only.
            warnedAboutDroppedParts = true
            Diagnostics.print("warning: a Redis \(kind.rawValue) keeps only the value: the key, headers and timestamp of the events are dropped (first at event \(event.line)). To keep them, copy into a stream with evt copy-between.")
        }
        switch kind {
        case .stream: appendXADD(event)
        case .list: appendCommand("LPUSH", event.value)
        case .channel: appendCommand("PUBLISH", event.value)
        }
        inFlight.append(event.line)
        lastLine = event.line
        unsent += 1
        do {
            if connection.outgoing.bytes.count >= RedisSink.batchBytes {
                try flush()
                _ = try readReplies(waitMs: 0)
            }
            // Bounded: wait for answers, but never longer than --timeout without one.
            var lastAnswer = monotonicMilliseconds()
            while inFlight.count > RedisSink.maxInFlight && !Signals.stopRequested {
                if try readReplies(waitMs: 1000) > 0 {
                    lastAnswer = monotonicMilliseconds()
                } else if monotonicMilliseconds() - lastAnswer >= timeoutMs {
                    throw connection.lost("no answer within --timeout (\(timeoutMs / 1000)s)")
                }
            }
        } catch let lost as EvtError where lost.cause == .connectionLost || lost.cause == .stopped {
            connectionLost(lost, announce: false)   // the error below says it
            throw EvtError(lost.cause, "\(lost.message); stopped reading input after line \(event.line).")
        }
    }

    func inputStalled() throws {
        guard unsent > 0 else { return }
        do {
            try flush()
            _ = try readReplies(waitMs: 0)
        } catch let lost as EvtError where lost.cause == .connectionLost || lost.cause == .stopped {
            connectionLost(lost, announce: false)
            throw EvtError(lost.cause, "\(lost.message); stopped reading input after line \(lastLine).")
        }
    }

    /// Writes the queued commands; a failure part-way leaves unknown which reached the server.
    private func flush() throws {
        flushing = true
        try connection.flushWrites()
        flushing = false
        unsent = 0
    }

    func finish() {
        do {
            try flush()
            var deadline = monotonicMilliseconds() + timeoutMs
            var graceGiven = false
            while inFlight.count > 0 {
                if let grace = Signals.graceLeftMs, !graceGiven {
                    // Stopped by a signal: answers get what is left of the grace, not the timeout.
                    graceGiven = true
                    deadline = min(deadline, monotonicMilliseconds() + grace)
                }
                let left = deadline - monotonicMilliseconds()
                if left <= 0 {
                    connectionLost(graceGiven
                        ? EvtError(.stopped, "stopped by a signal: \(connection.address.description) gave no answer within \(Signals.graceMs / 1000) s of it")
                        : connection.lost("no answer within --timeout (\(timeoutMs / 1000)s)"))
                    return
                }
                _ = try readReplies(waitMs: Int32(min(left, 1000)))
            }
        } catch let lost as EvtError where lost.cause == .connectionLost || lost.cause == .stopped {
            connectionLost(lost)
        } catch {
            connectionLost(connection.lost("\(error)"))
        }
    }

    /// Commands written but unanswered may or may not have been applied (unconfirmed); the
    /// newest `unsent` were never written (not delivered) — unless the write itself failed.
    /// `lost.cause` is `.stopped` when a stop signal's grace ran out, not the connection.
    private func connectionLost(_ lost: EvtError, announce: Bool = true) {
        if announce { Diagnostics.print(lost.message) }
        let byStop = lost.cause == .stopped
        let neverWritten = flushing ? 0 : unsent
        let written = inFlight.count - neverWritten
        for index in 0..<inFlight.count {
            let line = inFlight.popFirst()!
            if index < written {
                tally.unconfirmed(line: line, byStop: byStop)
            } else if byStop {
                tally.failed(line: line, reason: "not sent: evt was stopped by a signal first", cause: .stopped)
            } else {
                tally.failed(line: line, reason: "not sent: the connection was lost first", cause: .connectionLost)
            }
        }
        connection.outgoing.removeAll()
        unsent = 0
    }

    /// Reads the answers that arrive within `waitMs`; how many.
    private func readReplies(waitMs: Int32) throws -> Int {
        var wait = waitMs
        var count = 0
        while inFlight.count > 0 {
            let result = try connection.nextReply(waitMs: wait, stopOnSignal: false) { reply in
                let line = inFlight.popFirst()!
                switch reply.kind {
                case .error:
                    tally.failed(line: line, reason: "\(reply.text) (\(kind.rawValue) \(String(decoding: name, as: UTF8.self)))",
                                 cause: RedisErrorReply.cause(reply.text))
                case .integer where kind == .channel && requireSubscribers && reply.integer == 0:
                    tally.failed(line: line, reason: "no subscriber was listening (--require-subscribers)")
                default:
                    tally.delivered()
                }
            }
            if result != .reply { return count }
            count += 1
            wait = 0
        }
        return count
    }

    private func appendCommand(_ command: String, _ value: UnsafeRawBufferPointer) {
        connection.outgoing.beginCommand(arguments: 3)
        connection.outgoing.argument(command)
        connection.outgoing.argument(name)
        connection.outgoing.argument(value)
    }

    /// An object becomes the entry's fields (string values unescaped, others as JSON text);
    /// anything else one field named `value` holding the exact bytes.
    private func appendXADD(_ event: borrowing OutgoingEvent) {
        scratch.removeAll(keepingCapacity: true)
        fieldRanges.removeAll(keepingCapacity: true)
        if event.valueKind == .object {
            JSON.forEachMember(ofObject: event.value) { keyRange, valueRange, valueKind in
                let start = scratch.count
                JSON.appendUnescaped(stringLiteral: UnsafeRawBufferPointer(rebasing: event.value[keyRange]), to: &scratch)
                fieldRanges.append(start..<scratch.count)
                let valueStart = scratch.count
                let valueBytes = UnsafeRawBufferPointer(rebasing: event.value[valueRange])
                if valueKind == .string {
                    JSON.appendUnescaped(stringLiteral: valueBytes, to: &scratch)
                } else {
                    scratch.append(contentsOf: valueBytes)
                }
                fieldRanges.append(valueStart..<scratch.count)
            }
        }
        let trim = maxlen.map { _ in 3 } ?? 0
        if fieldRanges.isEmpty {
            connection.outgoing.beginCommand(arguments: 5 + trim)
            appendXADDHead()
            connection.outgoing.argument("value")
            connection.outgoing.argument(event.value)
            return
        }
        connection.outgoing.beginCommand(arguments: 3 + trim + fieldRanges.count)
        appendXADDHead()
        scratch.withUnsafeBytes { bytes in
            for range in fieldRanges {
                connection.outgoing.argument(UnsafeRawBufferPointer(rebasing: bytes[range]))
            }
        }
    }

    private func appendXADDHead() {
        connection.outgoing.argument("XADD")
        connection.outgoing.argument(name)
        if let maxlen {
            connection.outgoing.argument("MAXLEN")
            connection.outgoing.argument("~")
            connection.outgoing.argument(maxlen)
        }
        connection.outgoing.argument("*")
    }
}

/// A FIFO of line numbers that reuses its storage.
struct LineQueue {
    private var storage: [Int] = []
    private var head = 0

    var count: Int { storage.count - head }

    mutating func append(_ line: Int) { storage.append(line) }

    mutating func popFirst() -> Int? {
        guard head < storage.count else { return nil }
        let line = storage[head]
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 65_536 && head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return line
    }
}
