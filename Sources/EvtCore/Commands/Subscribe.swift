/// `evt subscribe SOURCE...`: receive a batch, hand it over (stdout flushed), and only then
/// acknowledge it; with `--exec`, receive one record at a time, as its command is about to
/// run, and acknowledge it as the command exits 0. `-c N` acknowledges exactly N.
public enum SubscribeCommand {
    public static func run(_ arguments: ParsedArguments, environment: [String: String]) throws -> ExitStatus {
        let spec = arguments.spec
        guard !arguments.operands.isEmpty else {
            throw EvtError.usage("subscribe needs a SOURCE, e.g. stream:orders --group billing, or channel:news.", usage: spec.usageLine)
        }
        let sources = try arguments.operands.map { try Endpoint.parse($0, environment: environment) }
        var options = ConsumerOptions()
        options.group = arguments.value("group")
        options.consumer = arguments.value("consumer")
        options.from = try arguments.value("from").map { try Position.parse($0, option: "--from") }
        options.createGroup = arguments.flag("create")
        options.processingList = arguments.value("processing")
        if arguments.flag("pattern") { options.pattern = true }
        if arguments.flag("no-pattern") { options.pattern = false }
        if arguments.flag("pattern") && arguments.flag("no-pattern") {
            throw EvtError.usage("--pattern and --no-pattern contradict each other.", usage: spec.usageLine)
        }
        options.retryForMs = try arguments.value("retry-for").map { try DurationParser.milliseconds($0, option: "--retry-for") } ?? 60_000
        options.kafka = try arguments.kafkaSettings()
        let command = arguments.value("exec")
        // A command runs far longer than a commit takes: each is committed within a few ms,
        // so a killed worker runs again only the commands that were running.
        if command != nil { options.commitIntervalMs = 5 }
        let count = try arguments.number("count")
        let batchSize = try arguments.number("ack-batch") ?? 1000
        let idleExitMs = try arguments.value("idle-exit").map { try DurationParser.milliseconds($0, option: "--idle-exit") }
        let continueOnExecError = try execErrorMode(arguments, spec: spec)
        let matcher = try arguments.recordMatcher()
        let acknowledgesFiltered = !arguments.flag("no-ack-filtered")
        if !acknowledgesFiltered {
            guard matcher != nil else {
                throw EvtError.usage("--no-ack-filtered is about the records --match filters out; give a --match.", usage: spec.usageLine)
            }
            // Kafka commits a position, not single records: one left out cannot stay behind.
            guard (options.group != nil && sources[0].has(.pendingEntries)) || sources[0].has(.queue) else {
                throw EvtError.usage("--no-ack-filtered keeps filtered records pending, which only a stream group or a list can: a Kafka group commits positions, and a channel keeps nothing.", usage: spec.usageLine)
            }
        }
        try checkCombination(sources, options, spec: spec)
        if options.group != nil && options.consumer == nil {
            options.consumer = "evt-\(ProcessIdentity.hostName)"
            // A stream group's pending entries belong to a named consumer: say which.
            if sources[0].has(.pendingEntries) { Diagnostics.print("consuming as \(options.consumer!) (--consumer)") }
        }

        var stats: SubscribeStats?
        if let text = arguments.value("stats") {
            guard options.group != nil || sources.allSatisfy({ $0.has(.queue) }) else {
                throw EvtError.usage("--stats reports a group's lag (or a list's length): give --group, or subscribe to a list.", usage: spec.usageLine)
            }
            var query = LagQuery()
            query.groups = options.group.map { [$0] } ?? []
            query.processing = options.processingList
            query.kafka = options.kafka
            stats = SubscribeStats(everyMs: try DurationParser.milliseconds(text, option: "--stats"),
                                   readers: try sources.map { try Backends.lagReader(for: $0, query: query) })
        }

        // Bound before anything is consumed: an address in use is found at once.
        let listener = try arguments.value("metrics").map { try MetricsListener(address: $0, option: "--metrics") }
        defer { listener?.close() }
        let metrics = listener.map { _ in
            WorkerMetrics(worker: .subscribe(exec: command != nil), labels: metricLabels(sources, group: options.group))
        }
        let decoding = try arguments.schemaDecoding(environment: environment)
        let consumer = try Backends.consumer(for: sources, options: options)
        if let listener, let metrics { try listener.serveInBackground { metrics.exposition() } }
        do {
            return try consume(consumer, count: count, batchSize: batchSize, idleExitMs: idleExitMs,
                               command: command, continueOnExecError: continueOnExecError, stats: stats,
                               metrics: metrics, matcher: matcher, decoding: decoding,
                               acknowledgesFiltered: acknowledgesFiltered)
        } catch {
            try? consumer.close()   // acknowledgements in flight, list items back: even on failure
            throw error
        }
    }

    /// Bounded: one set per process, as `evt lag` labels the same source and group.
    static func metricLabels(_ sources: [Endpoint], group: String?) -> [(name: String, value: String)] {
        var labels = [(name: "system", value: sources[0].systemName), (name: "kind", value: sources[0].kindName),
                      (name: "source", value: sources.map(\.subjectName).joined(separator: ","))]
        if let group { labels.append((name: "group", value: group)) }
        return labels
    }

    /// `matcher`: records it filters out are left empty in the batch; they are acknowledged
    /// (consumed) with the rest unless `acknowledgesFiltered` is false, and do not count
    /// towards `count`.
    private static func consume(_ consumer: EventConsumer, count: Int?, batchSize: Int, idleExitMs: Int?,
                                command: String?, continueOnExecError: Bool, stats: SubscribeStats?, metrics: WorkerMetrics?,
                                matcher: RecordMatcher?, decoding: SchemaDecoding?, acknowledgesFiltered: Bool) throws -> ExitStatus {
        let batch = RecordBatch()
        let record = Record()
        var remaining = count ?? Int.max
        var failure: EvtError?
        let writer = batch.writer
        var idleSince = monotonicMilliseconds()
        // The figures are this loop's own, added to without a lock and handed to `metrics`
        // once per acknowledgement; each event's time is kept from its receipt to then.
        let measuring = metrics != nil || stats != nil
        var figures = WorkerFigures()
        var times = EventTimes(capacity: command == nil ? min(batchSize, remaining) : 1)
        /// The end-to-end times of these records of the batch, acknowledged now.
        func acknowledged(_ indexes: [Int]) {
            guard measuring else { return }
            figures.acked &+= UInt64(indexes.count)
            let now = epochMilliseconds()
            for index in indexes { times.observe(index, acknowledgedAt: now, into: &figures.endToEnd) }
            metrics?.publish(figures)
        }
        consuming: while remaining > 0 && !Signals.stopRequested {
            stats?.showIfDue(consumed: (count ?? Int.max) - remaining, figures: figures)
            var waitMs = idleExitMs.map { max(0, idleSince + $0 - monotonicMilliseconds()) } ?? -1
            if let due = stats?.msUntilDue { waitMs = waitMs < 0 ? due : min(waitMs, due) }
            // With --exec, only the record whose command runs next: a stream group's read puts
            // entries in this consumer's pending list and a list's read moves items into the
            // processing list, where a killed worker would strand them and other workers could
            // not get them. Its acknowledgement goes out with the next read.
            let limit = command == nil ? min(batchSize, remaining) : 1
            let received: Int
            times.removeAll()
            do {
                received = try consumer.receive(limit: limit, waitMs: waitMs, into: record) { record in
                    if measuring { times.append(record) }
                    // One left out by --match costs no output: its range stays empty.
                    func handOver(_ record: Record) {
                        if matcher?.matches(record) ?? true { writer.appendRecord(record) }
                    }
                    if let decoding { decoding.handOver(record, handOver) } else { handOver(record) }
                    batch.recordEnded()
                }
            } catch is StdoutClosed {
                break consuming
            }
            if received == 0 {
                if let idleExitMs, monotonicMilliseconds() - idleSince >= idleExitMs { break }
                continue
            }
            idleSince = monotonicMilliseconds()
            let kept = matcher == nil ? Array(0..<received) : (0..<received).filter { !batch.range(of: $0).isEmpty }
            // Filtered out: consumed as far as the source goes, unless --no-ack-filtered.
            let filtered = matcher == nil || !acknowledgesFiltered ? [] : (0..<received).filter { batch.range(of: $0).isEmpty }
            remaining -= kept.count
            if measuring {
                if consumer.redelivered { figures.redeliveries &+= UInt64(received) }
                figures.filtered &+= UInt64(received - kept.count)
            }
            guard let command else {
                do {
                    try batch.writer.flush()
                } catch is StdoutClosed {
                    break consuming   // nothing of this batch is acknowledged
                }
                try consumer.acknowledge(matcher == nil ? kept : (kept + filtered).sorted())
                acknowledged(kept)
                batch.removeAll()
                continue
            }
            var handled = filtered
            var succeeded: [Int] = []
            for index in kept {
                if Signals.stopRequested { break }   // the rest stays pending
                let started = measuring ? monotonicNanoseconds() : 0
                let status = try runExec(command, record: batch.writer.buffer[batch.range(of: index)])
                if measuring { figures.processing.observe(seconds: Double(monotonicNanoseconds() - started) / 1e9) }
                if status == 0 {
                    handled.append(index)
                    succeeded.append(index)
                    continue
                }
                figures.failed &+= 1
                let record = String(decoding: batch.writer.buffer[batch.range(of: index)].dropLast(), as: UTF8.self)
                Diagnostics.print("--exec exited with \(status) for \(record.prefix(200)); not acknowledged, it stays pending.")
                if !continueOnExecError {
                    failure = EvtError(.refused(code: ""), "stopped after a failed --exec (use --on-exec-error continue to go on).")
                    break
                }
                failure = failure ?? EvtError(.refused(code: ""), "some events were not handled by --exec and stay pending (see above).")
            }
            try consumer.acknowledge(handled.sorted())
            acknowledged(succeeded)
            batch.removeAll()
            if failure != nil && !continueOnExecError { break }
        }
        try consumer.close()
        if let failure { throw failure }
        return Signals.exitStatusAfterSignal ?? .success
    }

    /// The records of one receive, as NDJSON in `writer.buffer` (flushed once the batch is
    /// handed over), and where each ends, so that `--exec` can take them one by one.
    final class RecordBatch {
        let writer = OutputWriter()
        private(set) var ends: [Int] = []

        func recordEnded() { ends.append(writer.buffer.count) }
        func range(of index: Int) -> Range<Int> { (index == 0 ? 0 : ends[index - 1])..<ends[index] }
        func removeAll() {
            writer.buffer.removeAll(keepingCapacity: true)
            ends.removeAll(keepingCapacity: true)
        }
    }

    /// `--stats DURATION`: events consumed, the rate, the group's lag as `evt lag` reads it, and
    /// the p50 and p99 of the latency histograms that have observations.
    final class SubscribeStats {
        let everyMs: Int
        let readers: [LagReader]
        private var lastShown = monotonicMilliseconds()
        private var consumedAtLastShown = 0

        init(everyMs: Int, readers: [LagReader]) {
            self.everyMs = everyMs
            self.readers = readers
        }

        var msUntilDue: Int { max(0, lastShown + everyMs - monotonicMilliseconds()) }

        func showIfDue(consumed: Int, figures: WorkerFigures) {
            let now = monotonicMilliseconds()
            guard now - lastShown >= everyMs else { return }
            let rate = Double(consumed - consumedAtLastShown) * 1000 / Double(max(now - lastShown, 1))
            lastShown = now
            consumedAtLastShown = consumed
            // A lag that cannot be read now (a server restarting) does not stop the consumer.
            let lag = readers.compactMap { try? $0.read() }.joined().map { $0.subject + ": " + $0.summary }
            let latency = MetricsOutput.quantileSummary(figures).map { "; " + $0 } ?? ""
            Diagnostics.print("consumed \(consumed) events (\(Int(rate))/s)" + (lag.isEmpty ? "" : "; " + lag.joined(separator: "; ")) + latency)
        }
    }

    /// `--on-exec-error fail|continue`: true for continue.
    static func execErrorMode(_ arguments: ParsedArguments, spec: CommandSpec) throws -> Bool {
        if arguments.value("on-exec-error") != nil && arguments.value("exec") == nil {
            throw EvtError.usage("--on-exec-error applies to --exec.", usage: spec.usageLine)
        }
        switch arguments.value("on-exec-error") ?? "fail" {
        case "fail": return false
        case "continue": return true
        case let other: throw EvtError.usage("--on-exec-error \(other): expected fail or continue.", usage: spec.usageLine)
        }
    }

    /// Several sources must be of one kind on one server; options must fit the kind.
    static func checkCombination(_ sources: [Endpoint], _ options: ConsumerOptions, spec: CommandSpec) throws {
        let first = sources[0]
        if sources.dropFirst().contains(where: { !first.canBeReadTogether(with: $0) }) {
            throw EvtError.usage("several SOURCEs must be channels on one Redis server or topics on one Kafka cluster; run one subscribe per stream or list.", usage: spec.usageLine)
        }
        try first.require([("--group", options.group != nil, .groups),
                           ("--processing", options.processingList != nil, .queue),
                           ("--pattern/--no-pattern", options.pattern != nil, .pubSub),
                           ("--from", options.from != nil, .history)], usage: spec.usageLine)
        if options.createGroup && options.group == nil {
            throw EvtError.usage("--create makes the --group; give one.", usage: spec.usageLine)
        }
        if options.consumer != nil && options.group == nil {
            throw EvtError.usage("--consumer names a member of a --group; give one.", usage: spec.usageLine)
        }
    }

    /// Runs `sh -c COMMAND` with the record on its stdin; its exit status.
    static func runExec(_ command: String, record: ArraySlice<UInt8>) throws -> Int32 {
        let status = try ChildProcess.runShell(command, input: record, what: "--exec")
        // SIGTERM lets the running command finish: evt's grace to acknowledge and leave
        // starts once it has.
        Signals.startGraceNow()
        return status
    }
}
