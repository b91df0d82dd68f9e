#if canImport(Glibc)
import Glibc
#endif

/// `evt copy-between SOURCE TARGET [--checkpoint NAME] [-f] [--exactly-once]`: a topic, a
/// stream or a list copied into a stream, topic, list or channel, resumably. The mapping
/// between Kafka records and stream entries is CopyMapping's; delivery rules are publish's.
///
/// At least once: the checkpoint (a Redis hash `evt:checkpoint:NAME`; for topic→topic the
/// offsets committed for consumer group NAME; for a list its processing list) only ever names
/// events the target acknowledged. Into a stream, each batch and the checkpoint share one
/// MULTI/EXEC, guarded so that a refused batch can never be skipped (StreamCopyTarget): such
/// a copy is exactly once. Into anything else the checkpoint follows a barrier (every event
/// sent so far acknowledged), about once a second and at the end.
public enum CopyBetweenCommand {
    public static func run(_ arguments: ParsedArguments, environment: [String: String]) throws -> ExitStatus {
        let spec = arguments.spec
        guard arguments.operands.count == 2 else {
            throw EvtError.usage("copy-between needs a SOURCE and a TARGET, e.g. evt copy-between topic:orders stream:orders.", usage: spec.usageLine)
        }
        let job = try CopyJob(arguments, environment: environment)
        return try job.run()
    }
}

final class CopyJob {
    private let source: Endpoint
    private let target: Endpoint
    private let sourceText: String
    private let targetText: String
    /// The Redis hash of the checkpoint, when either side is Redis.
    private let checkpointKey: String?
    /// topic→topic: the checkpoint is the offsets committed for this consumer group.
    private let checkpointGroup: String?
    /// The source reader, for a checkpoint kept as committed offsets.
    private var groupReader: KafkaTailSource?
    private let follow: Bool
    private let exactlyOnce: Bool
    private let keyField: KeyField?
    private let perPartition: Bool
    private let statsEveryMs: Int?
    private let timeoutMs: Int
    private let kafkaProperties: [(String, String)]

    /// Where the copy stands: what the target acknowledged (`confirmed…`), and what was sent.
    private var confirmedOffsets: [Int32: Int64] = [:]
    private var confirmedID: StreamID?
    private var sentOffsets: [Int32: Int64] = [:]
    private var sentID: StreamID?
    /// The source's end as of the first start (without -f the copy stops there).
    private var endOffsets: [Int32: Int64]?
    private var endID: StreamID?
    private var endKnown = false

    private var copied = 0
    private var skipped = 0
    private var lastStats = monotonicMilliseconds()
    private var copiedAtLastStats = 0
    private var lagText: () -> String = { "" }

    init(_ arguments: ParsedArguments, environment: [String: String]) throws {
        let spec = arguments.spec
        sourceText = arguments.operands[0]
        targetText = arguments.operands[1]
        source = try Endpoint.parse(sourceText, environment: environment)
        target = try Endpoint.parse(targetText, environment: environment)
        follow = arguments.flag("follow")
        exactlyOnce = arguments.flag("exactly-once")
        keyField = arguments.value("key-field").map(KeyField.init)
        perPartition = arguments.flag("per-partition")
        statsEveryMs = try arguments.value("stats").map { try DurationParser.milliseconds($0, option: "--stats") }
        timeoutMs = try arguments.value("timeout").map { try DurationParser.milliseconds($0, option: "--timeout") } ?? 30_000
        kafkaProperties = try PublishCommand.kafkaProperties(arguments)
        KafkaConfig.verbose = arguments.flag("verbose")

        switch source {
        case .kafka: break
        case .redis(_, .stream, _): break
        case .redis(_, .list, _):
            if exactlyOnce {
                throw EvtError.usage("--exactly-once needs a topic or stream SOURCE: items moved out of a list are copied at least once.", usage: spec.usageLine)
            }
        case .redis(_, _, _):
            throw EvtError.usage("copy-between reads a topic, a stream or a list; a channel keeps nothing to copy or resume from. Use evt subscribe \(sourceText) | evt publish \(targetText) --envelope.", usage: spec.usageLine)
        }
        if keyField != nil, !(source.isStream && target.isKafka) {
            throw EvtError.usage("--key-field picks the Kafka key of a stream entry: it needs a stream SOURCE and a topic TARGET.", usage: spec.usageLine)
        }
        if perPartition, !(source.isKafka && target.isStream) {
            throw EvtError.usage("--per-partition writes one stream per partition: it needs a topic SOURCE and a stream TARGET.", usage: spec.usageLine)
        }
        if exactlyOnce {
            switch target {
            case .redis(_, .stream, _): break
            case .kafka where source.isStream: break
            case .kafka:
                throw EvtError.usage("--exactly-once into a topic needs a stream SOURCE (evt finds where a copy stopped from the entry ids it carries); topic→topic is at least once.", usage: spec.usageLine)
            case .redis(_, let kind, _):
                throw EvtError.usage("--exactly-once needs a stream or topic TARGET: a \(kind.rawValue) cannot take the checkpoint atomically with the events.", usage: spec.usageLine)
            }
        }
        if let name = arguments.value("checkpoint") {
            guard !name.isEmpty else { throw EvtError.usage("--checkpoint needs a NAME.", usage: spec.usageLine) }
            if source.isList {
                checkpointKey = nil   // the processing list is the checkpoint
                checkpointGroup = nil
            } else if CopyJob.checkpointServer(source: source, target: target) != nil {
                checkpointKey = "evt:checkpoint:" + name
                checkpointGroup = nil
            } else {
                checkpointKey = nil
                checkpointGroup = name
            }
        } else {
            checkpointKey = nil
            checkpointGroup = nil
        }
        if case .redis(_, .list, let name) = source {
            processingList = arguments.value("checkpoint").map { "evt:checkpoint:" + $0 } ?? "evt:copy:" + name
        }
    }

    /// The Redis server that keeps the checkpoint: the target's, else the source's.
    private static func checkpointServer(source: Endpoint, target: Endpoint) -> RedisServerAddress? {
        if case .redis(let server, _, _) = target { return server }
        if case .redis(let server, _, _) = source { return server }
        return nil
    }

    /// What the checkpoint records as the source, so a NAME reused for another copy is noticed.
    private var sourceIdentity: String {
        switch source {
        case .kafka(_, let topic, let partition): return "topic:" + topic + (partition.map { "/\($0)" } ?? "")
        case .redis(_, let kind, let name): return "\(kind.rawValue):" + name
        }
    }

    // MARK: Running

    /// When the connection was lost (-f), until the copy runs again.
    private var outageSince: Int?

    func run() throws -> ExitStatus {
        try loadCheckpoint()
        while true {
            do {
                try copyOnce()
                break
            } catch let error where follow && !Signals.stopRequested && error.isRetriable {
                // A long-running bridge rides out restarts: start again from what is confirmed.
                if outageSince == nil {
                    outageSince = monotonicMilliseconds()
                    Diagnostics.print("\(CopyJob.describe(error)); retrying every second until it is back (copied so far: \(copied)).")
                }
                // Into a stream, what the stream holds is what its checkpoint says: start from
                // there (what was in flight may have been applied), once Redis answers again.
                repeat {
                    Signals.sleep(milliseconds: 1000)
                } while !Signals.stopRequested && checkpointKey != nil && target.isStream
                    && (try? loadCheckpoint(quietly: true)) == nil
                if Signals.stopRequested { break }
                sentOffsets = confirmedOffsets
                sentID = confirmedID
            } catch {
                let resume = checkpointKey != nil || checkpointGroup != nil ? " The checkpoint holds what the target confirmed: run the same command again to resume." : ""
                Diagnostics.print(CopyJob.describe(error) + resume)
                reportPosition()
                return (error as? EvtError)?.status == .usage ? .usage : .failure
            }
        }
        let skippedText = skipped > 0 ? " (\(skipped) already there were skipped)" : ""
        Diagnostics.print("copied \(copied) event\(copied == 1 ? "" : "s") from \(Endpoint.redactingPassword(sourceText)) to \(Endpoint.redactingPassword(targetText))\(skippedText).")
        return Signals.exitStatusAfterSignal ?? .success
    }

    /// Called once source and target are connected again after an outage.
    private func connected() {
        guard let since = outageSince else { return }
        outageSince = nil
        Diagnostics.print("connected again after \((monotonicMilliseconds() - since) / 1000) s; copying on from the last confirmed position.")
    }

    private static func describe(_ error: Error) -> String {
        (error as? EvtError)?.message ?? "\(error)"
    }

    /// Without a checkpoint, where a failed copy stopped (what the target confirmed), on stderr.
    private func reportPosition() {
        guard checkpointKey == nil && checkpointGroup == nil && !source.isList else { return }
        Diagnostics.print("the target confirmed every event up to \(positionText); copy-between --checkpoint NAME would resume from there.")
    }

    private var positionText: String {
        if source.isStream { return "entry " + (confirmedID?.description ?? "(none)") }
        let offsets = confirmedOffsets.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }
        return offsets.isEmpty ? "(none)" : "partition:next-offset " + offsets.joined(separator: " ")
    }

    private func copyOnce() throws {
        let record = CopyRecord()
        switch (source, target) {
        case (.kafka(let brokers, let topic, let partition), _):
            var options = SourceOptions()
            options.kafkaProperties = kafkaProperties + (checkpointGroup.map { [("group.id", $0)] } ?? [])
            let reader = try KafkaTailSource(brokers: brokers, topic: topic, partition: partition, options: options)
            let partitions = try reader.copyPartitions()
            if let checkpointGroup {
                groupReader = reader
                confirmedOffsets = try reader.committedOffsets(partitions)
                sentOffsets = confirmedOffsets
                if !confirmedOffsets.isEmpty && outageSince == nil {
                    Diagnostics.print("resuming from checkpoint (group \(checkpointGroup)): after \(positionText).")
                }
            }
            if !endKnown && !follow { endOffsets = try reader.endOffsets(partitions) }
            endKnown = true
            lagText = { ", \(reader.lag(next: self.confirmedOffsets, partitions: partitions)) records behind" }
            let writer = try makeWriter(partitions: partitions)
            connected()
            try reader.copy(partitions: partitions, starts: confirmedOffsets, ends: follow ? nil : endOffsets, into: record,
                            idle: { try writer.idle() }, { record in
                try writer.write(record)
                sentOffsets[record.partition] = record.offset + 1
                try writer.afterEvent()
            }, batchEnded: { try writer.batchEnded() })
            try writer.finish()
        case (.redis(let server, .list, let name), _):
            try copyList(server: server, name: name, record: record)
        case (.redis(let server, _, let name), _):
            let reader = try StreamCopySource(server: server, name: name)
            if !endKnown && !follow { endID = try reader.newestID() }
            endKnown = true
            lagText = { reader.lagMilliseconds(after: self.confirmedID).map { ", \($0) ms behind" } ?? "" }
            let writer = try makeWriter()
            connected()
            if follow || endID != nil {
                try reader.copy(after: confirmedID, until: follow ? nil : endID, pageSize: 1000, into: record,
                                idle: { try writer.idle() }, { record in
                    try writer.write(record)
                    sentID = StreamID(record.id)
                    try writer.afterEvent()
                }, batchEnded: { try writer.batchEnded() })
            }
            try writer.finish()
        }
    }

    /// The processing list of a list copy: `evt:checkpoint:NAME`, or `evt:copy:LIST` without
    /// --checkpoint.
    private var processingList: String?

    /// A list is a queue: its items are moved (BLMOVE) into the processing list, copied, and
    /// removed from there once the target acknowledged them; a rerun copies what a crash left
    /// there first. Without -f the copy stops when the list is empty.
    private func copyList(server: RedisServerAddress, name: String, record: CopyRecord) throws {
        var options = ConsumerOptions()
        options.processingList = processingList
        // A bridge (-f) waits for Redis as long as it takes; a one-off copy a minute.
        options.retryForMs = follow ? Int.max / 2 : 60_000
        let consumer = try RedisConsumer(server: server, kind: .list, names: [name], options: options)
        let writer = try makeWriter()
        connected()
        record.origin = .list
        let batch = RecordBatch()
        while !Signals.stopRequested {
            batch.removeAll()
            let got = try consumer.receive(limit: 1000, waitMs: follow ? 1000 : 0, into: batch)
            if got == 0 {
                if !follow { break }
                try writer.idle()
                continue
            }
            for index in 0..<got {
                try consumer.withListItem(index) { item in
                    record.value = item
                    try writer.write(record)
                }
            }
            try writer.finish()
            try consumer.acknowledge(Array(0..<got))
        }
        try consumer.close()
    }

    // MARK: Checkpoints

    private var checkpointFields: [(String, String)] {
        var fields = [("source", sourceIdentity)]
        if source.isStream {
            if let sentID { fields.append(("id", sentID.description)) }
        } else {
            for (partition, next) in sentOffsets { fields.append(("partition:\(partition)", String(next))) }
        }
        return fields
    }

    private func loadCheckpoint(quietly: Bool = false) throws {
        guard let checkpointKey, let server = CopyJob.checkpointServer(source: source, target: target) else { return }
        let connection = try RedisConnection(server)
        let reply = try connection.call(["HGETALL", checkpointKey])
        guard case .array(let words) = reply else {
            if case .error(let message) = reply { throw RedisErrorReply.error(message, "cannot read checkpoint \(checkpointKey)") }
            return
        }
        var fields: [String: String] = [:]
        var index = 0
        while index + 1 < words.count {
            fields[words[index].text ?? ""] = words[index + 1].text ?? ""
            index += 2
        }
        guard !fields.isEmpty else { return }
        if let recorded = fields["source"], recorded != sourceIdentity {
            throw EvtError.usage("checkpoint \(checkpointKey) belongs to a copy from \(recorded), not from \(sourceIdentity). Choose another --checkpoint NAME, or delete it: redis-cli DEL \(checkpointKey).")
        }
        confirmedID = fields["id"].flatMap(StreamID.init)
        confirmedOffsets = [:]
        for (field, value) in fields where field.hasPrefix("partition:") {
            if let partition = Int32(field.dropFirst("partition:".count)), let next = Int64(value) {
                confirmedOffsets[partition] = next
            }
        }
        sentID = confirmedID
        sentOffsets = confirmedOffsets
        if !quietly { Diagnostics.print("resuming from checkpoint \(checkpointKey): after \(positionText).") }
    }

    // MARK: Writers

    private func makeWriter(partitions: [Int32] = []) throws -> CopyWriter {
        switch target {
        case .redis(let server, .stream, let name):
            return try StreamCopyWriter(job: self, server: server, name: name, partitions: partitions)
        default:
            return try SinkCopyWriter(job: self)
        }
    }

    /// Writes events into a stream, each batch with its checkpoint in one transaction.
    private final class StreamCopyWriter: CopyWriter {
        private unowned let job: CopyJob
        private let target: StreamCopyTarget
        private let stream: [UInt8]
        private let name: String
        private let scratch = CopyScratch()
        /// Positions of batches sent and not yet confirmed, by token.
        private var snapshots: [(token: Int, offsets: [Int32: Int64], id: StreamID?)] = []
        private var nextToken = 0
        private var partitionStreams: [Int32: [UInt8]] = [:]

        /// What earlier runs of this job (before an outage) copied.
        private let copiedBefore: Int

        init(job: CopyJob, server: RedisServerAddress, name: String, partitions: [Int32]) throws {
            self.job = job
            copiedBefore = job.copied
            self.name = name
            stream = Array(name.utf8)
            target = try StreamCopyTarget(server: server, description: "stream \(name)", checkpointKey: job.checkpointKey,
                                          timeoutMs: job.timeoutMs)
            // Checked before the pipeline starts (a TYPE in the middle would read another answer).
            if job.perPartition {
                for partition in partitions {
                    try target.checkIsStreamOrAbsent("\(name):\(partition)")
                    partitionStreams[partition] = Array("\(name):\(partition)".utf8)
                }
            } else {
                try target.checkIsStreamOrAbsent(name)
            }
        }

        private func streamName(for record: CopyRecord) -> [UInt8] {
            guard job.perPartition else { return stream }
            if let known = partitionStreams[record.partition] { return known }
            // A partition added since the start: the checkpoint guard still refuses a non-stream.
            partitionStreams[record.partition] = Array("\(name):\(record.partition)".utf8)
            return partitionStreams[record.partition]!
        }

        func write(_ record: CopyRecord) throws {
            let stream = streamName(for: record)
            if !record.writeEntry(to: target, stream: stream, scratch: scratch) {
                try commit()
                _ = record.writeEntry(to: target, stream: stream, scratch: scratch)
            }
        }

        func afterEvent() throws {
            if target.batchCount >= 1000 { try commit() }
        }

        func batchEnded() throws {
            try commit()
            try target.flush()
            settle()
        }

        func idle() throws {
            try batchEnded()
            job.showStats()
        }

        private func commit() throws {
            guard !target.batchIsEmpty else { return }
            nextToken += 1
            snapshots.append((nextToken, job.sentOffsets, job.sentID))
            try reportingUnconfirmed { try target.commit(checkpoint: job.checkpointFields, token: nextToken) }
            settle()
            job.showStats()
        }

        /// A lost connection leaves the batches in flight unknown: say how many events they hold.
        private func reportingUnconfirmed(_ body: () throws -> Void) throws {
            do {
                try body()
            } catch let lost as EvtError where lost.cause == .connectionLost {
                let unknown = target.unconfirmedEntries
                if unknown > 0 {
                    Diagnostics.print("\(unknown) events were in batches Redis had not confirmed: each batch is stored whole with its checkpoint, or not at all.")
                }
                throw lost
            }
        }

        private func settle() {
            job.copied = copiedBefore + target.delivered
            guard let confirmed = target.confirmedToken else { return }
            while let first = snapshots.first, first.token <= confirmed {
                job.confirmedOffsets = first.offsets
                job.confirmedID = first.id
                snapshots.removeFirst()
            }
        }

        func finish() throws {
            try commit()
            defer { settle() }
            try reportingUnconfirmed { try target.drain() }
        }
    }

    /// Writes events through a publish sink (topic, list, channel); the checkpoint follows a
    /// barrier: every event sent so far acknowledged.
    private final class SinkCopyWriter: CopyWriter {
        private unowned let job: CopyJob
        private let sink: EventSink
        private let scratch = CopyScratch()
        private var sent = 0
        private var lastBarrier = monotonicMilliseconds()
        private let checkpoint: RedisConnection?
        /// --exactly-once from a stream: per partition, the newest entry id already there.
        private var alreadyCopied: [Int32: StreamID] = [:]
        private var partitionCount: Int32 = 1
        private var fixedPartition: Int32?

        /// What earlier runs of this job (before an outage) copied.
        private let copiedBefore: Int

        init(job: CopyJob) throws {
            self.job = job
            copiedBefore = job.copied
            var options = SinkOptions()
            options.timeoutMs = job.timeoutMs
            if case .kafka(let brokers, let topic, let partition) = job.target {
                // One partitioner whose choice evt can compute (for the resume step), Java's.
                options.kafkaProperties = [("partitioner", "murmur2")] + job.kafkaProperties
                if job.exactlyOnce {
                    // The resume step needs each partition gap-free: a failed batch must fail
                    // everything after it (and evt stops at the first failed event).
                    options.kafkaProperties += [("partitioner", "murmur2"), ("enable.gapless.guarantee", "true")]
                    var sourceOptions = SourceOptions()
                    sourceOptions.kafkaProperties = job.kafkaProperties
                    let scanner = try KafkaTailSource(brokers: brokers, topic: topic, partition: partition, options: sourceOptions)
                    if let partitions = try? scanner.copyPartitions(), !partitions.isEmpty {
                        partitionCount = Int32((partitions.max() ?? 0) + 1)
                        alreadyCopied = try scanner.lastCopiedStreamIDs()
                    }
                    fixedPartition = partition
                }
            } else {
                options.kafkaProperties = job.kafkaProperties
            }
            sink = try Backends.sink(for: job.target, options: options)
            checkpoint = try job.checkpointKey.map { _ in try RedisConnection(CopyJob.checkpointServer(source: job.source, target: job.target)!) }
        }

        func write(_ record: CopyRecord) throws {
            try record.withOutgoingEvent(number: sent + 1, keyField: job.keyField, exactlyOnce: job.exactlyOnce, scratch: scratch) { event in
                if !alreadyCopied.isEmpty, let id = StreamID(record.id) {
                    let partition = fixedPartition ?? KafkaTailSource.murmur2Partition(key: event.key, partitionCount: partitionCount)
                    if let last = alreadyCopied[partition], id <= last {
                        job.skipped += 1
                        return
                    }
                }
                sent += 1
                try sink.send(event)
                if job.exactlyOnce && !sink.tally.failedLines.isEmpty {
                    try barrier()   // reports the failure; nothing after a gap may be sent
                }
            }
        }

        func afterEvent() throws {
            if sent & 1023 == 0 && monotonicMilliseconds() - lastBarrier >= 1000 { try barrier() }
        }

        func batchEnded() throws {
            if monotonicMilliseconds() - lastBarrier >= 1000 { try barrier() }
        }

        func idle() throws {
            try sink.inputStalled()
            try barrier()
        }

        /// Waits until every event sent is acknowledged; then the position is confirmed and
        /// the checkpoint moves.
        private func barrier() throws {
            lastBarrier = monotonicMilliseconds()
            sink.finish()
            guard sink.tally.allDelivered(sent: sent) else {
                for message in sink.tally.summary(sent: sent, unit: "copied event") { Diagnostics.print(message) }
                if job.follow && sink.tally.onlyRetriableTrouble {
                    // Redis went away or is starting up: a bridge resends from the confirmed position.
                    throw EvtError(.connectionLost, "\(Endpoint.redactingPassword(job.targetText)) stopped answering")
                }
                throw EvtError.failure("\(Endpoint.redactingPassword(job.targetText)) did not acknowledge every event; the checkpoint stays before them, so a rerun copies them again.")
            }
            job.copied = copiedBefore + sent
            if job.sentOffsets != job.confirmedOffsets || job.sentID != job.confirmedID {
                if let checkpoint, let key = job.checkpointKey {
                    let reply = try checkpoint.call(["HSET", key] + job.checkpointFields.flatMap { [$0.0, $0.1] })
                    if case .error(let message) = reply { throw EvtError.failure("cannot write checkpoint \(key): \(message)") }
                } else if let reader = job.groupReader {
                    try reader.commit(job.sentOffsets)
                }
            }
            job.confirmedOffsets = job.sentOffsets
            job.confirmedID = job.sentID
            job.showStats()
        }

        func finish() throws { try barrier() }
    }

    // MARK: Stats

    fileprivate func showStats() {
        guard let every = statsEveryMs else { return }
        let now = monotonicMilliseconds()
        guard now - lastStats >= every else { return }
        let rate = Double(copied - copiedAtLastStats) * 1000 / Double(max(now - lastStats, 1))
        lastStats = now
        copiedAtLastStats = copied
        Diagnostics.print("copied \(copied) events (\(Int(rate))/s), confirmed up to \(positionText)\(lagText())")
    }
}

/// What the copy loop asks of a target.
private protocol CopyWriter: AnyObject {
    func write(_ record: CopyRecord) throws
    /// After each event (the source position of it is recorded as sent).
    func afterEvent() throws
    /// After each batch the source read.
    func batchEnded() throws
    /// A follower found nothing new for a while.
    func idle() throws
    /// Every event sent acknowledged, the checkpoint written.
    func finish() throws
}

extension Endpoint {
    var isStream: Bool { if case .redis(_, .stream, _) = self { return true } else { return false } }
    var isRedis: Bool { if case .redis = self { return true } else { return false } }
    var isList: Bool { if case .redis(_, .list, _) = self { return true } else { return false } }
}
