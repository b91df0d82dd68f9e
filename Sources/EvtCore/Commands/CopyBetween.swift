/// `evt copy-between SOURCE TARGET [--checkpoint NAME] [-f] [--exactly-once]`: a topic, a
/// stream or a list copied into a stream, topic, list or channel, resumably, by the copy
/// loop (CopyLoop). The mapping between Kafka records and stream entries is the record
/// codec's (RecordMapping); delivery rules are publish's.
///
/// At least once: the checkpoint (a Redis hash `evt:checkpoint:NAME`; for topic→topic the
/// offsets committed for consumer group NAME; for a list its processing list) only ever
/// names events the target acknowledged. Into a stream, each batch and the checkpoint share
/// one guarded MULTI/EXEC (StreamBatchWriter): such a copy is exactly once. A checkpoint is
/// held by one copy at a time (CheckpointLease), and records its source and its target.
public enum CopyBetweenCommand {
    public static func run(_ arguments: ParsedArguments, environment: [String: String]) throws -> ExitStatus {
        let spec = arguments.spec
        guard arguments.operands.count == 2 else {
            throw EvtError.usage("copy-between needs a SOURCE and a TARGET, e.g. evt copy-between topic:orders stream:orders.", usage: spec.usageLine)
        }
        let (sourceText, targetText) = (arguments.operands[0], arguments.operands[1])
        let source = try Endpoint.parse(sourceText, environment: environment)
        let target = try Endpoint.parse(targetText, environment: environment)
        var options = CopyOptions()
        options.follow = arguments.flag("follow")
        options.exactlyOnce = arguments.flag("exactly-once")
        options.keyField = arguments.value("key-field").map(KeyField.init)
        options.perPartition = arguments.flag("per-partition")
        options.timeoutMs = try arguments.timeoutMs()
        options.waitReplicas = try arguments.waitReplicas()
        try target.require([("--wait-replicas", options.waitReplicas != nil, .replicatedWrites)], usage: spec.usageLine)
        options.kafka = try arguments.kafkaSettings()
        options.checkpointName = arguments.value("checkpoint")
        let statsEveryMs = try arguments.value("stats").map { try DurationParser.milliseconds($0, option: "--stats") }
        let metricsAddress = arguments.value("metrics")
        if metricsAddress != nil && !options.follow {
            throw EvtError.usage("--metrics serves a bridge's figures while it runs: add -f (a copy without -f stops at the source's end; its summary is on stderr).", usage: spec.usageLine)
        }
        if let problem = check(source: source, target: target, options: options, sourceText: sourceText, targetText: targetText) {
            throw EvtError.usage(problem, usage: spec.usageLine)
        }

        let decoding = try options.useSchemas(arguments, target: target, environment: environment)
        // Bound before anything is copied: an address in use is found at once.
        let listener = try metricsAddress.map { try MetricsListener(address: $0, option: "--metrics") }
        defer { listener?.close() }
        let metrics = listener.map { _ in
            WorkerMetrics(worker: .copy(checkpoint: options.checkpointName != nil),
                          labels: [(name: "system", value: source.systemName), (name: "kind", value: source.kindName),
                                   (name: "source", value: source.subjectName),
                                   (name: "target", value: target.kindName + ":" + target.subjectName)])
        }
        let checkpoint = try options.checkpointName.map {
            try Backends.checkpoint(named: $0, source: source, target: target, options: options)
        }
        defer { checkpoint?.release() }   // a killed copy's lease runs out instead
        // A one-off copy shows its progress on a terminal; a bridge has --stats.
        let progress = ProgressLine(verb: "copied", when: !options.follow)
        defer { progress.clear() }
        let loop = CopyLoop(follow: options.follow, checkpoint: checkpoint, statsEveryMs: statsEveryMs, decoding: decoding,
                            afterRecord: progress.isOn ? { progress.advance() } : nil, timeoutMs: options.timeoutMs, metrics: metrics,
                            source: { try Backends.copySource(for: source, options: options) },
                            target: { try Backends.copyTarget(for: target, source: $0, checkpoint: checkpoint, options: options) })
        if let listener, let metrics { try listener.serveInBackground { metrics.exposition() } }
        do {
            try loop.run()
        } catch let error as EvtError where error.cause == .usage {
            throw error   // a usage error found once a server answered (a cluster's slots): nothing copied
        } catch let error as EvtError where error.cause == .claimed {
            Diagnostics.print(error.message)   // another copy has the checkpoint: its own to resume
            return .failure
        } catch {
            let resumable = options.checkpointName != nil
            let message = (error as? EvtError)?.message ?? "\(error)"
            Diagnostics.print(message + (resumable ? " The checkpoint holds what the target confirmed: run the same command again to resume." : ""))
            if !resumable && !source.has(.queue) {
                Diagnostics.print("the target confirmed every event up to \(loop.confirmed.description); copy-between --checkpoint NAME would resume from there.")
            }
            return (error as? EvtError)?.status ?? .failure
        }
        let skippedText = loop.skipped > 0 ? " (\(loop.skipped) already there were skipped)" : ""
        Diagnostics.print("copied \(loop.copied) event\(loop.copied == 1 ? "" : "s") from \(Endpoint.redactingPassword(sourceText)) to \(Endpoint.redactingPassword(targetText))\(skippedText).")
        return Signals.exitStatusAfterSignal ?? .success
    }

    /// What the two ends cannot do for the options given, as the message to show; nil when
    /// the copy can run.
    static func check(source: Endpoint, target: Endpoint, options: CopyOptions, sourceText: String, targetText: String) -> String? {
        if !source.has(.history) && !source.has(.queue) {
            return "copy-between reads a topic, a stream or a list; a \(source.kindName) keeps nothing to copy or resume from. Use evt subscribe \(sourceText) | evt publish \(targetText) --envelope."
        }
        if options.checkpointName?.isEmpty == true { return "--checkpoint needs a NAME." }
        if options.keyField != nil && !(source.has(.fieldEntries) && target.has(.keysAndHeaders)) {
            return "--key-field picks the Kafka key of a stream entry: it needs a stream SOURCE and a topic TARGET."
        }
        if options.perPartition && !(source.has(.keysAndHeaders) && target.has(.fieldEntries)) {
            return "--per-partition writes one stream per partition: it needs a topic SOURCE and a stream TARGET."
        }
        guard options.exactlyOnce else { return nil }
        if source.has(.queue) {
            return "--exactly-once needs a topic or stream SOURCE: items moved out of a list are copied at least once."
        }
        if target.has(.atomicBatches) { return nil }
        if target.has(.keysAndHeaders) {
            // The resume step finds where a copy stopped from the entry ids the records carry.
            return source.has(.fieldEntries) ? nil
                : "--exactly-once into a topic needs a stream SOURCE (evt finds where a copy stopped from the entry ids it carries); topic→topic is at least once."
        }
        return "--exactly-once needs a stream or topic TARGET: a \(target.kindName) cannot take the checkpoint atomically with the events."
    }
}
