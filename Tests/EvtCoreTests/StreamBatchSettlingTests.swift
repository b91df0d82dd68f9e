import Testing
@testable import EvtCore

@Suite("A stream batch's answers: what Redis said decides confirmed, retried, lost or refused")
struct StreamBatchSettlingTests {
    private static let settling = StreamBatchSettling(waitReplicas: nil, timeoutMs: 5000)
    private static let waitingForTwo = StreamBatchSettling(waitReplicas: 2, timeoutMs: 5000)

    /// Feeds every answer of `batch` in order: no outcome before the last answer, the outcome at it.
    private static func settle(_ answers: [StreamBatchAnswer], of batch: StreamBatch,
                               with settling: inout StreamBatchSettling) -> StreamBatchOutcome? {
        #expect(answers.count == batch.answers)
        for (index, answer) in answers.enumerated() {
            let outcome = settling.settle(answer, of: batch)
            if index == answers.count - 1 { return outcome }
            #expect(outcome == nil, "answer \(index + 1) of \(answers.count) settled the batch early")
        }
        return nil
    }

    private static func settle(_ answers: [StreamBatchAnswer], of batch: StreamBatch,
                               settling: StreamBatchSettling = settling) -> StreamBatchOutcome? {
        var settling = settling
        return settle(answers, of: batch, with: &settling)
    }

    private static func transaction(_ entries: Int, checkpointed: Bool = true, waits: Bool = false) -> StreamBatch {
        StreamBatch(form: .transaction, entries: entries, checkpointed: checkpointed, waits: waits)
    }

    private static func script(checkpointed: Bool = true, waits: Bool = false) -> StreamBatch {
        StreamBatch(form: .script, entries: 3, checkpointed: checkpointed, waits: waits)
    }

    /// A checkpointed transaction's answers: WATCH, the guard, MULTI, one QUEUED per entry and
    /// one for the checkpoint script, then EXEC.
    private static func guarded(_ entries: Int, guardAnswer: StreamBatchAnswer = .integer(1),
                                queued: StreamBatchAnswer = .ok, exec: StreamBatchAnswer) -> [StreamBatchAnswer] {
        [.ok, guardAnswer, .ok] + Array(repeating: queued, count: entries) + [.ok, exec]
    }

    private static let applied = StreamBatchAnswer.array(firstError: nil, lastInteger: 1)

    @Test("a batch's answer count: a transaction's WATCH, guard, MULTI, QUEUEDs and EXEC; a script's one; WAIT's")
    func answerCounts() {
        #expect(Self.transaction(3).answers == 8)
        #expect(Self.transaction(3, checkpointed: false).answers == 5)
        #expect(Self.transaction(3, waits: true).answers == 9)
        #expect(Self.script().answers == 1)
        #expect(Self.script(checkpointed: false).answers == 1)
        #expect(Self.script(waits: true).answers == 2)
    }

    @Test("a guarded transaction whose EXEC answered every command is confirmed at EXEC, not before")
    func transactionConfirmed() {
        #expect(Self.settle(Self.guarded(3, exec: Self.applied), of: Self.transaction(3)) == .confirmed)
        // Without a checkpoint: MULTI, the QUEUEDs, EXEC; no guard, no checkpoint script.
        #expect(Self.settle([.ok, .ok, .ok, .array(firstError: nil, lastInteger: nil)],
                            of: Self.transaction(2, checkpointed: false)) == .confirmed)
    }

    @Test("EXEC's nil (the guard refused, or WATCH saw the checkpoint change) means the checkpoint is lost")
    func transactionCheckpointLost() {
        #expect(Self.settle(Self.guarded(2, guardAnswer: .integer(0), exec: .null), of: Self.transaction(2)) == .checkpointLost)
        #expect(Self.settle(Self.guarded(2, exec: .null), of: Self.transaction(2)) == .checkpointLost)
    }

    @Test("an XADD refused inside EXEC refuses the batch with that answer's code, never retried")
    func transactionEntryRefused() {
        let wrongType = "WRONGTYPE Operation against a key holding the wrong kind of value"
        #expect(Self.settle(Self.guarded(2, exec: .array(firstError: wrongType, lastInteger: -1)), of: Self.transaction(2))
                == .refused(.refused(code: "WRONGTYPE"), wrongType))
    }

    @Test("the checkpoint script's -1 (a key is no longer a stream) refuses the batch for good")
    func transactionNotAStream() {
        #expect(Self.settle(Self.guarded(2, exec: .array(firstError: nil, lastInteger: -1)), of: Self.transaction(2))
                == .refused(.refused(code: ""), "the target is no longer a stream; the checkpoint was left where it was"))
    }

    @Test("a guard that did not answer 1 while EXEC applied the batch refuses it for good")
    func transactionGuardUndecided() {
        #expect(Self.settle(Self.guarded(2, guardAnswer: .error("ERR Error running script"), exec: Self.applied), of: Self.transaction(2))
                == .refused(.refused(code: ""), "the checkpoint guard did not decide (it answered an error), and the batch was applied; the checkpoint was left where it was"))
        #expect(Self.settle(Self.guarded(2, guardAnswer: .integer(2), exec: Self.applied), of: Self.transaction(2))
                == .refused(.refused(code: ""), "the checkpoint guard did not decide (it answered 2), and the batch was applied; the checkpoint was left where it was"))
    }

    @Test("EXECABORT after a queued MOVED, ASK or TRYAGAIN retries with the first error, not EXEC's")
    func transactionRedirected() {
        let abort = StreamBatchAnswer.error("EXECABORT Transaction discarded because of previous errors.")
        #expect(Self.settle(Self.guarded(2, queued: .error("MOVED 3999 127.0.0.1:7002"), exec: abort), of: Self.transaction(2))
                == .retriable("MOVED 3999 127.0.0.1:7002"))
        // The guard met the slot first: its answer is the one that counts.
        #expect(Self.settle(Self.guarded(2, guardAnswer: .error("ASK 3999 127.0.0.1:7002"), queued: .error("ASK 3999 127.0.0.1:7003"), exec: abort),
                            of: Self.transaction(2)) == .retriable("ASK 3999 127.0.0.1:7002"))
        #expect(Self.settle(Self.guarded(1, guardAnswer: .error("TRYAGAIN Multiple keys request during rehashing of slot"), exec: abort),
                            of: Self.transaction(1)) == .retriable("TRYAGAIN Multiple keys request during rehashing of slot"))
    }

    @Test("a server still loading answers every command with LOADING: retried")
    func transactionLoading() {
        let loading = StreamBatchAnswer.error("LOADING Redis is loading the dataset in memory")
        let answers = Array(repeating: loading, count: 6)
        #expect(Self.settle(answers, of: Self.transaction(1)) == .retriable("LOADING Redis is loading the dataset in memory"))
    }

    @Test("EXECABORT after a queued OOM, or with no earlier error, refuses the batch with that code")
    func transactionAbortedForGood() {
        let abort = StreamBatchAnswer.error("EXECABORT Transaction discarded because of previous errors.")
        let oom = "OOM command not allowed when used memory > 'maxmemory'."
        #expect(Self.settle(Self.guarded(2, queued: .error(oom), exec: abort), of: Self.transaction(2))
                == .refused(.refused(code: "OOM"), oom))
        #expect(Self.settle(Self.guarded(2, exec: abort), of: Self.transaction(2))
                == .refused(.refused(code: "EXECABORT"), "EXECABORT Transaction discarded because of previous errors."))
    }

    @Test("the restoring script: 1 confirmed, 0 checkpoint lost, -1 not a stream, BUSY retried, an error refused")
    func script() {
        #expect(Self.settle([.integer(1)], of: Self.script()) == .confirmed)
        #expect(Self.settle([.integer(1)], of: Self.script(checkpointed: false)) == .confirmed)
        #expect(Self.settle([.integer(0)], of: Self.script()) == .checkpointLost)
        #expect(Self.settle([.integer(-1)], of: Self.script())
                == .refused(.refused(code: ""), "the target is no longer a stream; the checkpoint was left where it was"))
        let busy = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
        #expect(Self.settle([.error(busy)], of: Self.script()) == .retriable(busy))
        let failed = "ERR Error running script (call to f_1): @user_script:12: Unknown Redis command called from script"
        #expect(Self.settle([.error(failed)], of: Self.script()) == .refused(.refused(code: "ERR"), failed))
    }

    @Test("--wait-replicas: the batch settles at WAIT's answer, confirmed once enough replicas have it")
    func waitEnoughReplicas() {
        let batch = Self.transaction(2, waits: true)
        #expect(Self.settle(Self.guarded(2, exec: Self.applied) + [.integer(2)], of: batch, settling: Self.waitingForTwo) == .confirmed)
        #expect(Self.settle(Self.guarded(2, exec: Self.applied) + [.integer(3)], of: batch, settling: Self.waitingForTwo) == .confirmed)
        #expect(Self.settle([.integer(1), .integer(2)], of: Self.script(waits: true), settling: Self.waitingForTwo) == .confirmed)
    }

    @Test("--wait-replicas: too few replicas, or WAIT refused, refuses an applied batch for good")
    func waitTooFewReplicas() {
        let batch = Self.transaction(2, waits: true)
        #expect(Self.settle(Self.guarded(2, exec: Self.applied) + [.integer(1)], of: batch, settling: Self.waitingForTwo)
                == .refused(.refused(code: ""), "stored on the master, but only 1 of 2 replicas had it within --timeout (5s) (--wait-replicas); a failover now could lose the batch with its checkpoint"))
        #expect(Self.settle(Self.guarded(2, exec: Self.applied) + [.error("ERR WAIT cannot be used with replica instances.")], of: batch, settling: Self.waitingForTwo)
                == .refused(.refused(code: ""), "stored on the master, but WAIT failed: ERR WAIT cannot be used with replica instances."))
        // A retriable answer to WAIT is no retry: the batch was applied already.
        #expect(Self.settle(Self.guarded(2, exec: Self.applied) + [.error("LOADING Redis is loading the dataset in memory")], of: batch, settling: Self.waitingForTwo)
                == .refused(.refused(code: ""), "stored on the master, but WAIT failed: LOADING Redis is loading the dataset in memory"))
    }

    @Test("--wait-replicas: a batch refused by its own answer keeps that outcome, whatever WAIT says")
    func waitAfterRefusal() {
        let batch = Self.transaction(2, waits: true)
        #expect(Self.settle(Self.guarded(2, guardAnswer: .integer(0), exec: .null) + [.integer(2)], of: batch, settling: Self.waitingForTwo) == .checkpointLost)
        #expect(Self.settle([.integer(-1), .integer(0)], of: Self.script(waits: true), settling: Self.waitingForTwo)
                == .refused(.refused(code: ""), "the target is no longer a stream; the checkpoint was left where it was"))
        let abort = StreamBatchAnswer.error("EXECABORT Transaction discarded because of previous errors.")
        #expect(Self.settle(Self.guarded(2, queued: .error("MOVED 3999 127.0.0.1:7002"), exec: abort) + [.integer(0)], of: batch, settling: Self.waitingForTwo)
                == .retriable("MOVED 3999 127.0.0.1:7002"))
    }

    @Test("what one batch's answers said does not carry over to the next batch")
    func batchesSettleApart() {
        var settling = Self.settling
        let abort = StreamBatchAnswer.error("EXECABORT Transaction discarded because of previous errors.")
        #expect(Self.settle(Self.guarded(2, guardAnswer: .error("ASK 3999 127.0.0.1:7002"), queued: .error("ASK 3999 127.0.0.1:7002"), exec: abort),
                            of: Self.transaction(2), with: &settling) == .retriable("ASK 3999 127.0.0.1:7002"))
        #expect(Self.settle(Self.guarded(2, exec: Self.applied), of: Self.transaction(2), with: &settling) == .confirmed)
        // A guard that answered an error, then a batch that went through: the next guard's 1 counts.
        #expect(Self.settle(Self.guarded(1, guardAnswer: .error("ERR Error running script"), exec: Self.applied), of: Self.transaction(1), with: &settling)
                == .refused(.refused(code: ""), "the checkpoint guard did not decide (it answered an error), and the batch was applied; the checkpoint was left where it was"))
        #expect(Self.settle(Self.guarded(1, exec: Self.applied), of: Self.transaction(1), with: &settling) == .confirmed)

        var waiting = Self.waitingForTwo
        #expect(Self.settle(Self.guarded(1, exec: .null) + [.integer(2)], of: Self.transaction(1, waits: true), with: &waiting) == .checkpointLost)
        #expect(Self.settle(Self.guarded(1, exec: Self.applied) + [.integer(2)], of: Self.transaction(1, waits: true), with: &waiting) == .confirmed)
    }
}
