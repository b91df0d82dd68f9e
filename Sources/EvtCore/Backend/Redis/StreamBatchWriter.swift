#if canImport(Glibc)
import Glibc
#endif

/// The stream target's writer: pipelined batches of entries, each guarded by the checkpoint.
/// The entries of one batch and the checkpoint that says they were copied go to Redis in one
/// MULTI/EXEC: both are applied or neither, so a copy killed at any point resumes exactly
/// where the stream ends — nothing lost, nothing twice. Transactions are pipelined; a batch
/// counts as copied only once its EXEC answered.
///
/// EXEC does not roll back, and pipelined batches do not wait for each other, so whether a
/// batch may be written is decided before it is: each transaction is preceded by WATCH on
/// the checkpoint and on this run's fence key, and by a small script that checks that the
/// checkpoint still carries the token of the batch before. When it does not — a refused
/// batch broke the chain, or another copy claimed the checkpoint (each claim sets a new
/// token) — the script writes the fence key, so EXEC applies nothing; WATCH also aborts a
/// batch whose checkpoint another client changed after the check. Inside the transaction a
/// second script moves the checkpoint (and renews the lease) only if every stream of the
/// batch is a stream (an XADD refused at run time, WRONGTYPE, is the one failure that
/// leaves the rest of a transaction applied; the next batch then finds the chain broken).
///
/// An entry whose source id should be restored (a record that came from a stream) needs
/// `XADD key ID`, which Redis refuses when the stream already has a newer id. Such batches go
/// as one Lua script instead, which tries the id and falls back to an automatic id plus the
/// field `evt.stream.id` — atomically with the checkpoint, whatever another writer does.
final class StreamBatchWriter: StreamEntryWriter {
    let connection: RedisConnection
    /// Told of a batch's MOVED answer, so that the copy's next attempt goes where the slot is.
    private let router: ClusterRouter
    private let name: [UInt8]
    /// The checkpoint (claimed before the first batch), its hash and this run's fence key.
    private let checkpoint: (store: RedisHashCheckpoint, key: String, fence: String)?

    /// The batch being built: plain (MULTI … EXEC) or restoring ids (one EVAL); nil when none is.
    private var form: StreamBatch.Form?
    private var entriesInBatch = 0
    /// EVAL arguments after the keys, built here and counted, then put behind the command head.
    private var scriptArguments = RespCommandBuffer(capacity: 1 << 16)
    private var scriptArgumentCount = 0

    /// Batches sent and not yet answered, oldest first, with their tokens.
    private var inFlight: [(batch: StreamBatch, token: Int)] = []
    /// What the answers to the oldest batch in flight said so far.
    private var settling: StreamBatchSettling
    /// --wait-replicas N: a batch counts as copied once N replicas have it.
    private let waitReplicas: Int?
    /// The streams the open batch writes to (one, or a few with --per-partition).
    private var streamsInBatch: [[UInt8]] = []
    /// The `batch` token the checkpoint must carry for the next batch to move it: at first
    /// the token of the claim.
    private var previousBatchToken: String?
    private var inFlightHead = 0
    /// The token of the newest batch Redis confirmed.
    private(set) var confirmedToken: Int?
    private(set) var delivered = 0
    /// Set when a batch was refused: the reason; nothing after it counts as copied.
    private(set) var failure: EvtError?
    /// Set when Redis answered "not now" (LOADING, BUSY, a cluster's MOVED, ASK, TRYAGAIN…):
    /// handled like a lost connection.
    private var transientRefusal: String?

    /// Deep enough that evt rarely waits for Redis and goes back to draining librdkafka's
    /// prefetch queue (8 in flight: 8.2 s for 1 M records from the mock; 32: 7.2 s; 128: 6.7 s,
    /// same RSS: the unanswered commands wait in the socket and in Redis, not in evt).
    private static let maxBatchesInFlight = 128

    /// `stream`: the key whose slot serves the copy on a cluster (the checkpoint and every
    /// stream written share it).
    init(server: RedisServerAddress, stream: String, description: String, checkpoint: RedisHashCheckpoint?,
         timeoutMs: Int, waitReplicas: Int? = nil) throws {
        self.waitReplicas = waitReplicas
        router = ClusterRouter.of(server)
        connection = try router.connect(key: stream)
        self.name = Array(description.utf8)
        self.checkpoint = try checkpoint.map { ($0, try $0.resolvedKey(), try $0.fenceKey()) }
        self.timeoutMs = Int32(clamping: timeoutMs)
        settling = StreamBatchSettling(waitReplicas: waitReplicas, timeoutMs: self.timeoutMs)
    }

    /// The token the checkpoint must carry for the next batch.
    private var expectedToken: String {
        if previousBatchToken == nil { previousBatchToken = checkpoint?.store.claimToken ?? "" }
        return previousBatchToken!
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
            throw EvtError(.refused(code: "WRONGTYPE"), "\(connection.address.description): \(stream) is a \(type), not a stream; copy into another name or delete it.")
        }
    }

    // MARK: Building a batch

    /// Starts an entry with `fieldCount` field/value pairs. `restoring`: the source entry id to
    /// give it. Returns false when the open batch cannot take such an entry: commit, then retry.
    func beginEntry(stream: [UInt8], restoring id: UnsafeRawBufferPointer?, fieldCount: Int) -> Bool {
        if form == nil { startBatch(id != nil ? .script : .transaction) }
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

    private func startBatch(_ newForm: StreamBatch.Form) {
        form = newForm
        entriesInBatch = 0
        if newForm == .transaction {
            if let checkpoint {
                // The guard decides before anything of the batch is queued (see above).
                connection.outgoing.command(["WATCH", checkpoint.key, checkpoint.fence])
                connection.outgoing.command(["EVAL", StreamBatchWriter.guardScript, "2", checkpoint.key, checkpoint.fence, expectedToken])
            }
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

    /// Ends the batch: the checkpoint (hash fields of the checkpoint) goes with the entries.
    /// `token` comes back as `confirmedToken` once Redis applied it. Sends when enough is
    /// buffered; waits only when too many batches are unanswered.
    func commit(checkpoint fields: [(String, String)], token: Int) throws {
        guard let form else { return }
        let batchToken = "\(checkpoint?.store.claimToken ?? "")/\(token)"
        let lease = String(CheckpointLease.durationMs)
        /// KEYS: the checkpoint (and the fence key: see checkpointScript), then the batch's streams.
        func appendKeys(_ checkpoint: (store: RedisHashCheckpoint, key: String, fence: String), fence: Bool) {
            connection.outgoing.argument(String(1 + (fence ? 1 : 0) + streamsInBatch.count))
            connection.outgoing.argument(checkpoint.key)
            if fence { connection.outgoing.argument(checkpoint.fence) }
            for stream in streamsInBatch { connection.outgoing.argument(stream) }
        }
        func appendFields() {
            for (field, value) in fields {
                connection.outgoing.argument(field)
                connection.outgoing.argument(value)
            }
        }
        switch form {
        case .script:
            let guardWords = checkpoint != nil ? 2 + streamsInBatch.count + 3 : 1   // numkeys, keys, tokens, lease
            let checkpointWords = checkpoint != nil ? fields.count * 2 : 0
            connection.outgoing.beginCommand(arguments: 2 + guardWords + 1 + scriptArgumentCount + checkpointWords)
            connection.outgoing.argument("EVAL")
            connection.outgoing.argument(StreamBatchWriter.restoringScript)
            if let checkpoint {
                appendKeys(checkpoint, fence: false)
                connection.outgoing.argument(expectedToken)
                connection.outgoing.argument(batchToken)
                connection.outgoing.argument(lease)
            } else {
                connection.outgoing.argument("0")
            }
            connection.outgoing.argument(String(entriesInBatch))
            connection.outgoing.append(scriptArguments)
            if checkpoint != nil { appendFields() }
            inFlight.append((StreamBatch(form: .script, entries: entriesInBatch, checkpointed: checkpoint != nil,
                                         waits: waitReplicas != nil), token))
        default:
            if let checkpoint {
                connection.outgoing.beginCommand(arguments: 3 + 2 + streamsInBatch.count + 2 + fields.count * 2)
                connection.outgoing.argument("EVAL")
                connection.outgoing.argument(StreamBatchWriter.checkpointScript)
                appendKeys(checkpoint, fence: true)
                connection.outgoing.argument(batchToken)
                connection.outgoing.argument(lease)
                appendFields()
            }
            connection.outgoing.command(["EXEC"])
            inFlight.append((StreamBatch(form: .transaction, entries: entriesInBatch, checkpointed: checkpoint != nil,
                                         waits: waitReplicas != nil), token))
        }
        if let waitReplicas {
            connection.outgoing.command(["WAIT", String(waitReplicas), String(timeoutMs)])
        }
        if checkpoint != nil { previousBatchToken = batchToken }
        streamsInBatch.removeAll(keepingCapacity: true)
        self.form = nil
        entriesInBatch = 0
        if connection.outgoing.bytes.count >= 256 << 10 || inFlight.count - inFlightHead >= StreamBatchWriter.maxBatchesInFlight {
            try connection.flushWrites()
        }
        try readAnswers(waitMs: 0)
        while inFlight.count - inFlightHead >= StreamBatchWriter.maxBatchesInFlight {
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

    /// An answer of the oldest batch in flight; at its last, the batch is settled.
    private func settle(_ reply: RedisReplyView) {
        let (batch, token) = inFlight[inFlightHead]
        guard let outcome = settling.settle(StreamBatchAnswer(reply), of: batch) else { return }
        inFlightHead += 1
        if inFlightHead == inFlight.count {
            inFlight.removeAll(keepingCapacity: true)
            inFlightHead = 0
        } else if inFlightHead >= 64 {
            inFlight.removeFirst(inFlightHead)   // a trickle never drains it completely
            inFlightHead = 0
        }
        switch outcome {
        case .retriable(let answer):
            // Redis is starting up (or busy), or the slot moved to another node of a cluster:
            // nothing of the batch was applied; like a lost connection, the copy tries again
            // (CopyLoop: where the router points, within its limits).
            if transientRefusal == nil {
                transientRefusal = answer
                router.learn(from: answer, answeredBy: connection.node)
            }
        case .checkpointLost:
            if failure == nil { failure = CheckpointLease.lost("checkpoint \(checkpoint?.key ?? "")", holder: nil) }
        case .refused(let cause, let reason):
            if failure == nil {
                failure = EvtError(cause, "\(connection.address.description) refused a batch of \(batch.entries) entries for \(String(decoding: name, as: UTF8.self)): \(reason)")
            }
        case .confirmed:
            if failure == nil && transientRefusal == nil {
                delivered += batch.entries
                confirmedToken = token
            }
        }
    }

    /// Batches sent and not answered: with a lost connection, they may or may not be stored.
    var unconfirmedEntries: Int {
        inFlight[inFlightHead...].reduce(0) { $0 + $1.batch.entries } + entriesInBatch
    }

    /// The guard before a transaction: KEYS[1] the checkpoint, KEYS[2] this run's fence key
    /// (both watched); ARGV[1] the token the checkpoint must carry. 1: go on; 0: refused, and
    /// the fence key written, so that the transaction's EXEC applies nothing.
    static let guardScript = """
        if (redis.call('HGET', KEYS[1], 'batch') or '') == ARGV[1] then return 1 end
        redis.call('SET', KEYS[2], '1', 'PX', 60000)
        return 0
        """

    /// The checkpoint write at the end of a transaction: KEYS[1] the checkpoint, KEYS[2] the
    /// fence key (only named: so the transaction touches every key the guard did, and on a
    /// Redis Cluster a slot that moves, where the guard got TRYAGAIN or ASK, fails the EXEC as
    /// well), KEYS[3…] the batch's streams; ARGV[1] the batch's token, ARGV[2] the lease in
    /// ms, then the checkpoint's field/value pairs. 1: written; -1: a stream is not a stream
    /// (not written).
    static let checkpointScript = """
        for i = 3, #KEYS do
          if redis.call('TYPE', KEYS[i]).ok ~= 'stream' then return -1 end
        end
        \(RedisHashCheckpoint.now)
        redis.call('HSET', KEYS[1], 'batch', ARGV[1], 'owner_until', string.format('%d', now + tonumber(ARGV[2])), unpack(ARGV, 3))
        return 1
        """

    /// A batch restoring ids, guard included. With a checkpoint: KEYS[1] the checkpoint,
    /// KEYS[2…] the batch's streams; ARGV[1] the token the checkpoint must carry, ARGV[2] the
    /// batch's token, ARGV[3] the lease in ms. Then: the entry count, and per entry the
    /// stream, the id or "*", the number of field words, the fields; then the checkpoint's
    /// pairs. 1: written; 0: the checkpoint is not this run's; -1: a key is not a stream
    /// (nothing written either way).
    static let restoringScript = """
        local index = 1
        if #KEYS > 0 then
          if (redis.call('HGET', KEYS[1], 'batch') or '') ~= ARGV[1] then return 0 end
          for i = 2, #KEYS do
            local t = redis.call('TYPE', KEYS[i]).ok
            if t ~= 'stream' and t ~= 'none' then return -1 end
          end
          index = 4
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
        if #KEYS > 0 then
          \(RedisHashCheckpoint.now)
          redis.call('HSET', KEYS[1], 'batch', ARGV[2], 'owner_until', string.format('%d', now + tonumber(ARGV[3])), unpack(ARGV, index))
        end
        return 1
        """
}
