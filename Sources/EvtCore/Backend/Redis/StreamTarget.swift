/// A stream as the target of a copy: entries go in batches of up to 1000, each batch with the
/// checkpoint in one guarded transaction (StreamBatchWriter), so what the stream holds is
/// exactly what its checkpoint says, and a copy that lost the checkpoint to another writes
/// nothing more. Batches are pipelined; one counts as copied, and its position as
/// confirmed, only once Redis answered its EXEC. Each batch renews the checkpoint's lease.
final class StreamTarget: RecordTarget {
    private let writer: StreamBatchWriter
    private let checkpoint: RedisHashCheckpoint?
    private let name: String
    private let stream: [UInt8]
    private let perPartition: Bool
    private var partitionStreams: [Int32: [UInt8]] = [:]
    private let scratch = RecordScratch()
    private var unconfirmed = UnconfirmedBatches()
    private(set) var confirmed: SourcePosition?

    /// `partitions`: a topic source's, written one stream NAME:PARTITION each with `perPartition`.
    /// `checkpoint`: claimed before the first batch (its claim token starts the batches' chain).
    init(server: RedisServerAddress, name: String, checkpoint: RedisHashCheckpoint?,
         partitions: [Int32], perPartition: Bool, timeoutMs: Int, waitReplicas: Int? = nil) throws {
        self.checkpoint = checkpoint
        self.name = name
        self.perPartition = perPartition
        stream = Array(name.utf8)
        writer = try StreamBatchWriter(server: server, stream: name, description: "stream \(name)",
                                       checkpoint: checkpoint,
                                       timeoutMs: timeoutMs, waitReplicas: waitReplicas)
        // Checked before the pipeline starts (a TYPE in the middle would read another answer).
        if perPartition {
            try ClusterRouter.of(server).requireOneSlot(
                (try checkpoint.map { [try $0.resolvedKey()] } ?? []) + partitions.map { "\(name):\($0)" },
                for: "--per-partition writes the streams \(name):PARTITION (and the checkpoint) in one transaction")
            for partition in partitions {
                try writer.checkIsStreamOrAbsent("\(name):\(partition)")
                partitionStreams[partition] = Array("\(name):\(partition)".utf8)
            }
        } else {
            try writer.checkIsStreamOrAbsent(name)
        }
    }

    var delivered: Int { writer.delivered }
    var keepsCheckpoint: Bool { checkpoint != nil }
    var confirmsAsItGoes: Bool { true }

    private func streamName(for record: Record) -> [UInt8] {
        guard perPartition else { return stream }
        if let known = partitionStreams[record.partition] { return known }
        // A partition added since the start: the checkpoint guard still refuses a non-stream.
        let added = Array("\(name):\(record.partition)".utf8)
        partitionStreams[record.partition] = added
        return added
    }

    func write(_ record: Record, after cursor: SourceCursor) throws -> Bool {
        let stream = streamName(for: record)
        if !record.writeEntry(to: writer, stream: stream, scratch: scratch) {
            try commit(at: cursor)
            _ = record.writeEntry(to: writer, stream: stream, scratch: scratch)
        }
        return true
    }

    func reached(_ cursor: SourceCursor, batchEnded: Bool) throws {
        guard batchEnded || writer.batchCount >= 1000 else { return }
        try commit(at: cursor)
        if batchEnded {
            try writer.flush()
            settle()
        }
    }

    func drain(at cursor: SourceCursor) throws {
        try commit(at: cursor)
        defer { settle() }
        try reportingUnconfirmed { try writer.drain() }
    }

    private func commit(at cursor: SourceCursor) throws {
        guard !writer.batchIsEmpty else { return }
        let position = cursor.position
        let token = unconfirmed.sent(endingAt: position)
        let fields = checkpoint == nil ? [] : RedisHashCheckpoint.fields(position)
        try reportingUnconfirmed { try writer.commit(checkpoint: fields, token: token) }
        settle()
    }

    /// A lost connection leaves the batches in flight unknown: say how many events they hold.
    private func reportingUnconfirmed(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let lost as EvtError where lost.cause == .connectionLost {
            let unknown = writer.unconfirmedEntries
            if unknown > 0 {
                Diagnostics.print("\(unknown) events were in batches Redis had not confirmed: each batch is stored whole with its checkpoint, or not at all.")
            }
            throw lost
        }
    }

    private func settle() {
        if let position = unconfirmed.settle(confirmedToken: writer.confirmedToken) { confirmed = position }
    }
}

/// The batches a stream target sent and Redis has not confirmed, oldest first: the source
/// position each ends at, by the token its transaction carries. Redis applies them in order,
/// so the answer confirming one batch confirms every older one too.
struct UnconfirmedBatches {
    private var batches: [(token: Int, position: SourcePosition)] = []
    private var lastToken = 0

    /// A batch that ends at `position` goes out: the token for its transaction.
    mutating func sent(endingAt position: SourcePosition) -> Int {
        lastToken += 1
        batches.append((lastToken, position))
        return lastToken
    }

    /// Redis confirmed the batches up to `confirmedToken`: the newest position that settles,
    /// nil when no batch is newly confirmed.
    mutating func settle(confirmedToken: Int?) -> SourcePosition? {
        guard let confirmedToken else { return nil }
        var newest: SourcePosition?
        while let first = batches.first, first.token <= confirmedToken {
            newest = first.position
            batches.removeFirst()
        }
        return newest
    }
}
