/// One batch of a stream target as sent (StreamBatchWriter): what Redis will answer to it.
struct StreamBatch {
    /// Plain (WATCH, the guard, MULTI … EXEC) or restoring ids (one EVAL).
    enum Form { case transaction, script }
    let form: Form
    let entries: Int
    /// With a checkpoint: the transaction's WATCH and guard before its MULTI, and the
    /// checkpoint script before its EXEC; the restoring script's own guard.
    let checkpointed: Bool
    /// A WAIT (--wait-replicas) follows the batch: its answer is the batch's last.
    let waits: Bool

    /// How many answers the batch gets. A transaction: with a checkpoint, WATCH's +OK and the
    /// guard's answer first; MULTI's +OK, one +QUEUED per command, EXEC's array (nil when the
    /// guard or WATCH stopped it). A script: its one answer. Then WAIT's, if it waits.
    var answers: Int {
        let own = form == .script ? 1 : 2 + entries + (checkpointed ? 3 : 0)
        return own + (waits ? 1 : 0)
    }
}

/// What settling a batch needs of one of Redis's answers to it, read from the borrowed reply
/// without copying it: only an error's text is copied.
enum StreamBatchAnswer: Equatable {
    /// +OK, +QUEUED, or any other status or string.
    case ok
    case integer(Int)
    case error(String)
    case null
    /// EXEC's answers: the first error among them, and the last one (the checkpoint script's)
    /// when it is an integer.
    case array(firstError: String?, lastInteger: Int?)

    init(_ reply: RedisReplyView) {
        switch reply.kind {
        case .string, .status: self = .ok
        case .integer: self = .integer(reply.integer)
        case .error: self = .error(reply.text)
        case .null: self = .null
        case .array:
            var firstError: String?
            for index in 0..<reply.count where reply[index].kind == .error {
                firstError = reply[index].text
                break
            }
            let last = reply.count > 0 ? reply[reply.count - 1] : nil
            self = .array(firstError: firstError, lastInteger: last?.kind == .integer ? last?.integer : nil)
        }
    }
}

/// What became of a batch, once its last answer came.
enum StreamBatchOutcome: Equatable {
    /// Applied: its entries are in the streams and the checkpoint moved with them.
    case confirmed
    /// Nothing of it was applied, and the same batch may be later: Redis is starting up or
    /// busy, or a cluster's slot moved (LOADING, BUSY, MOVED, ASK, TRYAGAIN…). Redis's answer.
    case retriable(String)
    /// Nothing of it was applied: the checkpoint no longer carries this copy's token, so
    /// another copy claimed it.
    case checkpointLost
    /// Refused for good, never retried: the cause and why (Redis's answer, or what evt found
    /// missing from a batch that was applied: the checkpoint's move, or the replicas).
    case refused(FailureCause, String)
}

/// How Redis's answers to pipelined batches settle them. The writer hands over every answer
/// of the oldest batch in flight, in order; the batch's last one gives its outcome. Holds
/// what the answers before it said: the first error, the guard's answer.
struct StreamBatchSettling {
    /// --wait-replicas N: a batch counts as copied once N replicas have it.
    let waitReplicas: Int?
    /// --timeout, which WAIT is given too.
    let timeoutMs: Int32

    /// Answers of the batch being settled, so far.
    private var answersSeen = 0
    /// The first error among the answers before the batch's own last (EXEC's abort names it).
    private var queueError: String?
    /// The guard's answer to the open transaction (before its MULTI): 1 go, 0 refused.
    private var guardAnswer: Int?
    /// The batch's own outcome (its refusal, if any), held until its WAIT answers.
    private var heldOutcome: BatchOutcome?

    init(waitReplicas: Int?, timeoutMs: Int32) {
        self.waitReplicas = waitReplicas
        self.timeoutMs = timeoutMs
    }

    /// The next answer of `batch`: its outcome when that was the batch's last answer.
    mutating func settle(_ answer: StreamBatchAnswer, of batch: StreamBatch) -> StreamBatchOutcome? {
        answersSeen += 1
        let outcomeAt = batch.answers - (batch.waits ? 1 : 0)
        if answersSeen < outcomeAt {
            if case .error(let message) = answer, queueError == nil { queueError = message }
            if answersSeen == 2 && batch.form == .transaction && batch.checkpointed {
                if case .integer(let value) = answer { guardAnswer = value } else { guardAnswer = nil }
            }
            return nil
        }
        var outcome = heldOutcome ?? self.outcome(of: answer, batch.form, checkpointed: batch.checkpointed)
        if answersSeen == outcomeAt && batch.waits {
            heldOutcome = outcome   // the WAIT's answer comes next
            return nil
        }
        if batch.waits {
            heldOutcome = nil
            let wanted = waitReplicas ?? 0
            var replicas: Int?
            if case .integer(let count) = answer { replicas = count }
            if outcome.refused == nil && !(replicas.map { $0 >= wanted } ?? false) {
                if let replicas {
                    outcome.refused = "stored on the master, but only \(replicas) of \(wanted) replicas had it within --timeout (\(Int(timeoutMs) / 1000)s) (--wait-replicas); a failover now could lose the batch with its checkpoint"
                } else {
                    var message = ""
                    if case .error(let text) = answer { message = text }
                    outcome.refused = "stored on the master, but WAIT failed: \(message)"
                }
                outcome.final = .refused(code: "")   // the batch itself was applied: no retry
            }
        }
        answersSeen = 0
        guard let refused = outcome.refused else { return .confirmed }
        if outcome.final == nil && RedisErrorReply.cause(refused).isRetriable { return .retriable(refused) }
        if outcome.final == .claimed { return .checkpointLost }
        return .refused(outcome.final ?? RedisErrorReply.cause(refused), refused)
    }

    /// What became of a batch: refused (why), and the cause when it is not the Redis error's
    /// own (the guard refused it, or WAIT found too few replicas): then it is never retried.
    private struct BatchOutcome {
        var refused: String?
        var final: FailureCause?
    }

    /// What the batch's own last answer (EXEC's array, nil or EXECABORT, or the script's
    /// result) says.
    private mutating func outcome(of answer: StreamBatchAnswer, _ form: StreamBatch.Form, checkpointed: Bool) -> BatchOutcome {
        var outcome = BatchOutcome()
        let guardAnswer = self.guardAnswer
        self.guardAnswer = nil
        if case .error(let message) = answer {
            outcome.refused = queueError ?? message
        } else if case .array(let firstError, _) = answer {
            outcome.refused = firstError
        }
        queueError = nil
        guard outcome.refused == nil && checkpointed else { return outcome }
        // Nothing was applied when the guard refused: EXEC's nil (the guard wrote the fence
        // key, or the checkpoint changed after it), or the restoring script's 0. Either way
        // the checkpoint no longer carries this run's token: another copy claimed it (an
        // earlier refused batch of this run has been reported already).
        if form == .transaction && answer == .null || form == .script && answer == .integer(0) {
            outcome.refused = "the checkpoint is no longer this copy's"
            outcome.final = .claimed
            return outcome
        }
        // The checkpoint script's answer: the restoring script's own, or the last of EXEC's.
        var written: Int?
        switch answer {
        case .integer(let value): written = value
        case .array(_, let last) where form == .transaction: written = last
        default: written = nil
        }
        if written == -1 {
            outcome.refused = "the target is no longer a stream; the checkpoint was left where it was"
            outcome.final = .refused(code: "")
        } else if form == .transaction && guardAnswer != 1 {
            // Cannot happen unless the guard failed (it answered an error) and Redis went on.
            outcome.refused = "the checkpoint guard did not decide (it answered \(guardAnswer.map(String.init) ?? "an error")), and the batch was applied; the checkpoint was left where it was"
            outcome.final = .refused(code: "")
        }
        return outcome
    }
}
