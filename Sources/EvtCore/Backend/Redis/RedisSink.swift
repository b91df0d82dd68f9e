/// Writes events to a Redis stream (XADD), list (LPUSH) or channel (PUBLISH), pipelined:
/// commands are built into one buffer per connection and written in large batches, replies
/// are read as they arrive, and each reply is matched to its input line in FIFO order.
///
/// On a Redis Cluster there is one connection (a lane) per master that the events' keys
/// lead to, each pipelined on its own. A command answered MOVED or ASK was not applied: it
/// goes again, in input order, to the node the answer names (after ASKING for an ASK).
/// `stream:*` / `list:*` targets take each event's key from its envelope record.
///
/// Order per key holds because a slot's unanswered commands are only ever on one lane, in
/// input order: the sink changes where a slot goes (its slot map, a redirect) only once every
/// lane is drained, and sends a slot's redirected commands to one node at a time.
final class RedisSink: EventSink {
    let tally = DeliveryTally()
    private let server: RedisServerAddress
    private let router: ClusterRouter
    private let kind: RedisKind
    /// The key of every event, or nil for `*`: each event's `redisName`.
    private let fixedName: [UInt8]?
    private let trimOnAdd: StreamTrimOnAdd?
    /// `--maxlen`'s N, as XADD's argument.
    private let maxlenArgument: [UInt8]
    /// `--max-age`: the oldest time kept, when it was last computed, and as XADD's `MS-0`.
    private var minIDTime: Int64 = -1
    private var minIDArgument: [UInt8] = []
    private let requireSubscribers: Bool
    private let timeoutMs: Int
    private var lastLine = 0
    private var warnedAboutDroppedParts = false
    /// Unescaped field names and values of the current stream entry.
    private var scratch: [UInt8] = []
    private var fieldRanges: [Range<Int>] = []

    private var lanes: [RedisSinkLane] = []
    /// The slot map events are routed by (nil: not known to be a cluster; all to lanes[0]).
    /// Taken from the router only while nothing is in flight (at the start, and when
    /// a redirect round has drained every lane), never as another connection refreshes it:
    /// a slot's newer commands must not overtake older ones still in flight on another lane.
    private var routing: ClusterSlotMap?
    /// On a cluster, the lane of each slot as far as known (-1: look it up).
    private var laneOfSlot: [Int16] = []
    /// The lane of a single-key target.
    private var fixedLane: RedisSinkLane?

    private static let batchBytes = 256 << 10
    private static let maxInFlight = 16_384

    /// Redirected commands waiting to go to the node their answers named, in input order.
    private var redirected = RedirectedCommands()
    private var resending = false
    /// Rounds of redirects, and pauses for "not now", since the last delivery, within the
    /// router's limits (ClusterRedirects): a slot map that keeps contradicting itself, or a
    /// cluster down for longer than --timeout, ends in failed lines, not a loop.
    private var course: ClusterRedirects

    /// `--wait-replicas N`: each written batch ends with `WAIT N --timeout`, and its events
    /// count as delivered only once that many replicas have them.
    private let waitReplicas: Int?
    /// How long evt waits for an answer: --timeout, and a WAIT's own --timeout a little more.
    private var answerWaitMs: Int { timeoutMs + (waitReplicas == nil ? 0 : 2000) }

    init(server: RedisServerAddress, kind: RedisKind, name: String, options: SinkOptions) throws {
        self.server = server
        router = ClusterRouter.of(server)
        course = ClusterRedirects(timeoutMs: options.timeoutMs)
        self.kind = kind
        fixedName = name == "*" && kind != .channel ? nil : Array(name.utf8)
        trimOnAdd = options.trimOnAdd
        if case .maxLength(let count) = options.trimOnAdd { maxlenArgument = Array(String(count).utf8) } else { maxlenArgument = [] }
        self.requireSubscribers = options.requireSubscribers
        self.timeoutMs = options.timeoutMs
        self.waitReplicas = options.waitReplicas
        let first = try RedisConnection.open(server, key: kind == .channel || fixedName == nil ? nil : name,
                                             answerWaitMs: options.timeoutMs)
        first.writeStallLimitMs = options.timeoutMs
        // The slot map before the first command (one key's connection has read it already):
        // a command sent where its slot is not served could be answered MOVED, and a later one
        // of the same slot stored there before it if the slot moved in meanwhile.
        if kind != .channel { try router.learn(on: first) }
        routing = router.slots
        lanes = [RedisSinkLane(first, index: 0)]
        if fixedName != nil { fixedLane = lanes[0] }
    }

    // MARK: Routing

    /// The lane for `key`: the master of its slot when the cluster's map is known, else the
    /// first connection (a standalone server, or a cluster whose map evt may not read: its
    /// first MOVED answer shows it).
    private func lane(forKey key: UnsafeRawBufferPointer) throws -> RedisSinkLane {
        guard let slots = routing else { return lanes[0] }
        let slot = ClusterSlot.of(key)
        if laneOfSlot.isEmpty { laneOfSlot.append(contentsOf: repeatElement(-1, count: ClusterSlot.count)) }
        if laneOfSlot[slot] >= 0 { return lanes[Int(laneOfSlot[slot])] }
        guard let owner = slots.master(forSlot: slot) else { return lanes[0] }   // its MOVED will tell
        let lane = try lane(for: RedisNode(host: owner.host, port: owner.port))
        laneOfSlot[slot] = Int16(lanes.firstIndex { $0 === lane }!)
        return lane
    }

    /// The lane connected to `node`, made when there is none yet.
    private func lane(for node: RedisNode) throws -> RedisSinkLane {
        if let known = lanes.first(where: { $0.node == node }) { return known }
        let connection = try router.connect(to: node)
        connection.writeStallLimitMs = timeoutMs
        let lane = RedisSinkLane(connection, index: lanes.count)
        lanes.append(lane)
        return lane
    }

    // MARK: Sending

    func send(_ event: borrowing OutgoingEvent) throws {
        if !warnedAboutDroppedParts && (event.key != nil || event.headers != nil || event.timestamp != nil) {
            // --envelope records from Kafka: a Redis entry or message holds the value only.
            warnedAboutDroppedParts = true
            Diagnostics.print("warning: a Redis \(kind.rawValue) keeps only the value: the key, headers and timestamp of the events are dropped (first at event \(event.line)). To keep them, copy into a stream with evt copy-between.")
        }
        var current = fixedLane
        do {
            try withKey(event) { key in
                let lane = try current ?? self.lane(forKey: key)
                current = lane
                switch kind {
                case .stream: appendXADD(event, key: key, to: &lane.connection.outgoing)
                case .list: appendCommand("LPUSH", key, event.value, to: &lane.connection.outgoing)
                case .channel: appendCommand("PUBLISH", key, event.value, to: &lane.connection.outgoing)
                }
                lane.queued(line: event.line)
            }
            lastLine = event.line
            let lane = current!
            if lane.connection.outgoing.bytes.count >= RedisSink.batchBytes {
                try flush(lane)
                _ = try readReplies(lane, waitMs: 0)
            }
            // Bounded: wait for answers, but never longer than --timeout without one.
            var lastAnswer = monotonicMilliseconds()
            while lane.inFlight.count > RedisSink.maxInFlight && !Signals.stopRequested {
                if try readReplies(lane, waitMs: 1000) > 0 {
                    lastAnswer = monotonicMilliseconds()
                } else if monotonicMilliseconds() - lastAnswer >= answerWaitMs {
                    throw LaneFailure(laneIndex: lane.index, error: lane.connection.lost("no answer within --timeout (\(timeoutMs / 1000)s)"))
                }
            }
        } catch let failure as LaneFailure {
            connectionLost(lanes[failure.laneIndex], failure.error, announce: false)   // the error below says it
            throw EvtError(failure.error.cause, "\(clause(failure.error.message)); stopped reading input after line \(event.line).")
        }
    }

    private func withKey(_ event: borrowing OutgoingEvent, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        if let fixedName { return try fixedName.withUnsafeBytes(body) }
        // Publish checked that every event for a `*` target names its key.
        try body(event.redisName ?? UnsafeRawBufferPointer(start: nil, count: 0))
    }

    /// A lane's connection failed (or a stop signal's grace ran out): which lane, and how.
    private struct LaneFailure: Error {
        let laneIndex: Int
        let error: EvtError
    }

    /// Runs `body` on `lane`, tagging a lost connection or a stop with the lane.
    private func on<T>(_ lane: RedisSinkLane, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as EvtError where error.cause == .connectionLost || error.cause == .stopped {
            throw LaneFailure(laneIndex: lane.index, error: error)
        }
    }

    func inputStalled() throws {
        for lane in lanes where lane.unsent > 0 {
            do {
                try flush(lane)
                _ = try readReplies(lane, waitMs: 0)
            } catch let failure as LaneFailure {
                connectionLost(lanes[failure.laneIndex], failure.error, announce: false)
                throw EvtError(failure.error.cause, "\(clause(failure.error.message)); stopped reading input after line \(lastLine).")
            }
        }
    }

    /// Writes a lane's queued commands (with a WAIT at the end for --wait-replicas); a
    /// failure part-way leaves unknown which reached the server.
    private func flush(_ lane: RedisSinkLane) throws {
        guard lane.unsent > 0 || !lane.connection.outgoing.bytes.isEmpty else { return }
        lane.flushing = true
        if let waitReplicas, lane.unsent > 0 {
            lane.connection.outgoing.command(["WAIT", String(waitReplicas), String(timeoutMs)])
            lane.queued(line: RedisSinkLane.waitMarker)
        }
        lane.sentCommands.willSend(lane.connection.outgoing)
        try on(lane) { try lane.connection.flushWrites() }
        lane.flushing = false
        lane.unsent = 0
    }

    func finish() {
        var index = 0
        while index < lanes.count {   // a redirect may add lanes
            let lane = lanes[index]
            index += 1
            do {
                try flush(lane)
                try drain(lane, stoppable: true)
            } catch let failure as LaneFailure {
                connectionLost(lanes[failure.laneIndex], failure.error)
            } catch {
                connectionLost(lane, lane.connection.lost("\(error)"))
            }
        }
    }

    /// Waits for every answer due on `lane`, within --timeout of the last one (or what is left
    /// of a stop signal's grace).
    private func drain(_ lane: RedisSinkLane, stoppable: Bool = false) throws {
        var deadline = monotonicMilliseconds() + answerWaitMs
        var graceGiven = false
        while lane.inFlight.count > 0 {
            if stoppable, let grace = Signals.graceLeftMs, !graceGiven {
                // Stopped by a signal: answers get what is left of the grace, not the timeout.
                graceGiven = true
                deadline = min(deadline, monotonicMilliseconds() + grace)
            }
            let left = deadline - monotonicMilliseconds()
            if left <= 0 {
                throw LaneFailure(laneIndex: lane.index, error: graceGiven
                    ? EvtError(.stopped, "stopped by a signal: \(lane.connection.address.description) gave no answer within \(Signals.graceMs / 1000) s of it")
                    : lane.connection.lost("no answer within --timeout (\(timeoutMs / 1000)s)"))
            }
            if try readReplies(lane, waitMs: Int32(min(left, 1000))) > 0 && !graceGiven {
                deadline = monotonicMilliseconds() + answerWaitMs
            }
        }
    }

    /// Commands written but unanswered may or may not have been applied (unconfirmed); the
    /// newest `unsent` were never written (not delivered) — unless the write itself failed.
    /// `lost.cause` is `.stopped` when a stop signal's grace ran out, not the connection.
    private func connectionLost(_ lane: RedisSinkLane, _ lost: EvtError, announce: Bool = true) {
        if announce { Diagnostics.print(lost.message) }
        let byStop = lost.cause == .stopped
        let neverWritten = lane.flushing ? 0 : lane.unsent
        let written = lane.inFlight.count - neverWritten
        // Stored on the master, their replication unknown.
        for line in lane.awaitingReplicas { tally.unconfirmed(line: line, byStop: byStop) }
        lane.awaitingReplicas.removeAll()
        for index in 0..<lane.inFlight.count {
            let line = lane.inFlight.popFirst()!
            if line < 0 { continue }   // a WAIT or an ASKING
            if index < written {
                tally.unconfirmed(line: line, byStop: byStop)
            } else if byStop {
                tally.failed(line: line, reason: "not sent: evt was stopped by a signal first", cause: .stopped)
            } else {
                tally.failed(line: line, reason: "not sent: the connection was lost first", cause: .connectionLost)
            }
        }
        lane.connection.outgoing.removeAll()
        lane.unsent = 0
        lane.flushing = false
        lane.sentCommands.removeAll()
        for line in redirected.lines {
            tally.failed(line: line, reason: "not sent again after a cluster redirect: the connection was lost first", cause: lost.cause)
        }
        redirected = RedirectedCommands()
    }

    // MARK: Answers

    /// Reads the answers `lane` has within `waitMs`; how many. Commands answered MOVED or ASK
    /// are then sent again where their slot is served now.
    private func readReplies(_ lane: RedisSinkLane, waitMs: Int32) throws -> Int {
        var wait = waitMs
        var count = 0
        let connection = lane.connection
        while lane.inFlight.count > 0 {
            let result = try on(lane) {
                try connection.nextReply(waitMs: wait, stopOnSignal: false) { reply in
                    let line = lane.inFlight.popFirst()!
                    let sent = lane.sentCommands.answered()
                    switch line {
                    case RedisSinkLane.waitMarker: settleWait(reply, on: lane)
                    case RedisSinkLane.askingMarker: break   // +OK, or an error the next answer repeats
                    default:
                        let answer = reply.kind == .error ? router.classify(reply.text, answeredBy: lane.node) : .own
                        switch answer {
                        case .own:
                            record(reply, line: line, on: lane)
                        case .elsewhere(_, let node, let asking):
                            redirected.add(line: line, command: lane.sentCommands.bytes(of: sent), to: node, asking: asking)
                        case .notNow(let code):
                            // Not applied; the same node again after a pause.
                            redirected.add(line: line, command: lane.sentCommands.bytes(of: sent), notNow: code, at: lane.node)
                        }
                    }
                }
            }
            if result != .reply { break }
            count += 1
            wait = 0
        }
        if !redirected.isEmpty && !resending { try resendRedirected() }
        return count
    }

    private func record(_ reply: RedisReplyView, line: Int, on lane: RedisSinkLane) {
        switch reply.kind {
        case .error:
            let target = fixedName.map { String(decoding: $0, as: UTF8.self) } ?? "named by the record"
            tally.failed(line: line, reason: "\(reply.text) (\(kind.rawValue) \(target))", cause: RedisErrorReply.cause(reply.text))
        case .integer where kind == .channel && requireSubscribers && reply.integer == 0:
            tally.failed(line: line, reason: "no subscriber was listening (--require-subscribers)", cause: .refused(code: ""))
        default:
            if waitReplicas == nil { tally.delivered() } else { lane.awaitingReplicas.append(line) }
            course.applied()
        }
    }

    /// A batch's WAIT answered with the number of replicas that have all of the connection's
    /// writes so far: its events are delivered, or (too few replicas) on the master only.
    private func settleWait(_ reply: RedisReplyView, on lane: RedisSinkLane) {
        let wanted = waitReplicas ?? 0
        if reply.kind == .integer && reply.integer >= wanted {
            tally.delivered(count: lane.awaitingReplicas.count)
        } else {
            let reason = reply.kind == .integer
                ? "stored on the master, but only \(reply.integer) of \(wanted) replicas had it within --timeout (\(timeoutMs / 1000)s); a failover now could lose it"
                : "stored on the master, but WAIT failed: \(reply.text)"
            for line in lane.awaitingReplicas { tally.failed(line: line, reason: reason, cause: .transient(code: "WAIT")) }
        }
        lane.awaitingReplicas.removeAll()
    }

    /// A cluster slot moved (MOVED) or is moving (ASK): every command still in flight is
    /// answered first (later ones of the same slot get the same answer, so the order per key
    /// holds), then the redirected ones go again, in input order, all of a slot's to the node
    /// its newest answer named (after ASKING for an ASK: the importing node takes it once).
    /// Nothing is in flight here, so this is where the sink takes up a newer slot map.
    private func resendRedirected() throws {
        resending = true
        defer { resending = false }
        for lane in lanes {
            try flush(lane)
            try drain(lane)
        }
        try router.refreshIfDue()
        routing = router.slots
        laneOfSlot.removeAll(keepingCapacity: true)
        while !redirected.isEmpty {
            let batch = redirected
            redirected = RedirectedCommands()
            // One step of the router's limits per round: a pause while the cluster answers
            // "not now" (failing over, resharding), else a redirect.
            let round = batch.notNowCode.map { ClusterAnswer.notNow(code: $0) }
                ?? .elsewhere(slot: 0, node: batch.destination(at: 0).node, asking: batch.destination(at: 0).asking)
            switch course.next(round, now: monotonicMilliseconds()) {
            case .retry(let pause) where !Signals.stopRequested:
                Signals.sleep(milliseconds: pause)
            case .retry:
                for line in batch.lines {
                    tally.failed(line: line, reason: "not sent again: the cluster answered \(batch.notNowCode ?? "") and evt was stopped by a signal first",
                                 cause: .stopped)
                }
                return
            case .fail(let cause, let reason):
                for line in batch.lines { tally.failed(line: line, reason: reason, cause: cause) }
                return
            case .redirect, .answer:
                break
            }
            var used: [RedisSinkLane] = []
            for index in 0..<batch.count {
                let target = batch.destination(at: index)
                let lane: RedisSinkLane
                do {
                    lane = try self.lane(for: target.node)
                } catch let error as EvtError {
                    tally.failed(line: batch.lines[index], reason: "not sent again after a cluster redirect: \(error.message)", cause: error.cause)
                    continue
                }
                if target.asking {
                    lane.connection.outgoing.command(["ASKING"])
                    lane.queued(line: RedisSinkLane.askingMarker)
                } else if fixedName != nil {
                    fixedLane = lane   // the key's slot is served there now
                }
                lane.connection.outgoing.appendCommand(batch.command(at: index))
                lane.queued(line: batch.lines[index])
                if !used.contains(where: { $0 === lane }) { used.append(lane) }
            }
            for lane in used {
                try flush(lane)
                try drain(lane)
            }
        }
    }

    // MARK: Commands

    private func appendCommand(_ command: String, _ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer,
                               to outgoing: inout RespCommandBuffer) {
        outgoing.beginCommand(arguments: 3)
        outgoing.argument(command)
        outgoing.argument(key)
        outgoing.argument(value)
    }

    /// An object becomes the entry's fields (string values unescaped, others as JSON text);
    /// anything else one field named `value` holding the exact bytes.
    private func appendXADD(_ event: borrowing OutgoingEvent, key: UnsafeRawBufferPointer, to outgoing: inout RespCommandBuffer) {
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
        let trim = trimOnAdd == nil ? 0 : 3
        if fieldRanges.isEmpty {
            outgoing.beginCommand(arguments: 5 + trim)
            appendXADDHead(key, to: &outgoing)
            outgoing.argument("value")
            outgoing.argument(event.value)
            return
        }
        outgoing.beginCommand(arguments: 3 + trim + fieldRanges.count)
        appendXADDHead(key, to: &outgoing)
        scratch.withUnsafeBytes { bytes in
            for range in fieldRanges {
                outgoing.argument(UnsafeRawBufferPointer(rebasing: bytes[range]))
            }
        }
    }

    private func appendXADDHead(_ key: UnsafeRawBufferPointer, to outgoing: inout RespCommandBuffer) {
        outgoing.argument("XADD")
        outgoing.argument(key)
        switch trimOnAdd {
        case .maxLength:
            outgoing.argument("MAXLEN")
            outgoing.argument("~")
            outgoing.argument(maxlenArgument)
        case .maxAgeMs(let age):
            let oldestKept = max(0, epochMilliseconds() - Int64(age))
            if oldestKept != minIDTime {
                minIDTime = oldestKept
                minIDArgument = Array("\(oldestKept)-0".utf8)
            }
            outgoing.argument("MINID")
            outgoing.argument("~")
            outgoing.argument(minIDArgument)
        case nil:
            break
        }
        outgoing.argument("*")
    }
}

/// One connection of a RedisSink and what is in flight on it.
final class RedisSinkLane {
    let connection: RedisConnection
    /// Lines whose command was sent (or is in `connection.outgoing`) and not yet answered,
    /// and the markers of the commands evt adds (WAIT, ASKING).
    var inFlight = LineQueue()
    /// How many of the newest `inFlight` commands are still in `connection.outgoing`.
    var unsent = 0
    var flushing = false
    /// The bytes of what is in flight, to send again after a MOVED or ASK.
    var sentCommands = SentCommands()
    /// Lines the master stored whose batch's WAIT has not answered yet.
    var awaitingReplicas: [Int] = []

    /// Stand for a WAIT and an ASKING in `inFlight` (input lines are numbered from 1).
    static let waitMarker = Int.min
    static let askingMarker = Int.min + 1

    /// Its place in the sink's lanes.
    let index: Int

    init(_ connection: RedisConnection, index: Int) {
        self.connection = connection
        self.index = index
    }

    var node: RedisNode { RedisNode(host: connection.address.host, port: connection.address.port) }

    /// The command just put in `connection.outgoing` is for `line` (or a marker).
    func queued(line: Int) {
        inFlight.append(line)
        sentCommands.noteCommand(queuedBytes: connection.outgoing.bytes.count)
        unsent += 1
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

/// Commands a cluster did not apply, to send again in input order: to the node an answer
/// named (MOVED, ASK), or after a pause to the same node (TRYAGAIN, CLUSTERDOWN).
///
/// All the commands of one slot go to one node, the one its newest answer named. A slot's
/// commands were answered by one node, in input order, but not all at once: when the slot
/// moved in between, the older answers name its old master and the newer ones its new one.
/// Sent each where its own answer pointed, the newer commands would be stored at once and
/// the older ones only after the old master's next MOVED, behind them.
struct RedirectedCommands {
    private var bytes: [UInt8] = []
    private var ends: [Int] = []
    private(set) var lines: [Int] = []
    private var targets: [(node: RedisNode, asking: Bool)] = []
    /// The slot of each command's key, and the newest command of each slot.
    private var slots: [Int] = []
    private var newestOfSlot: [Int: Int] = [:]
    /// The code of a TRYAGAIN or CLUSTERDOWN answer among them (sent again after a pause).
    private(set) var notNowCode: String?

    var isEmpty: Bool { lines.isEmpty }
    var count: Int { lines.count }

    /// A command answered MOVED or ASK (`asking`), naming `node`.
    mutating func add(line: Int, command: ArraySlice<UInt8>, to node: RedisNode, asking: Bool) {
        add(line, command, node, asking: asking)
    }

    /// `server`: the node that answered (Redis 7 may leave the host out).
    mutating func add(line: Int, command: ArraySlice<UInt8>, to redirect: ClusterRedirect, from server: RedisServerAddress) {
        add(line, command, redirect.node(answeredBy: server), asking: redirect.isAsk)
    }

    /// A command answered "not now" (`code`: TRYAGAIN, CLUSTERDOWN): to `node` again.
    mutating func add(line: Int, command: ArraySlice<UInt8>, notNow code: String, at node: RedisNode) {
        add(line, command, node, asking: false)
        notNowCode = notNowCode ?? code
    }

    private mutating func add(_ line: Int, _ command: ArraySlice<UInt8>, _ node: RedisNode, asking: Bool) {
        let slot = RedirectedCommands.slotOfKey(command)
        newestOfSlot[slot] = lines.count
        slots.append(slot)
        bytes.append(contentsOf: command)
        ends.append(bytes.count)
        lines.append(line)
        targets.append((node, asking))
    }

    func command(at index: Int) -> ArraySlice<UInt8> {
        bytes[(index == 0 ? 0 : ends[index - 1])..<ends[index]]
    }

    /// Where the command at `index` goes: where the newest answer for its slot pointed.
    func destination(at index: Int) -> (node: RedisNode, asking: Bool) {
        targets[newestOfSlot[slots[index]] ?? index]
    }

    /// The slot of a command's key, its second word: `XADD key …`, `LPUSH key …`,
    /// `PUBLISH channel …` in RESP (`*N\r\n$4\r\nXADD\r\n$3\r\nkey\r\n…`).
    static func slotOfKey(_ command: ArraySlice<UInt8>) -> Int {
        var position = command.startIndex
        /// The number after a `*` or `$`, and `position` past its line's \r\n.
        func length() -> Int {
            position += 1
            var value = 0
            while position < command.endIndex, command[position] != 13 {
                value = value * 10 + Int(command[position] &- 48)
                position += 1
            }
            position += 2
            return value
        }
        _ = length()                  // *N
        position += length() + 2      // the command's name
        let keyLength = length()
        guard keyLength >= 0, position + keyLength <= command.endIndex else { return 0 }
        return command[position..<(position + keyLength)].withUnsafeBytes { ClusterSlot.of($0) }
    }
}
