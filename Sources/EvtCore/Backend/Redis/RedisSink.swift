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

    /// On a Redis Cluster: the commands in flight, to send again where a MOVED or ASK answer
    /// says their slot is served now (such an answer means the command was not applied).
    private var sentCommands: SentCommands?
    /// Redirected commands waiting to go to the node their answers named, in input order.
    private var redirected = RedirectedCommands()
    /// Rounds of redirects in a row without a delivery in between: a slot map that keeps
    /// contradicting itself ends in failed lines, not a loop.
    private var redirectRounds = 0

    /// `--wait-replicas N`: each written batch ends with `WAIT N --timeout`, and its events
    /// count as delivered only once that many replicas have them.
    private let waitReplicas: Int?
    /// Lines the master stored whose batch's WAIT has not answered yet.
    private var awaitingReplicas: [Int] = []
    /// Stands for a WAIT in `inFlight` (input lines are numbered from 1).
    private static let waitMarker = Int.min

    init(server: RedisServerAddress, kind: RedisKind, name: String, options: SinkOptions) throws {
        connection = try RedisConnection.open(server, key: kind == .channel ? nil : name)
        connection.writeStallLimitMs = options.timeoutMs
        self.kind = kind
        self.name = Array(name.utf8)
        self.maxlen = options.maxlen.map { Array(String($0).utf8) }
        self.requireSubscribers = options.requireSubscribers
        self.timeoutMs = options.timeoutMs
        self.waitReplicas = options.waitReplicas
        // Kept whatever the server: a cluster shows itself only by its first MOVED answer.
        sentCommands = SentCommands()
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
        sentCommands?.noteCommand(queuedBytes: connection.outgoing.bytes.count)
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
        if let waitReplicas, unsent > 0 {
            connection.outgoing.command(["WAIT", String(waitReplicas), String(timeoutMs)])
            inFlight.append(RedisSink.waitMarker)
            sentCommands?.noteCommand(queuedBytes: connection.outgoing.bytes.count)
        }
        sentCommands?.willSend(connection.outgoing)
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
        // Stored on the master, their replication unknown.
        for line in awaitingReplicas { tally.unconfirmed(line: line, byStop: byStop) }
        awaitingReplicas.removeAll()
        for index in 0..<inFlight.count {
            let line = inFlight.popFirst()!
            if line == RedisSink.waitMarker { continue }
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
        sentCommands?.removeAll()
        for line in redirected.lines {
            tally.failed(line: line, reason: "not sent again after a cluster redirect: the connection was lost first", cause: lost.cause)
        }
        redirected = RedirectedCommands()
    }

    /// Reads the answers that arrive within `waitMs`; how many. On a cluster, commands whose
    /// answer was MOVED or ASK are then sent again where their slot is served now.
    private func readReplies(waitMs: Int32) throws -> Int {
        var wait = waitMs
        var count = 0
        while inFlight.count > 0 {
            let result = try connection.nextReply(waitMs: wait, stopOnSignal: false) { reply in
                let line = inFlight.popFirst()!
                if line == RedisSink.waitMarker {
                    _ = sentCommands?.answered()
                    settleWait(reply)
                    return
                }
                if let sent = sentCommands?.answered() {
                    if reply.kind == .error, let redirect = ClusterRedirect(errorText: reply.text) {
                        redirected.add(line: line, command: sentCommands!.bytes(of: sent), to: redirect)
                        return
                    }
                }
                record(reply, line: line)
            }
            if result != .reply { break }
            count += 1
            wait = 0
        }
        if !redirected.isEmpty && !resending { try resendRedirected() }
        return count
    }

    private func record(_ reply: RedisReplyView, line: Int) {
        switch reply.kind {
        case .error:
            tally.failed(line: line, reason: "\(reply.text) (\(kind.rawValue) \(String(decoding: name, as: UTF8.self)))",
                         cause: RedisErrorReply.cause(reply.text))
        case .integer where kind == .channel && requireSubscribers && reply.integer == 0:
            tally.failed(line: line, reason: "no subscriber was listening (--require-subscribers)")
        default:
            if waitReplicas == nil { tally.delivered() } else { awaitingReplicas.append(line) }
            redirectRounds = 0
        }
    }

    /// A batch's WAIT answered with the number of replicas that have all of the connection's
    /// writes so far: its events are delivered, or (too few replicas) on the master only.
    private func settleWait(_ reply: RedisReplyView) {
        let wanted = waitReplicas ?? 0
        if reply.kind == .integer && reply.integer >= wanted {
            tally.delivered(count: awaitingReplicas.count)
        } else {
            let reason = reply.kind == .integer
                ? "stored on the master, but only \(reply.integer) of \(wanted) replicas had it within --timeout (\(timeoutMs / 1000)s); a failover now could lose it"
                : "stored on the master, but WAIT failed: \(reply.text)"
            for line in awaitingReplicas { tally.failed(line: line, reason: reason, cause: .transient(code: "WAIT")) }
        }
        awaitingReplicas.removeAll()
    }

    private var resending = false

    /// A cluster slot moved (MOVED) or is moving (ASK): every command still in flight to the
    /// old node is answered first (those of the slot get the same answer), then the
    /// redirected ones go, in input order, to the slot's new master (MOVED; this connection
    /// follows it) or once to the importing node after ASKING (ASK, on a second connection).
    private func resendRedirected() throws {
        resending = true
        defer { resending = false }
        try flush()
        var lastAnswer = monotonicMilliseconds()
        while inFlight.count > 0 {
            if try readReplies(waitMs: 1000) > 0 {
                lastAnswer = monotonicMilliseconds()
            } else if monotonicMilliseconds() - lastAnswer >= timeoutMs {
                throw connection.lost("no answer within --timeout (\(timeoutMs / 1000)s)")
            }
        }
        while !redirected.isEmpty {
            let batch = redirected
            redirected = RedirectedCommands()
            redirectRounds += 1
            guard redirectRounds <= 10 else {
                for line in batch.lines {
                    tally.failed(line: line, reason: "the cluster kept redirecting it (MOVED/ASK 10 times in a row); check the cluster with redis-cli --cluster check",
                                 cause: .transient(code: "CLUSTERDOWN"))
                }
                return
            }
            let target = batch.target!
            let node = RedisNode(host: target.host.isEmpty ? connection.address.host : target.host, port: target.port)
            if target.asking {
                // One command at a time may go to the importing node, each after ASKING.
                let importing = try RedisConnection(connection.address.at(node))
                for index in 0..<batch.count {
                    importing.outgoing.command(["ASKING"])
                    importing.outgoing.appendCommand(batch.command(at: index))
                }
                if let waitReplicas { importing.outgoing.command(["WAIT", String(waitReplicas), String(timeoutMs)]) }
                try importing.flushWrites()
                var answered = 0
                while answered < batch.count {
                    let line = batch.line(at: answered)
                    var wait = try importing.nextReply(waitMs: Int32(clamping: timeoutMs), stopOnSignal: false) { _ in }
                    if wait == .reply {
                        wait = try importing.nextReply(waitMs: Int32(clamping: timeoutMs), stopOnSignal: false) { reply in
                            if reply.kind == .error, let again = ClusterRedirect(errorText: reply.text) {
                                redirected.add(line: line, command: batch.command(at: answered), to: again)
                            } else {
                                record(reply, line: line)
                            }
                        }
                    }
                    if wait != .reply { break }
                    answered += 1
                }
                if answered == batch.count && waitReplicas != nil {
                    if try importing.nextReply(waitMs: Int32(clamping: timeoutMs) + 1000, stopOnSignal: false, settleWait) != .reply {
                        for line in awaitingReplicas { tally.unconfirmed(line: line) }
                        awaitingReplicas.removeAll()
                    }
                }
                for index in answered..<batch.count { tally.unconfirmed(line: batch.line(at: index)) }
            } else {
                try connection.reconnect(to: node)
                for index in 0..<batch.count {
                    connection.outgoing.appendCommand(batch.command(at: index))
                    inFlight.append(batch.line(at: index))
                    sentCommands?.noteCommand(queuedBytes: connection.outgoing.bytes.count)
                    unsent += 1
                }
                try flush()
                while inFlight.count > 0 {
                    if try readReplies(waitMs: 1000) > 0 {
                        lastAnswer = monotonicMilliseconds()
                    } else if monotonicMilliseconds() - lastAnswer >= timeoutMs {
                        throw connection.lost("no answer within --timeout (\(timeoutMs / 1000)s)")
                    }
                }
            }
        }
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

/// The commands a cluster sink sent and has no answer to yet, oldest first, as the bytes
/// they were written as. Positions count every byte ever kept, so `ends` stay valid when the
/// answered front is dropped.
struct SentCommands {
    private var bytes: [UInt8] = []
    /// The position of bytes[0].
    private var base = 0
    /// Where the oldest unanswered command starts.
    private var head = 0
    private var ends = LineQueue()

    /// A command was just queued; `queuedBytes` is the queue's length after it.
    mutating func noteCommand(queuedBytes: Int) { ends.append(base + bytes.count + queuedBytes) }

    /// The queue is about to be written.
    mutating func willSend(_ queue: RespCommandBuffer) { bytes.append(contentsOf: queue.bytes) }

    /// The oldest command was answered: its place, whose bytes stay readable until the next call.
    mutating func answered() -> Range<Int> {
        if head == base + bytes.count {
            base = head
            bytes.removeAll(keepingCapacity: true)
        } else if head - base >= 1 << 20 && (head - base) * 2 >= bytes.count {
            bytes.removeFirst(head - base)
            base = head
        }
        let end = ends.popFirst()!
        let range = head..<end
        head = end
        return range
    }

    /// The bytes of the command `answered()` returned last.
    func bytes(of range: Range<Int>) -> ArraySlice<UInt8> {
        bytes[(range.lowerBound - base)..<(range.upperBound - base)]
    }

    mutating func removeAll() {
        while ends.count > 0 { _ = ends.popFirst() }
        base += bytes.count
        head = base
        bytes.removeAll(keepingCapacity: true)
    }
}

/// Commands a cluster answered with MOVED or ASK, to send again in input order to the node
/// named in the newest such answer.
struct RedirectedCommands {
    private var bytes: [UInt8] = []
    private var ends: [Int] = []
    private(set) var lines: [Int] = []
    private(set) var target: (host: String, port: Int, asking: Bool)?

    var isEmpty: Bool { lines.isEmpty }
    var count: Int { lines.count }

    mutating func add(line: Int, command: ArraySlice<UInt8>, to redirect: ClusterRedirect) {
        bytes.append(contentsOf: command)
        ends.append(bytes.count)
        lines.append(line)
        switch redirect {
        case .moved(_, let host, let port): target = (host, port, false)
        case .ask(_, let host, let port): target = (host, port, true)
        }
    }

    func line(at index: Int) -> Int { lines[index] }

    func command(at index: Int) -> ArraySlice<UInt8> {
        bytes[(index == 0 ? 0 : ends[index - 1])..<ends[index]]
    }
}
