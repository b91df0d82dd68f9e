/// Where a copy stands in its source: the next offset of each partition, or the last stream
/// entry id. A list (a queue) has none: its processing list holds what is not yet confirmed.
struct SourcePosition: Equatable {
    var offsets: [Int32: Int64] = [:]
    var id: StreamID?

    mutating func advance(past record: Record) {
        switch record.origin {
        case .kafka: offsets[record.partition] = record.offset + 1
        case .stream: id = StreamID(record.id)
        case .list, .channel: break
        }
    }

    var description: String {
        if let id { return "entry \(id)" }
        let offsets = offsets.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }
        return offsets.isEmpty ? "(none)" : "partition:next-offset " + offsets.joined(separator: " ")
    }
}

/// Where the records handed to a target so far end in the source. The copy loop advances
/// it per record; targets read it only to take a snapshot (a batch closed, a drain). A class,
/// so that advancing it never copies the offsets a snapshot shares.
final class SourceCursor {
    var position: SourcePosition
    init(_ position: SourcePosition) { self.position = position }
}

/// A source a copy reads: records after a position, handed over one by one, batch by batch.
protocol RecordSource: AnyObject {
    /// What a checkpoint records as the source (`topic:orders`), so that a NAME reused for
    /// another copy is noticed.
    var identity: String { get }
    /// The partitions read (a topic), for a target that writes one stream per partition.
    var partitions: [Int32] { get }
    /// Where the source ends now; a copy without -f stops there.
    func end() throws -> SourcePosition
    /// A replay's `from` and `until` (inclusive; nil: the end as of now) as positions: the
    /// copy reads after `start` up to `end`.
    func positions(from: Position, until: Position?) throws -> (start: SourcePosition, end: SourcePosition)
    /// Hands `body` every record after `start` up to `end` (nil: on and on, calling `idle`
    /// when nothing came for a while), calling `batchEnded` after each batch read. The
    /// record's buffers are the source's, valid only during the call. Returns on a stop signal.
    func read(after start: SourcePosition, until end: SourcePosition?, into record: Record,
              idle: () throws -> Void, _ body: (Record) throws -> Void, batchEnded: () throws -> Void) throws
    /// How far `position` is behind the source, for --stats (`, 12 records behind`).
    func lag(behind position: SourcePosition) -> String
    /// A queue lets go of the items it handed over only once the target acknowledged them:
    /// then the copy confirms after every batch and calls `confirmed()`.
    var confirmsEveryBatch: Bool { get }
    func confirmed() throws
}

extension RecordSource {
    var partitions: [Int32] { [] }
    var confirmsEveryBatch: Bool { false }
    func positions(from: Position, until: Position?) throws -> (start: SourcePosition, end: SourcePosition) {
        throw EvtError.usage("a \(identity.prefix { $0 != ":" }) keeps no positions to replay from; replay reads streams and topics.")
    }
    func confirmed() throws {}
}

/// A target a copy writes to.
protocol RecordTarget: AnyObject {
    /// Queues one record, which comes after `cursor`; false when it was skipped because the
    /// target has it already (an --exactly-once copy resuming). May wait while the server
    /// catches up.
    func write(_ record: Record, after cursor: SourceCursor) throws -> Bool
    /// The records written so far end at `cursor`. A target that batches closes its batch
    /// here once it is full, or whatever its size at the end of a source batch
    /// (`batchEnded`), and sends it.
    func reached(_ cursor: SourceCursor, batchEnded: Bool) throws
    /// Waits until every record written (up to `cursor`) was acknowledged; throws when one
    /// was not (nothing after `confirmed` then counts as copied).
    func drain(at cursor: SourceCursor) throws
    /// The newest position all of whose records the target acknowledged.
    var confirmed: SourcePosition? { get }
    /// How many records the target acknowledged.
    var delivered: Int { get }
    /// True when the target stores the checkpoint itself, in one transaction with each batch.
    var keepsCheckpoint: Bool { get }
    /// True when `confirmed` moves as answers arrive, without a drain (pipelined batches).
    var confirmsAsItGoes: Bool { get }
}

/// Where a copy records how far it got, held by one copy at a time. Every store works the same
/// way (CheckpointLease): `claim` takes the checkpoint for this run, or refuses while another
/// copy holds it; the running copy renews its lease (`keepAlive`, and every write of the
/// checkpoint); `release` gives it up at the end. A killed copy's lease runs out after
/// CheckpointLease.durationMs, and the checkpoint is free again.
protocol CheckpointStore: AnyObject {
    /// `checkpoint evt:checkpoint:NAME`, for messages.
    var name: String { get }
    /// Takes the checkpoint for a copy from `source` (into the target the store was made
    /// for) and returns the recorded position, nil when there is none yet. A usage error when
    /// it belongs to a copy from another source or into another target; `.claimed` while
    /// another copy holds it. Called again after an outage: the same copy takes it again.
    func claim(source identity: String) throws -> SourcePosition?
    /// Records `position` (and renews the lease); `.claimed` when another copy took it over.
    func save(_ position: SourcePosition) throws
    /// Renews the lease when it is due (cheap to call often). Called only while no write
    /// of the target is in flight (a stream target's batches renew it themselves).
    func keepAlive() throws
    /// Gives the lease up, so that the next run can start at once (the end of a run).
    func release()
}

/// What copy-between and replay --to ask of both ends beyond their addresses.
struct CopyOptions {
    var kafka = KafkaSettings()
    var timeoutMs = 30_000
    var follow = false
    var exactlyOnce = false
    var keyField: KeyField?
    /// A topic into a stream: one stream NAME:PARTITION per partition.
    var perPartition = false
    /// The checkpoint NAME (a list source moves its items through `evt:checkpoint:NAME`).
    var checkpointName: String?
    /// `--wait-replicas N` for a Redis target.
    var waitReplicas: Int?
    /// What the numbers in delivery reports count.
    var unit = "copied event"
    /// Into a topic: values (keys) encoded with a registry's schema (`--value-schema`, or the
    /// `value.schema_id` of an entry that holds a record).
    var encoding: SchemaEncoding?
    /// `--key KEY` (a topic source): read only the partition KEY hashes to, and only its records.
    var key: [UInt8]?
}
