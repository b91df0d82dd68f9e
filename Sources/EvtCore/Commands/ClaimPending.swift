/// `evt claim-pending SOURCE GROUP --min-idle DURATION`: take over a stream group's entries
/// that sat unacknowledged too long (a consumer crashed or hangs), hand each over (stdout, or
/// `--exec`) with its delivery count, then XACK it. Entries delivered `--max-deliveries`
/// times or more go to `--dead-letter` instead, and are XACKed once it took them.
public enum ClaimPendingCommand {
    public static func run(_ arguments: ParsedArguments, environment: [String: String]) throws -> ExitStatus {
        let spec = arguments.spec
        guard arguments.operands.count == 2 else {
            throw EvtError.usage("claim-pending needs a SOURCE and a GROUP, e.g. evt claim-pending stream:orders billing --min-idle 5m.", usage: spec.usageLine)
        }
        let source = try Endpoint.parse(arguments.operands[0], environment: environment)
        let group = arguments.operands[1]
        try source.require([("claim-pending", true, .pendingEntries)], usage: spec.usageLine)
        guard let minIdleText = arguments.value("min-idle") else {
            throw EvtError.usage("claim-pending needs --min-idle DURATION: how long an entry must have sat unacknowledged (e.g. 5m).", usage: spec.usageLine)
        }
        let minIdleMs = try DurationParser.milliseconds(minIdleText, option: "--min-idle")
        let count = try arguments.number("count", what: "entries")
        let batchSize = try arguments.number("ack-batch", what: "entries") ?? 100
        let maxDeliveries = try arguments.number("max-deliveries", what: "deliveries")
        let deadLetterText = arguments.value("dead-letter")
        if (maxDeliveries == nil) != (deadLetterText == nil) {
            throw EvtError.usage("--max-deliveries and --dead-letter go together: entries delivered N times go to DEST.", usage: spec.usageLine)
        }
        let command = arguments.value("exec")
        let continueOnExecError = try SubscribeCommand.execErrorMode(arguments, spec: spec)
        let noAck = arguments.flag("no-ack")
        let consumer = arguments.value("consumer") ?? "evt-\(ProcessIdentity.hostName)-\(ProcessIdentity.pid)"
        if arguments.value("consumer") == nil && !arguments.flag("dry-run") {
            Diagnostics.print("claiming as \(consumer) (--consumer)")
        }

        var deadLetters: EventSink?
        if let deadLetterText {
            var options = SinkOptions()
            options.kafka = try arguments.kafkaSettings()
            deadLetters = try Backends.sink(forDestination: deadLetterText, environment: environment, options: options)
        }
        let claimer = try Backends.claimer(for: source, group: group, consumer: consumer, minIdleMs: minIdleMs)
        let output = OutputWriter()
        let scratch = OutputWriter()   // one record at a time, for --exec and the dead-letter target
        let quotedName = OutputWriter.quoted(claimer.stream)
        let record = Record()
        record.quotedSource = quotedName
        /// The entry as its NDJSON record, with its delivery count.
        let decoding = try arguments.schemaDecoding(environment: environment)
        func append(_ entry: PendingEntry, to output: OutputWriter) {
            entry.withRecord(record) { record in
                if let decoding { decoding.handOver(record) { output.appendRecord($0) } } else { output.appendRecord(record) }
            }
        }

        if arguments.flag("dry-run") {
            var after: String?
            var shown = 0
            while !Signals.stopRequested {
                let page = try claimer.pending(after: after, limit: min(1000, (count ?? Int.max) - shown))
                for row in page {
                    output.appendLiteral("{\"stream\":")
                    output.buffer += quotedName
                    output.buffer += Array(",\"id\":\"\(row.id)\",\"consumer\":".utf8)
                    output.buffer += OutputWriter.quoted(row.consumer)
                    output.buffer += Array(",\"idle_ms\":\(row.idleMs),\"deliveries\":\(row.deliveries)}\n".utf8)
                }
                shown += page.count
                do { try output.flush() } catch is StdoutClosed { break }
                guard page.count == 1000, shown < (count ?? Int.max) else { break }
                after = page.last!.id
            }
            return Signals.exitStatusAfterSignal ?? .success
        }

        // A name made up for this run leaves the group with it unless entries are pending for
        // it: run from cron, every run would add a consumer (XINFO CONSUMERS, lag, metrics).
        defer { if arguments.value("consumer") == nil { deleteConsumerIfNothingPending(claimer) } }
        var claimed = 0
        var deletedTotal = 0
        var deadLettered = 0
        var failure: EvtError?
        var dlqLine = 0
        claiming: while !claimer.finished && claimed < (count ?? Int.max) && !Signals.stopRequested {
            let (entries, deleted) = try claimer.claim(limit: min(batchSize, (count ?? Int.max) - claimed))
            if !deleted.isEmpty {
                deletedTotal += deleted.count
                Diagnostics.print("\(deleted.count) pending entr\(deleted.count == 1 ? "y was" : "ies were") deleted from the stream before delivery (XAUTOCLAIM dropped them from the pending list): \(deleted.joined(separator: " "))")
            }
            claimed += entries.count
            var handed: [String] = []
            // Too many deliveries: to the dead-letter target, acknowledged once it took them.
            var lettered: [Int: String] = [:]
            var deadLetterRefused = false
            for entry in entries {
                if Signals.stopRequested { break }   // the rest stays pending, ours
                if let maxDeliveries, entry.deliveries >= maxDeliveries, let deadLetters {
                    dlqLine += 1
                    lettered[dlqLine] = entry.id
                    scratch.buffer.removeAll(keepingCapacity: true)
                    append(entry, to: scratch)
                    try scratch.buffer.dropLast().withUnsafeBytes { bytes in   // the record without "\n"
                        try deadLetters.send(OutgoingEvent(line: dlqLine, value: bytes, valueKind: .object))
                    }
                    continue
                }
                guard let command else {
                    append(entry, to: output)
                    handed.append(entry.id)
                    continue
                }
                scratch.buffer.removeAll(keepingCapacity: true)
                append(entry, to: scratch)
                let status = try SubscribeCommand.runExec(command, record: scratch.buffer[...])
                if status == 0 { handed.append(entry.id); continue }
                Diagnostics.print("--exec exited with \(status) for entry \(entry.id); not acknowledged, it stays pending.")
                failure = EvtError(.refused(code: ""), "some claimed entries were not handled by --exec and stay pending (see above).")
                if !continueOnExecError { break }
            }
            if let deadLetters, !lettered.isEmpty {
                deadLetters.finish()
                // Earlier batches were all taken (else the loop stopped), so the tally speaks
                // for this batch: all taken, or none acknowledged.
                if deadLetters.tally.allDelivered(sent: dlqLine) {
                    deadLettered += lettered.count
                    if !noAck { try claimer.acknowledge(Array(lettered.values)) }
                } else {
                    failure = EvtError(deadLetters.tally.cause, "the dead-letter destination \(Endpoint.redactingPassword(deadLetterText!)) did not take every entry; none of this batch's \(lettered.count) was acknowledged, they stay pending.")
                    for message in deadLetters.tally.summary(sent: dlqLine) { Diagnostics.print(message) }
                    deadLetterRefused = true
                }
            }
            // After the dead letters: they are settled even if stdout has gone meanwhile.
            do {
                try output.flush()
            } catch is StdoutClosed {
                break claiming   // not written: not acknowledged (they stay ours, pending)
            }
            if !noAck { try claimer.acknowledge(handed) }
            if deadLetterRefused || (failure != nil && !continueOnExecError) { break }
        }
        var summary = "claimed \(claimed) entr\(claimed == 1 ? "y" : "ies")"
        if deadLettered > 0 { summary += ", \(deadLettered) sent to \(Endpoint.redactingPassword(deadLetterText!))" }
        if deletedTotal > 0 { summary += ", \(deletedTotal) deleted before delivery" }
        Diagnostics.print(summary + (noAck ? " (not acknowledged: --no-ack)" : ""))
        if let failure { throw failure }
        return Signals.exitStatusAfterSignal ?? .success
    }

    private static func deleteConsumerIfNothingPending(_ claimer: RedisClaimer) {
        do {
            try claimer.deleteConsumerIfNothingPending()
        } catch let error as EvtError where error.cause == .stopped {
            // The server stopped answering after a stop signal: nothing more to do now.
        } catch {
            Diagnostics.print("could not remove consumer \(claimer.consumer) from group \(claimer.group): \(error) Once nothing is pending for it, XGROUP DELCONSUMER \(claimer.stream) \(claimer.group) \(claimer.consumer) does.")
        }
    }
}
