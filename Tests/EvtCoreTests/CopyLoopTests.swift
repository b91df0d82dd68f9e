import Testing
@testable import EvtCore

/// In-memory doubles of the copy's three protocols (RecordSource, RecordTarget,
/// CheckpointStore), sharing one log of what happened in which order.
private final class CopyLog {
    var events: [String] = []
    func index(of event: String) -> Int? { events.firstIndex(of: event) }
}

/// One partition of records with offsets 0..<count, handed over `batchSize` at a time.
private final class MemorySource: RecordSource {
    let values: [[UInt8]]
    let batchSize: Int
    let log: CopyLog
    /// A queue source: the loop drains and confirms after every batch.
    let confirmsEveryBatch: Bool
    /// Thrown once, after this many records were handed over in one read.
    var failure: (afterRecords: Int, error: EvtError)?
    var reads = 0

    init(count: Int, batchSize: Int, confirmsEveryBatch: Bool = false, log: CopyLog) {
        values = (0..<count).map { Array("v\($0)".utf8) }
        self.batchSize = batchSize
        self.confirmsEveryBatch = confirmsEveryBatch
        self.log = log
    }

    var identity: String { "topic:t" }
    func end() throws -> SourcePosition { SourcePosition(offsets: [0: Int64(values.count)]) }
    func lag(behind position: SourcePosition) -> String { "" }
    func confirmed() throws { log.events.append("source confirmed") }

    /// Without an end (following), returns once every record was handed over, as a stop would.
    func read(after start: SourcePosition, until end: SourcePosition?, into record: Record,
              idle: () throws -> Void, _ body: (Record) throws -> Void, batchEnded: () throws -> Void) throws {
        reads += 1
        let first = Int(start.offsets[0] ?? 0)
        let last = Int(end?.offsets[0] ?? Int64(values.count))
        record.origin = .kafka
        record.topic = Array("t".utf8)
        record.partition = 0
        var handed = 0
        var offset = first
        while offset < last {
            for index in offset..<min(offset + batchSize, last) {
                if let failure, handed == failure.afterRecords {
                    self.failure = nil
                    throw failure.error
                }
                record.offset = Int64(index)
                try values[index].withUnsafeBytes { value in
                    record.value = value
                    try body(record)
                }
                handed += 1
            }
            offset = min(offset + batchSize, last)
            try batchEnded()
        }
    }
}

/// What the target's broker stores, across the targets of every attempt.
private final class MemoryBroker {
    var stored: [String] = []
}

/// Keeps what it is given until a drain, which acknowledges it, up to a record it refuses.
private final class MemoryTarget: RecordTarget {
    let broker: MemoryBroker
    let log: CopyLog
    /// Records written and not yet acknowledged, with the position before each.
    private var pending: [(value: String, before: SourcePosition)] = []
    /// The value the target refuses at the drain, and why.
    var refuses: (value: String, error: EvtError)?
    private(set) var confirmed: SourcePosition?
    private(set) var delivered = 0
    var keepsCheckpoint: Bool { false }
    var confirmsAsItGoes: Bool { false }

    init(broker: MemoryBroker, log: CopyLog) {
        self.broker = broker
        self.log = log
    }

    func write(_ record: Record, after cursor: SourceCursor) throws -> Bool {
        let value = String(decoding: record.value!, as: UTF8.self)
        log.events.append("write \(value)")
        pending.append((value, cursor.position))
        return true
    }

    func reached(_ cursor: SourceCursor, batchEnded: Bool) throws {}

    func drain(at cursor: SourceCursor) throws {
        defer { pending.removeAll() }
        for (value, before) in pending {
            if let refuses, refuses.value == value {
                confirmed = before
                log.events.append("drain refused \(value)")
                throw refuses.error
            }
            broker.stored.append(value)
            delivered += 1
        }
        confirmed = cursor.position
        log.events.append("drained to \(cursor.position.offsets[0] ?? 0)")
    }
}

/// A checkpoint held by this copy unless `heldByAnother` (at the claim) or `takenOverAtSave`.
private final class MemoryCheckpoint: CheckpointStore {
    let log: CopyLog
    var position: SourcePosition?
    var heldByAnother = false
    /// The save of this position finds the checkpoint taken over by another copy.
    var takenOverAtSave: Int64?
    var claims = 0

    init(position: SourcePosition? = nil, log: CopyLog) {
        self.position = position
        self.log = log
    }

    var name: String { "checkpoint memory" }

    func claim(source identity: String) throws -> SourcePosition? {
        claims += 1
        if heldByAnother { throw EvtError(.claimed, "\(name) is held by another copy.") }
        return position
    }

    func save(_ position: SourcePosition) throws {
        if let takenOverAtSave, position.offsets[0] == takenOverAtSave {
            throw CheckpointLease.lost(name, holder: "other")
        }
        self.position = position
        log.events.append("saved \(position.offsets[0] ?? 0)")
    }

    func keepAlive() throws {}
    func release() {}
}

@Suite("The copy loop's retry and confirm steps, against in-memory ends")
struct CopyLoopTests {
    private static func values(_ range: Range<Int>) -> [String] { range.map { "v\($0)" } }

    private static func loop(follow: Bool = false, ridesOutOutages: Bool = true, source: MemorySource, broker: MemoryBroker,
                             log: CopyLog, checkpoint: MemoryCheckpoint?, limit: Int = .max,
                             configure: @escaping (MemoryTarget, Int) -> Void = { _, _ in }) -> CopyLoop {
        var attempt = 0
        return CopyLoop(follow: follow, ridesOutOutages: ridesOutOutages, checkpoint: checkpoint, limit: limit,
                        source: { source }, target: { _ in
            attempt += 1
            let target = MemoryTarget(broker: broker, log: log)
            configure(target, attempt)
            return target
        })
    }

    @Test("every record is written in order, and the checkpoint saved only after the drain acknowledged it")
    func copiesAndConfirmsAfterDrain() throws {
        let log = CopyLog(), broker = MemoryBroker()
        let source = MemorySource(count: 10, batchSize: 4, log: log)
        let checkpoint = MemoryCheckpoint(log: log)
        let loop = Self.loop(source: source, broker: broker, log: log, checkpoint: checkpoint)
        try loop.run()
        #expect(broker.stored == Self.values(0..<10))
        #expect(loop.copied == 10 && loop.skipped == 0)
        #expect(loop.confirmed == SourcePosition(offsets: [0: 10]))
        #expect(checkpoint.position == SourcePosition(offsets: [0: 10]))
        // The drain comes after the last write, the save after the drain.
        let drained = try #require(log.index(of: "drained to 10"))
        let saved = try #require(log.index(of: "saved 10"))
        let lastWrite = try #require(log.index(of: "write v9"))
        #expect(lastWrite < drained && drained < saved)
    }

    @Test("a copy resumes after the checkpoint's position")
    func resumesAfterCheckpoint() throws {
        let log = CopyLog(), broker = MemoryBroker()
        let source = MemorySource(count: 10, batchSize: 4, log: log)
        let checkpoint = MemoryCheckpoint(position: SourcePosition(offsets: [0: 6]), log: log)
        let loop = Self.loop(source: source, broker: broker, log: log, checkpoint: checkpoint)
        try loop.run()
        #expect(broker.stored == Self.values(6..<10))
        #expect(loop.copied == 4 && checkpoint.position == SourcePosition(offsets: [0: 10]))
    }

    @Test("a queue source is drained and confirmed after every batch, the checkpoint saved before the source lets go")
    func queueConfirmsEveryBatch() throws {
        let log = CopyLog(), broker = MemoryBroker()
        let source = MemorySource(count: 10, batchSize: 4, confirmsEveryBatch: true, log: log)
        let checkpoint = MemoryCheckpoint(log: log)
        try Self.loop(source: source, broker: broker, log: log, checkpoint: checkpoint).run()
        let confirmations = log.events.filter { $0.hasPrefix("drained") || $0.hasPrefix("saved") || $0 == "source confirmed" }
        #expect(confirmations == ["drained to 4", "saved 4", "source confirmed",
                                  "drained to 8", "saved 8", "source confirmed",
                                  "drained to 10", "saved 10", "source confirmed",
                                  // The end's drain: nothing new to save.
                                  "drained to 10", "source confirmed"])
        #expect(broker.stored == Self.values(0..<10))
    }

    @Test("a refused record stops the copy with its cause; nothing past it is confirmed or saved")
    func refusedRecordConfirmsNothingPastIt() throws {
        let log = CopyLog(), broker = MemoryBroker()
        let source = MemorySource(count: 10, batchSize: 4, confirmsEveryBatch: true, log: log)
        let checkpoint = MemoryCheckpoint(log: log)
        let loop = Self.loop(source: source, broker: broker, log: log, checkpoint: checkpoint) { target, _ in
            target.refuses = ("v6", EvtError(.refused(code: "WRONGTYPE"), "WRONGTYPE Operation against a key"))
        }
        let error = try #require(throws: EvtError.self) { try loop.run() }
        #expect(error.cause == .refused(code: "WRONGTYPE"))
        #expect(broker.stored == Self.values(0..<6))
        #expect(loop.copied == 6 && loop.confirmed == SourcePosition(offsets: [0: 6]))
        // The checkpoint stays at the last batch drained whole, and the source let go of that one only.
        #expect(checkpoint.position == SourcePosition(offsets: [0: 4]))
        #expect(log.events.filter { $0 == "source confirmed" }.count == 1)
        #expect(!log.events.contains { $0.hasPrefix("write v8") }, "nothing is read past the refused batch")
    }

    @Test("without -f a lost connection mid-batch stops the copy, retriable, at the confirmed position")
    func lostConnectionWithoutFollow() throws {
        let log = CopyLog(), broker = MemoryBroker()
        let source = MemorySource(count: 10, batchSize: 4, confirmsEveryBatch: true, log: log)
        source.failure = (5, EvtError(.connectionLost, "Connection reset by peer"))
        let checkpoint = MemoryCheckpoint(log: log)
        let loop = Self.loop(source: source, broker: broker, log: log, checkpoint: checkpoint)
        let error = try #require(throws: EvtError.self) { try loop.run() }
        #expect(error.cause == .connectionLost && error.isRetriable)
        #expect(broker.stored == Self.values(0..<4) && checkpoint.position == SourcePosition(offsets: [0: 4]))
        #expect(loop.confirmed == SourcePosition(offsets: [0: 4]) && source.reads == 1)
    }

    @Test("with -f a lost connection mid-batch is waited out: the copy goes on from the checkpoint, nothing lost")
    func lostConnectionFollowing() throws {
        let log = CopyLog(), broker = MemoryBroker()
        let source = MemorySource(count: 10, batchSize: 4, confirmsEveryBatch: true, log: log)
        source.failure = (5, EvtError(.connectionLost, "Connection reset by peer"))
        let checkpoint = MemoryCheckpoint(log: log)
        let loop = Self.loop(follow: true, source: source, broker: broker, log: log, checkpoint: checkpoint)
        try loop.run()
        // Record 4 was written but never acknowledged: it is read again, after the checkpoint.
        #expect(broker.stored == Self.values(0..<10))
        #expect(log.events.filter { $0 == "write v4" }.count == 2)
        #expect(source.reads == 2 && checkpoint.claims == 2, "the checkpoint is claimed again after the outage")
        #expect(loop.copied == 10 && checkpoint.position == SourcePosition(offsets: [0: 10]))
    }

    @Test("with -f a server's \"not now\" (LOADING) is waited out like a lost connection")
    func notNowFollowing() throws {
        let log = CopyLog(), broker = MemoryBroker()
        let source = MemorySource(count: 10, batchSize: 4, confirmsEveryBatch: true, log: log)
        source.failure = (6, RedisErrorReply.error("LOADING Redis is loading the dataset in memory", "XREAD on stream s failed"))
        let checkpoint = MemoryCheckpoint(log: log)
        let loop = Self.loop(follow: true, source: source, broker: broker, log: log, checkpoint: checkpoint)
        try loop.run()
        #expect(broker.stored == Self.values(0..<10) && source.reads == 2)
    }

    @Test("a copy into stdout (tail, replay -f) does not ride out a lost connection: it cannot take back what it printed")
    func stdoutDoesNotRideOutOutages() throws {
        let log = CopyLog(), broker = MemoryBroker()
        let source = MemorySource(count: 10, batchSize: 4, confirmsEveryBatch: true, log: log)
        source.failure = (5, EvtError(.connectionLost, "Connection reset by peer"))
        let loop = Self.loop(follow: true, ridesOutOutages: false, source: source, broker: broker, log: log, checkpoint: nil)
        let error = try #require(throws: EvtError.self) { try loop.run() }
        #expect(error.cause == .connectionLost && source.reads == 1 && broker.stored == Self.values(0..<4))
    }

    @Test("a refusal is not waited out, even with -f")
    func refusalNotRetriedFollowing() throws {
        let log = CopyLog(), broker = MemoryBroker()
        let source = MemorySource(count: 10, batchSize: 4, confirmsEveryBatch: true, log: log)
        let loop = Self.loop(follow: true, source: source, broker: broker, log: log, checkpoint: MemoryCheckpoint(log: log)) { target, _ in
            target.refuses = ("v2", EvtError(.refused(code: "NOPERM"), "NOPERM"))
        }
        let error = try #require(throws: EvtError.self) { try loop.run() }
        #expect(error.cause == .refused(code: "NOPERM") && source.reads == 1 && broker.stored == Self.values(0..<2))
    }

    @Test("a moved slot is followed at once, without -f, from the confirmed position")
    func movedIsRetriedAtOnce() throws {
        let log = CopyLog(), broker = MemoryBroker()
        let source = MemorySource(count: 10, batchSize: 4, confirmsEveryBatch: true, log: log)
        let checkpoint = MemoryCheckpoint(log: log)
        let loop = Self.loop(source: source, broker: broker, log: log, checkpoint: checkpoint) { target, attempt in
            // A moved slot refuses the whole batch: nothing of it was applied.
            if attempt == 1 { target.refuses = ("v4", EvtError(.moved(code: "MOVED"), "MOVED 3999 127.0.0.1:7001")) }
        }
        try loop.run()
        #expect(broker.stored == Self.values(0..<10))
        #expect(source.reads == 2 && log.events.filter { $0 == "write v4" }.count == 2)
        #expect(checkpoint.position == SourcePosition(offsets: [0: 10]) && loop.copied == 10)
    }

    @Test("a checkpoint another copy holds refuses the copy before anything is read")
    func checkpointHeldByAnother() throws {
        let log = CopyLog(), broker = MemoryBroker()
        let source = MemorySource(count: 10, batchSize: 4, log: log)
        let checkpoint = MemoryCheckpoint(log: log)
        checkpoint.heldByAnother = true
        let loop = Self.loop(follow: true, source: source, broker: broker, log: log, checkpoint: checkpoint)
        let error = try #require(throws: EvtError.self) { try loop.run() }
        #expect(error.cause == .claimed && !error.isRetriable)
        #expect(source.reads == 0 && broker.stored.isEmpty && log.events.isEmpty)
    }

    @Test("a checkpoint taken over while copying stops the copy: nothing more is written")
    func checkpointTakenOver() throws {
        let log = CopyLog(), broker = MemoryBroker()
        let source = MemorySource(count: 10, batchSize: 4, confirmsEveryBatch: true, log: log)
        let checkpoint = MemoryCheckpoint(log: log)
        checkpoint.takenOverAtSave = 4
        let loop = Self.loop(follow: true, source: source, broker: broker, log: log, checkpoint: checkpoint)
        let error = try #require(throws: EvtError.self) { try loop.run() }
        #expect(error.cause == .claimed)
        #expect(broker.stored == Self.values(0..<4) && checkpoint.position == nil)
        #expect(!log.events.contains("write v4") && !log.events.contains("source confirmed"))
    }

    @Test("-c N copies N records and confirms them")
    func limit() throws {
        let log = CopyLog(), broker = MemoryBroker()
        let source = MemorySource(count: 10, batchSize: 4, log: log)
        let checkpoint = MemoryCheckpoint(log: log)
        let loop = Self.loop(source: source, broker: broker, log: log, checkpoint: checkpoint, limit: 6)
        try loop.run()
        #expect(broker.stored == Self.values(0..<6))
        #expect(loop.copied == 6 && checkpoint.position == SourcePosition(offsets: [0: 6]))
    }
}
