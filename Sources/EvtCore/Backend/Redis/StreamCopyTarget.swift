/// `copy-between`'s writer into a Redis stream. The entries of one batch and the checkpoint
/// that says they were copied go to Redis in one MULTI/EXEC: both are applied or neither, so
/// a copy killed at any point resumes exactly where the stream ends — nothing lost, nothing
/// twice. Transactions are pipelined; a batch counts as copied only once its EXEC answered.
///
/// An entry whose source id should be restored (a record that came from a stream) needs
/// `XADD key ID`, which Redis refuses when the stream already has a newer id. Such batches go
/// as one Lua script instead, which tries the id and falls back to an automatic id plus the
/// field `evt.stream.id` — atomically with the checkpoint, whatever another writer does.
final class StreamCopyTarget {
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
    private var inFlight: [(form: BatchForm, entries: Int, replies: Int, token: Int)] = []
    private var inFlightHead = 0
    /// The token of the newest batch Redis confirmed.
    private(set) var confirmedToken: Int?
    private(set) var delivered = 0
    /// Set when a batch was refused: the reason; nothing after it counts as copied.
    private(set) var failure: String?

    private static let maxBatchesInFlight = 8

    init(server: RedisServerAddress, description: String, checkpointKey: String?) throws {
        connection = try RedisConnection(server)
        self.name = Array(description.utf8)
        self.checkpointKey = checkpointKey.map { Array($0.utf8) }
    }

    /// A key of another type would refuse every XADD of a transaction while its checkpoint
    /// still moved: refuse it before copying anything.
    func checkIsStreamOrAbsent(_ stream: String) throws {
        let type = try connection.call(["TYPE", stream])
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
        switch form {
        case .script:
            let keys = withCheckpoint ? 1 : 0
            let checkpointWords = withCheckpoint ? checkpoint.count * 2 : 0
            connection.outgoing.beginCommand(arguments: 3 + keys + 1 + scriptArgumentCount + checkpointWords)
            connection.outgoing.argument("EVAL")
            connection.outgoing.argument(StreamCopyTarget.restoringScript)
            connection.outgoing.argument(String(keys))
            if withCheckpoint { connection.outgoing.argument(checkpointKey!) }
            connection.outgoing.argument(String(entriesInBatch))
            connection.outgoing.append(scriptArguments)
            if withCheckpoint {
                for (field, value) in checkpoint {
                    connection.outgoing.argument(field)
                    connection.outgoing.argument(value)
                }
            }
            inFlight.append((.script, entriesInBatch, 1, token))
        default:
            if withCheckpoint {
                connection.outgoing.beginCommand(arguments: 2 + checkpoint.count * 2)
                connection.outgoing.argument("HSET")
                connection.outgoing.argument(checkpointKey!)
                for (field, value) in checkpoint {
                    connection.outgoing.argument(field)
                    connection.outgoing.argument(value)
                }
            }
            connection.outgoing.command(["EXEC"])
            // MULTI's +OK, one +QUEUED per command, EXEC's array.
            inFlight.append((.transaction, entriesInBatch, 2 + entriesInBatch + (withCheckpoint ? 1 : 0), token))
        }
        form = .none
        entriesInBatch = 0
        if connection.outgoing.bytes.count >= 256 << 10 || inFlight.count - inFlightHead >= StreamCopyTarget.maxBatchesInFlight {
            try connection.flushWrites()
        }
        try readAnswers(waitMs: 0)
        while inFlight.count - inFlightHead >= StreamCopyTarget.maxBatchesInFlight {
            try readAnswers(waitMs: 10_000, atLeastOne: true)
        }
        if let failure { throw EvtError.failure(failure) }
    }

    /// Sends everything and waits for every answer.
    func drain() throws {
        try connection.flushWrites()
        while inFlightHead < inFlight.count {
            try readAnswers(waitMs: 10_000, atLeastOne: true)
        }
        if let failure { throw EvtError.failure(failure) }
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
                if atLeastOne && wait != 0 { throw RedisConnectionLost(reason: "no answer within \(waitMs / 1000) s") }
                return
            }
            wait = 0
        }
    }

    /// Sends what is buffered (a follower's small batches must not wait for more).
    func flush() throws {
        try connection.flushWrites()
        try readAnswers(waitMs: 0)
        if let failure { throw EvtError.failure(failure) }
    }

    private func settle(_ reply: RedisReplyView) {
        let batch = inFlight[inFlightHead]
        repliesSeen += 1
        if batch.form == .transaction && repliesSeen < batch.replies {
            if reply.kind == .error && queueError == nil { queueError = reply.text }
            return
        }
        // The batch's last answer: EXEC's array (or EXECABORT), or the script's result.
        repliesSeen = 0
        inFlightHead += 1
        if inFlightHead == inFlight.count { inFlight.removeAll(keepingCapacity: true); inFlightHead = 0 }
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
        if let refused {
            if failure == nil {
                failure = "\(connection.address.description) refused a batch of \(batch.entries) entries for \(String(decoding: name, as: UTF8.self)): \(refused)"
            }
            return
        }
        if failure == nil {
            delivered += batch.entries
            confirmedToken = batch.token
        }
    }

    /// Batches sent and not answered: with a lost connection, they may or may not be stored.
    var unconfirmedEntries: Int {
        inFlight[inFlightHead...].reduce(0) { $0 + $1.entries } + entriesInBatch
    }

    /// KEYS[1] the checkpoint hash (optional). ARGV[1] the entry count, then per entry: the
    /// stream, the id or "*", the number of field words, the fields; then checkpoint pairs.
    static let restoringScript = """
        local index = 2
        for _ = 1, tonumber(ARGV[1]) do
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
        if KEYS[1] and index <= #ARGV then redis.call('HSET', KEYS[1], unpack(ARGV, index)) end
        return 1
        """
}
