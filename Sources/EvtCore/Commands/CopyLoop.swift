/// The loop of every copy (copy-between, replay --to, and tail and replay into stdout):
/// load the checkpoint, read, write, confirm. It knows no backend: the source, the target and the checkpoint store do
/// (Backend/CopyProtocols.swift).
///
/// At least once: the checkpoint only ever names records the target acknowledged. A target
/// that confirms as it goes (a stream, which keeps the checkpoint in its own batches) is
/// drained only at the end and when idle; any other is drained (every record sent so far
/// acknowledged) about once a second, after each batch of a queue source, and at the end,
/// and the checkpoint is written after that.
///
/// One copy at a time: the checkpoint is claimed once both ends are ready and before
/// anything is read (refused while another copy holds it), its lease renewed after each
/// drain, and given up by the caller at the end (CheckpointLease).
final class CopyLoop {
    private let makeSource: () throws -> RecordSource
    private let makeTarget: (RecordSource) throws -> RecordTarget
    private let checkpoint: CheckpointStore?
    private let follow: Bool
    /// Following, wait out a lost connection and go on from the confirmed position. Not for
    /// stdout, which cannot take back what it printed: tail and replay -f exit 1 instead.
    private let ridesOutOutages: Bool
    private let statsEveryMs: Int?
    /// A replay's positions, instead of a checkpoint and the source's whole history.
    private let range: (from: Position, until: Position?)?
    /// At most this many records (`-c N`), counting those `matcher` let through.
    private let limit: Int
    /// `--match` (tail, replay): the records it leaves out are not written, but the position
    /// moves past them as past any other.
    private let matcher: RecordMatcher?
    /// `--schema-registry`: framed keys and values decoded before `matcher` and the target
    /// see them.
    private let decoding: SchemaDecoding?
    /// After each record handed to the target (replay's --rate and progress line).
    private let afterRecord: (() throws -> Void)?
    /// A Redis Cluster slot that moves under the copy: the router's limits (ClusterRedirects),
    /// its "not now" pauses within --timeout.
    private var redirects: ClusterRedirects

    /// Records the target acknowledged, over every attempt; records skipped as already there.
    private(set) var copied = 0
    private(set) var skipped = 0
    /// What the target acknowledged: where a rerun, or the next attempt, starts.
    private(set) var confirmed = SourcePosition()
    private var saved: SourcePosition?
    /// The source's end as of the first start (without -f the copy stops there).
    private var end: SourcePosition?
    private var started = false
    private var outageSince: Int?
    private var lastStats = monotonicMilliseconds()
    private var copiedAtLastStats = 0
    /// `--metrics` (copy-between -f): where the loop's own figures are published, once per
    /// batch and per confirmation. The loop adds to `figures` without a lock; it measures
    /// only for `metrics` or `--stats`.
    private let metrics: WorkerMetrics?
    private let measuring: Bool
    private var figures = WorkerFigures()
    /// The times of the records written and not yet confirmed, oldest first.
    private var times = EventTimes(capacity: 1024)
    /// Records written to the target in this attempt (not skipped), and `copied` as it
    /// began; those of `copied` whose end-to-end time was observed.
    private var writtenThisAttempt = 0
    private var copiedAtAttemptStart = 0
    private var observedCopied = 0

    init(follow: Bool, ridesOutOutages: Bool = true, checkpoint: CheckpointStore? = nil, statsEveryMs: Int? = nil,
         range: (from: Position, until: Position?)? = nil, limit: Int = .max, matcher: RecordMatcher? = nil,
         decoding: SchemaDecoding? = nil, afterRecord: (() throws -> Void)? = nil, timeoutMs: Int = 30_000,
         metrics: WorkerMetrics? = nil, source: @escaping () throws -> RecordSource, target: @escaping (RecordSource) throws -> RecordTarget) {
        self.follow = follow
        self.ridesOutOutages = ridesOutOutages
        self.checkpoint = checkpoint
        self.statsEveryMs = statsEveryMs
        self.range = range
        self.limit = limit
        self.matcher = matcher
        self.decoding = decoding
        self.afterRecord = afterRecord
        redirects = ClusterRedirects(timeoutMs: timeoutMs)
        self.metrics = metrics
        measuring = metrics != nil || statsEveryMs != nil
        makeSource = source
        makeTarget = target
    }

    /// Copies until the source's end (or, following, until a stop signal). Following, a
    /// lost connection or a "not now" answer is waited out and the copy goes on from the
    /// confirmed position; any other error is thrown.
    func run() throws {
        var copiedAtLastMove = -1
        while true {
            do {
                return try copyOnce()
            } catch let error as EvtError where error.cause.isMoved && !Signals.stopRequested {
                // A cluster slot moved under the copy, follow or not: nothing of the refused
                // batches was applied. Go on where the router points now (at once after MOVED,
                // after a pause while the slot is still moving), from the confirmed position.
                countRedeliveries()
                if copied != copiedAtLastMove { redirects.applied() }
                copiedAtLastMove = copied
                switch redirects.next(after: error.cause, now: monotonicMilliseconds()) {
                case .retry(let pause): if pause > 0 { Signals.sleep(milliseconds: pause) }
                case .fail: throw error
                case .redirect, .answer: break
                }
                try reloadCheckpoint()
            } catch let error where follow && ridesOutOutages && !Signals.stopRequested && error.isRetriable {
                countRedeliveries()
                if outageSince == nil {
                    outageSince = monotonicMilliseconds()
                    Diagnostics.print("\((error as? EvtError)?.message ?? "\(error)"); retrying every second until it is back (copied so far: \(copied)).")
                }
                // What was in flight may have been applied: start from what the checkpoint
                // says, once it can be read again.
                while true {
                    Signals.sleep(milliseconds: 1000)
                    if Signals.stopRequested { return }
                    do {
                        try reloadCheckpoint()
                        break
                    } catch let error where error.isRetriable {
                        continue   // the checkpoint's server is not back yet
                    }
                }
            }
        }
    }

    private var identity = ""

    /// After a failed attempt: the records it handed to the target that the target did not
    /// confirm are read again from the confirmed position.
    private func countRedeliveries() {
        guard measuring else { return }
        figures.redeliveries &+= UInt64(max(0, writtenThisAttempt - (copied - copiedAtAttemptStart)))
        metrics?.publish(figures)
    }

    /// After an outage: what the checkpoint says (the target may have applied more than was
    /// confirmed here), claimed again (another copy may have taken it while this one could
    /// not renew its lease). Without one, the position confirmed in memory stands.
    private func reloadCheckpoint() throws {
        guard let checkpoint, started, range == nil else { return }
        do {
            confirmed = try checkpoint.claim(source: identity) ?? SourcePosition()
        } catch let error as EvtError where error.cause == .claimed {
            throw CheckpointLease.lost(checkpoint.name, holder: nil)
        }
        saved = confirmed
    }

    private func copyOnce() throws {
        let source = try makeSource()
        // Both ends are ready (and checked) before the checkpoint is claimed.
        let target = try makeTarget(source)
        if !started {
            identity = source.identity
            if let range {
                let (start, until) = try source.positions(from: range.from, until: range.until)
                confirmed = start
                if !follow { end = until }
            } else {
                if let checkpoint, let position = try checkpoint.claim(source: identity) {
                    confirmed = position
                    saved = position
                    Diagnostics.print("resuming from \(checkpoint.name): after \(position.description).")
                }
                if checkpoint != nil && measuring { figures.checkpointUpdatedAtMs = epochMilliseconds() }
                if !follow { end = try source.end() }
            }
            started = true
        }
        if let since = outageSince {
            outageSince = nil
            Diagnostics.print("connected again after \((monotonicMilliseconds() - since) / 1000) s; copying on from the last confirmed position.")
        }
        let copiedBefore = copied
        times.removeAll()
        writtenThisAttempt = 0
        copiedAtAttemptStart = copiedBefore
        observedCopied = copiedBefore
        var countAtBatchStart = 0
        let sent = SourceCursor(confirmed)
        var count = 0   // records read
        var written = 0
        var lastConfirm = monotonicMilliseconds()
        defer {
            copied = copiedBefore + target.delivered
            confirmed = target.confirmed ?? confirmed
        }
        /// `wait`: drain the target even where it confirms by itself.
        func confirm(wait: Bool) throws {
            lastConfirm = monotonicMilliseconds()
            if wait || !target.confirmsAsItGoes {
                try target.drain(at: sent)
                if let position = target.confirmed, !target.keepsCheckpoint, position != saved, let checkpoint {
                    try checkpoint.save(position)
                    saved = position
                }
                try checkpoint?.keepAlive()   // nothing of the target in flight now
                try source.confirmed()
            }
            copied = copiedBefore + target.delivered
            confirmed = target.confirmed ?? confirmed
            if measuring {
                // A checkpoint is brought up to date by a drain, or by every batch of a
                // target that keeps it.
                if checkpoint != nil && (wait || !target.confirmsAsItGoes || target.keepsCheckpoint) {
                    figures.checkpointUpdatedAtMs = epochMilliseconds()
                }
                publishFigures()
            }
            showStats(source)
        }
        let record = Record()
        do {
            guard copiedBefore < limit else { throw LimitReached() }
            let decoding = decoding
            /// Whether `--match` kept the record (it then went to the target).
            func handOver(_ record: Record) throws -> Bool {
                let kept = matcher?.matches(record) ?? true
                if kept {
                    if try target.write(record, after: sent) {
                        writtenThisAttempt += 1
                        if measuring { times.append(record) }
                    } else {
                        skipped += 1
                    }
                }
                return kept
            }
            try source.read(after: confirmed, until: follow ? nil : end, into: record, idle: { try confirm(wait: true) }, { record in
                let kept = try decoding.map { try $0.handOver(record, handOver) } ?? handOver(record)
                sent.position.advance(past: record)
                try target.reached(sent, batchEnded: false)
                count += 1
                if kept {
                    written += 1
                    try afterRecord?()
                    if copiedBefore + written >= limit { throw LimitReached() }
                }
                if count & 1023 == 0 && monotonicMilliseconds() - lastConfirm >= 1000 { try confirm(wait: false) }
            }, batchEnded: {
                try target.reached(sent, batchEnded: true)
                if measuring && count > countAtBatchStart {
                    countAtBatchStart = count
                    figures.batches &+= 1
                    copied = copiedBefore + target.delivered
                    publishFigures()
                }
                if source.confirmsEveryBatch || monotonicMilliseconds() - lastConfirm >= 1000 {
                    try confirm(wait: source.confirmsEveryBatch)
                }
            })
        } catch is LimitReached {
            try target.reached(sent, batchEnded: true)
        }
        try confirm(wait: true)
    }

    private struct LimitReached: Error {}

    /// The records the target confirmed since the last call count as acked, and their
    /// end-to-end times are observed (the target confirms them in the order written);
    /// then `metrics` gets a snapshot.
    private func publishFigures() {
        if copied > observedCopied {
            times.observeFirst(copied - observedCopied, acknowledgedAt: epochMilliseconds(), into: &figures.endToEnd)
            observedCopied = copied
        }
        figures.acked = UInt64(max(0, copied))
        metrics?.publish(figures)
    }

    /// `--stats`: copied, rate, confirmed position and how far behind the source.
    private func showStats(_ source: RecordSource) {
        guard let every = statsEveryMs else { return }
        let now = monotonicMilliseconds()
        guard now - lastStats >= every else { return }
        let rate = Double(copied - copiedAtLastStats) * 1000 / Double(max(now - lastStats, 1))
        lastStats = now
        copiedAtLastStats = copied
        let latency = MetricsOutput.quantileSummary(figures).map { "; " + $0 } ?? ""
        Diagnostics.print("copied \(copied) events (\(Int(rate))/s), confirmed up to \(confirmed.description)\(source.lag(behind: confirmed))" + latency)
    }
}
