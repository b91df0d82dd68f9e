#if canImport(Glibc)
import Glibc
#endif

/// `copy-between`'s writer into a Redis stream. The entries of one batch and the checkpoint
/// that says they were copied go to Redis in one MULTI/EXEC: both are applied or neither, so
/// a copy killed at any point resumes exactly where the stream ends — nothing lost, nothing
/// twice. Transactions are pipelined; a batch counts as copied only once its EXEC answered.
///
/// EXEC does not roll back, and pipelined batches do not wait for each other, so the
/// checkpoint is written by a small script in the transaction that refuses to move it unless
/// (1) the checkpoint still carries the token of the batch before (a refused batch breaks the
/// chain, so no later batch can move the checkpoint past it; another copy using the same
/// NAME breaks it too) and (2) every stream of the batch is a stream (an XADD refused at run
/// time, WRONGTYPE, is the one failure that leaves the rest of a transaction applied).
///
/// An entry whose source id should be restored (a record that came from a stream) needs
/// `XADD key ID`, which Redis refuses when the stream already has a newer id. Such batches go
/// as one Lua script instead, which tries the id and falls back to an automatic id plus the
/// field `evt.stream.id` — atomically with the checkpoint, whatever another writer does.
final class StreamCopyTarget: StreamEntryWriter {
    let connection: RedisConnection
    private let name: [UInt8]
    private let checkpointKey: [UInt8]?

    /// The batch being built: plain (MULTI … EXEC) or restoring ids (one EVAL).
    private enum BatchForm { case none, transaction, script }
    private var form = BatchForm.none
    private var entriesInBatch = 0
    /// EVAL arguments after the keys, built here and counted, then put behind the command head.
    private var scriptArguments = RespCommandBuffer(capacity: 1 << 16)
    private var scriptArgumentCount = 0

    /// Batches sent and not yet answered, oldest first: their entry counts and tokens.
    /// `waits`: a WAIT for --wait-replicas follows the batch; its answer is the batch's last.
    private var inFlight: [(form: BatchForm, entries: Int, replies: Int, token: Int, checkpointed: Bool, waits: Bool)] = []
    /// --wait-replicas N: a batch counts as copied once N replicas have it.
    private let waitReplicas: Int?
    /// The batch's own outcome (its refusal, if any), held until its WAIT answers.
    private var heldOutcome: (refused: String?, guardRefusal: Bool)?
    /// The streams the open batch writes to (one, or a few with --per-partition).
    private var streamsInBatch: [[UInt8]] = []
    /// The `batch` token the checkpoint must carry for the next batch to move it.
    private var previousBatchToken: String
    private let runID = "\(getpid())-\(monotonicMilliseconds())"
    private var inFlightHead = 0
    /// The token of the newest batch Redis confirmed.
    private(set) var confirmedToken: Int?
    private(set) var delivered = 0
    /// Set when a batch was refused: the reason; nothing after it counts as copied.
    private(set) var failure: EvtError?
    /// Set when Redis answered LOADING or BUSY: handled like a lost connection.
    private var transientRefusal: String?

    /// Deep enough that evt rarely waits for Redis and goes back to draining librdkafka's
    /// prefetch queue (8 in flight: 8.2 s for 1 M records from the mock; 32: 7.2 s; 128: 6.7 s,
    /// same RSS: the unanswered commands wait in the socket and in Redis, not in evt).
    private static let maxBatchesInFlight = 128

    /// `stream`: the key whose slot serves the copy on a cluster (the checkpoint and every
    /// stream written share it).
    init(server: RedisServerAddress, stream: String, description: String, checkpointKey: String?, timeoutMs: Int,
         waitReplicas: Int? = nil) throws {
        self.waitReplicas = waitReplicas
        connection = try RedisConnection.open(server, key: stream)
        self.name = Array(description.utf8)
        self.checkpointKey = checkpointKey.map { Array($0.utf8) }
        self.timeoutMs = Int32(clamping: timeoutMs)
        previousBatchToken = ""
        if let checkpointKey {
            switch try connection.call(["HGET", checkpointKey, "batch"]) {
            case .error(let message): throw RedisErrorReply.error(message, "cannot read checkpoint \(checkpointKey)")
            case let reply: previousBatchToken = reply.text ?? ""
            }
        }
    }

    /// How long to wait for an answer before the connection counts as lost (--timeout).
    private let timeoutMs: Int32
    /// How long evt waits for an answer: --timeout, and a WAIT's own --timeout a little more.
    private var answerWaitMs: Int32 { timeoutMs + (waitReplicas == nil ? 0 : 2000) }

    /// A key of another type would refuse every XADD of a transaction while its checkpoint
    /// still moved: refuse it before copying anything.
    func checkIsStreamOrAbsent(_ stream: String) throws {
        let type = try connection.call(["TYPE", stream])
        if case .error(let message) = type {
            throw RedisErrorReply.error(message, "\(connection.address.description) refused TYPE \(stream)")
        }
        if let type = type.text, type != "none" && type != "stream" {
            throw EvtError.failure("\(connection.address.description): \(stream) is a \(type), not a stream; copy into another name or delete it.")
        }
    }

    // MARK: Building a batch

    /// Starts an entry with `fieldCount` field/value pairs. `restoring`: the source entry id to
    /// give it. Returns false when the open batch cannot take such an entry: commit, then retry.
    func beginEntry(stream: [UInt8], restoring id: UnsafeRawBufferPointer?, fieldCount: Int) -> Bool {
        if form == .none { startBatch(id != nil ? .script : .transaction) }
        if form == .transaction && id != nil { return false }
        if streamsInBatch.last != stream && !streamsInBatch.contains(stream) { streamsInBatch.append(stream) }
        entriesInBatch += 1
        switch form {
        case .script:
            scriptArguments.argument(stream)
            scriptArguments.argument(id ?? UnsafeRawBufferPointer(staticStar))
            scriptArguments.argument(String(fieldCount * 2))
            scriptArgumentCount += 3 + fieldCount * 2
        default:
            connection.outgoing.beginCommand(arguments: 3 + fieldCount * 2)
            connection.outgoing.argument("XADD")
            connection.outgoing.argument(stream)
            connection.outgoing.argument(UnsafeRawBufferPointer(staticStar))
        }
        return true
    }

    private var staticStar: UnsafeRawBufferPointer {
        let star: StaticString = "*"
        return UnsafeRawBufferPointer(start: star.utf8Start, count: 1)
    }

    private func startBatch(_ newForm: BatchForm) {
        form = newForm
        entriesInBatch = 0
        if newForm == .transaction {
            connection.outgoing.command(["MULTI"])
        } else {
            scriptArguments.removeAll()
            scriptArgumentCount = 0
        }
    }

    func field(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        if form == .script {
            scriptArguments.argument(name)
            scriptArguments.argument(value)
        } else {
            connection.outgoing.argument(name)
            connection.outgoing.argument(value)
        }
    }

    func field(_ name: [UInt8], _ value: UnsafeRawBufferPointer) {
        name.withUnsafeBytes { field($0, value) }
    }

    /// A field whose name is `prefix` + `name` (`header.trace`).
    func field(prefix: [UInt8], _ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        if form == .script {
            scriptArguments.argument(prefix: prefix, name)
            scriptArguments.argument(value)
        } else {
            connection.outgoing.argument(prefix: prefix, name)
            connection.outgoing.argument(value)
        }
    }

    var batchIsEmpty: Bool { entriesInBatch == 0 }
    var batchCount: Int { entriesInBatch }

    /// Ends the batch: the checkpoint (hash fields of `checkpointKey`) goes with the entries.
    /// `token` comes back as `confirmedToken` once Redis applied it. Sends when enough is
    /// buffered; waits only when too many batches are unanswered.
    func commit(checkpoint: [(String, String)], token: Int) throws {
        guard form != .none else { return }
        let withCheckpoint = checkpointKey != nil && !checkpoint.isEmpty
        let batchToken = "\(runID):\(token)"
        /// KEYS: the checkpoint, then the batch's streams; ARGV: expected token, new token.
        func appendGuard() {
            connection.outgoing.argument(String(1 + streamsInBatch.count))
            connection.outgoing.argument(checkpointKey!)
            for stream in streamsInBatch { connection.outgoing.argument(stream) }
            connection.outgoing.argument(previousBatchToken)
            connection.outgoing.argument(batchToken)
        }
        func appendCheckpoint() {
            for (field, value) in checkpoint {
                connection.outgoing.argument(field)
                connection.outgoing.argument(value)
            }
        }
        switch form {
        case .script:
            let guardWords = withCheckpoint ? 2 + streamsInBatch.count + 2 : 1   // numkeys, keys, tokens
            let checkpointWords = withCheckpoint ? checkpoint.count * 2 : 0
            connection.outgoing.beginCommand(arguments: 2 + guardWords + 1 + scriptArgumentCount + checkpointWords)
            connection.outgoing.argument("EVAL")
            connection.outgoing.argument(StreamCopyTarget.restoringScript)
            if withCheckpoint { appendGuard() } else { connection.outgoing.argument("0") }
            connection.outgoing.argument(String(entriesInBatch))
            connection.outgoing.append(scriptArguments)
            if withCheckpoint { appendCheckpoint() }
            inFlight.append((.script, entriesInBatch, 1, token, withCheckpoint, false))
        default:
            if withCheckpoint {
                connection.outgoing.beginCommand(arguments: 3 + 1 + streamsInBatch.count + 2 + checkpoint.count * 2)
                connection.outgoing.argument("EVAL")
                connection.outgoing.argument(StreamCopyTarget.checkpointScript)
                appendGuard()
                appendCheckpoint()
            }
            connection.outgoing.command(["EXEC"])
            // MULTI's +OK, one +QUEUED per command, EXEC's array.
            inFlight.append((.transaction, entriesInBatch, 2 + entriesInBatch + (withCheckpoint ? 1 : 0), token, withCheckpoint, false))
        }
        if let waitReplicas {
            connection.outgoing.command(["WAIT", String(waitReplicas), String(timeoutMs)])
            inFlight[inFlight.count - 1].replies += 1
            inFlight[inFlight.count - 1].waits = true
        }
        if withCheckpoint { previousBatchToken = batchToken }
        streamsInBatch.removeAll(keepingCapacity: true)
        form = .none
        entriesInBatch = 0
        if connection.outgoing.bytes.count >= 256 << 10 || inFlight.count - inFlightHead >= StreamCopyTarget.maxBatchesInFlight {
            try connection.flushWrites()
        }
        try readAnswers(waitMs: 0)
        while inFlight.count - inFlightHead >= StreamCopyTarget.maxBatchesInFlight {
            try readAnswers(waitMs: answerWaitMs, atLeastOne: true)
        }
        try throwIfFailed()
    }

    /// Sends everything and waits for every answer.
    func drain() throws {
        try connection.flushWrites()
        while inFlightHead < inFlight.count {
            try readAnswers(waitMs: answerWaitMs, atLeastOne: true)
        }
        try throwIfFailed()
    }

    /// Replies of the oldest batch in flight, one at a time; a batch is settled at its last.
    private var repliesSeen = 0
    private var queueError: String?

    /// Reads the answers that are there; `atLeastOne`: waits up to `waitMs` for the first.
    private func readAnswers(waitMs: Int32, atLeastOne: Bool = false) throws {
        var wait = waitMs
        while inFlightHead < inFlight.count {
            let result = try connection.nextReply(waitMs: wait, stopOnSignal: false) { reply in
                settle(reply)
            }
            if result != .reply {
                if atLeastOne && wait != 0 { throw connection.lost("no answer within \(waitMs / 1000) s") }
                return
            }
            wait = 0
        }
    }

    private func throwIfFailed() throws {
        if let transientRefusal { throw RedisErrorReply.error(transientRefusal, "\(connection.address.description) is not ready") }
        if let failure { throw failure }
    }

    /// Sends what is buffered (a follower's small batches must not wait for more).
    func flush() throws {
        try connection.flushWrites()
        try readAnswers(waitMs: 0)
        try throwIfFailed()
    }

    private func settle(_ reply: RedisReplyView) {
        let batch = inFlight[inFlightHead]
        repliesSeen += 1
        let outcomeAt = batch.replies - (batch.waits ? 1 : 0)
        if repliesSeen < outcomeAt {
            if reply.kind == .error && queueError == nil { queueError = reply.text }
            return
        }
        var outcome = heldOutcome ?? self.outcome(of: reply, batch.form, checkpointed: batch.checkpointed)
        if repliesSeen == outcomeAt && batch.waits {
            heldOutcome = outcome   // the WAIT's answer comes next
            return
        }
        if batch.waits {
            heldOutcome = nil
            let wanted = waitReplicas ?? 0
            if outcome.refused == nil && !(reply.kind == .integer && reply.integer >= wanted) {
                outcome.refused = reply.kind == .integer
                    ? "stored on the master, but only \(reply.integer) of \(wanted) replicas had it within --timeout (\(Int(timeoutMs) / 1000)s) (--wait-replicas); a failover now could lose the batch with its checkpoint"
                    : "stored on the master, but WAIT failed: \(reply.text)"
                outcome.guardRefusal = true   // the batch itself was applied: no retry
            }
        }
        // The batch is settled.
        repliesSeen = 0
        inFlightHead += 1
        if inFlightHead == inFlight.count {
            inFlight.removeAll(keepingCapacity: true)
            inFlightHead = 0
        } else if inFlightHead >= 64 {
            inFlight.removeFirst(inFlightHead)   // a trickle never drains it completely
            inFlightHead = 0
        }
        if let refused = outcome.refused, !outcome.guardRefusal, RedisErrorReply.cause(refused).isRetriable {
            // Redis is starting up (or busy), or the slot moved to another node of a cluster:
            // nothing of the batch was applied; like a lost connection, the copy tries again.
            if transientRefusal == nil { transientRefusal = refused }
            return
        }
        if let refused = outcome.refused {
            if failure == nil {
                failure = EvtError(outcome.guardRefusal ? .refused(code: "") : RedisErrorReply.cause(refused),
                                   "\(connection.address.description) refused a batch of \(batch.entries) entries for \(String(decoding: name, as: UTF8.self)): \(refused)")
            }
            return
        }
        if failure == nil && transientRefusal == nil {
            delivered += batch.entries
            confirmedToken = batch.token
        }
    }

    /// What the batch's own last answer (EXEC's array or EXECABORT, or the script's result)
    /// says: refused (why), and whether the checkpoint guard refused it.
    private func outcome(of reply: RedisReplyView, _ form: BatchForm, checkpointed: Bool) -> (refused: String?, guardRefusal: Bool) {
        var refused: String?
        if reply.kind == .error {
            refused = queueError ?? reply.text
        } else if reply.kind == .array {
            for index in 0..<reply.count where reply[index].kind == .error {
                refused = reply[index].text
                break
            }
        }
        queueError = nil
        // The checkpoint guard's answer: the script's own, or the last of EXEC's.
        let guardAnswer = form == .script ? reply : (reply.kind == .array && reply.count > 0 ? reply[reply.count - 1] : reply)
        let guardRefusal = refused == nil && checkpointed && guardAnswer.kind == .integer && guardAnswer.integer != 1
        if guardRefusal {
            refused = guardAnswer.integer == 0
                ? "the checkpoint moved meanwhile (another copy with the same --checkpoint NAME, or an earlier batch was refused); it was left where it was"
                : "the target is no longer a stream; the checkpoint was left where it was"
        }
        return (refused, guardRefusal)
    }

    /// Batches sent and not answered: with a lost connection, they may or may not be stored.
    var unconfirmedEntries: Int {
        inFlight[inFlightHead...].reduce(0) { $0 + $1.entries } + entriesInBatch
    }

    /// The checkpoint guard in a transaction: KEYS[1] the checkpoint, KEYS[2…] the batch's
    /// streams; ARGV[1] the token the checkpoint must carry, ARGV[2] the new one, then the
    /// checkpoint's field/value pairs. 1: written; 0: token mismatch; -1: not a stream.
    static let checkpointScript = """
        if (redis.call('HGET', KEYS[1], 'batch') or '') ~= ARGV[1] then return 0 end
        for i = 2, #KEYS do
          if redis.call('TYPE', KEYS[i]).ok ~= 'stream' then return -1 end
        end
        redis.call('HSET', KEYS[1], 'batch', ARGV[2], unpack(ARGV, 3))
        return 1
        """

    /// A batch restoring ids. With a checkpoint, KEYS and ARGV[1], ARGV[2] as for the guard
    /// above, which runs first. Then: the entry count, and per entry the stream, the id or
    /// "*", the number of field words, the fields; then the checkpoint's pairs.
    static let restoringScript = """
        local index = 1
        if #KEYS > 0 then
          if (redis.call('HGET', KEYS[1], 'batch') or '') ~= ARGV[1] then return 0 end
          for i = 2, #KEYS do
            local t = redis.call('TYPE', KEYS[i]).ok
            if t ~= 'stream' and t ~= 'none' then return -1 end
          end
          index = 3
        end
        local entries = tonumber(ARGV[index])
        index = index + 1
        for _ = 1, entries do
          local stream, id, count = ARGV[index], ARGV[index + 1], tonumber(ARGV[index + 2])
          local fields = {}
          for k = 1, count do fields[k] = ARGV[index + 2 + k] end
          index = index + 3 + count
          if id == '*' then
            redis.call('XADD', stream, '*', unpack(fields))
          else
            local added = redis.pcall('XADD', stream, id, unpack(fields))
            if type(added) == 'table' and added.err then
              fields[count + 1] = 'evt.stream.id'
              fields[count + 2] = id
              redis.call('XADD', stream, '*', unpack(fields))
            end
          end
        end
        if #KEYS > 0 then redis.call('HSET', KEYS[1], 'batch', ARGV[2], unpack(ARGV, index)) end
        return 1
        """
}
