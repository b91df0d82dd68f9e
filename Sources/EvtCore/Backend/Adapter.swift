/// The backend adapter layer: every command talks to brokers only through these protocols
/// (sinks and consumers for publish and subscribe; record sources, targets and checkpoint
/// stores for copies, replays and tails) and the capabilities each endpoint declares.
/// `Backends` is the one place that knows which implementation serves which endpoint: a new
/// backend is new files plus cases here, no command changes.

/// Headers of one outgoing event, in a buffer reused from event to event.
final class EventHeaders {
    var bytes: [UInt8] = []
    /// Ranges into `bytes`; a nil value is a header with a null value.
    var entries: [(name: Range<Int>, value: Range<Int>?)] = []

    var isEmpty: Bool { entries.isEmpty }

    func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        entries.removeAll(keepingCapacity: true)
    }

    func append(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer?) {
        let nameStart = bytes.count
        bytes.append(contentsOf: name)
        let nameRange = nameStart..<bytes.count
        var valueRange: Range<Int>?
        if let value {
            let valueStart = bytes.count
            bytes.append(contentsOf: value)
            valueRange = valueStart..<bytes.count
        }
        entries.append((nameRange, valueRange))
    }
}

/// One event to send. Its buffers are borrowed for the duration of `EventSink.send` only.
struct OutgoingEvent {
    /// 1-based input line, reported back in delivery failures.
    var line: Int
    var value: UnsafeRawBufferPointer
    /// The kind of JSON `value` holds, or nil when it is not JSON to interpret (`--raw`, or an
    /// envelope's string / base64 value). Streams turn an object into fields.
    var valueKind: JSONKind?
    /// An envelope's `"value":null`: a Kafka tombstone; Redis, which has no null, gets "".
    var valueIsNull = false
    var key: UnsafeRawBufferPointer?
    var headers: EventHeaders?
    var partition: Int32?
    /// The partition the event was read from (a copy or a replay of a topic): a Kafka target
    /// sends it to the same partition number when the topic has that many, as MirrorMaker
    /// does, and otherwise partitions it by key. `partition` wins over it.
    var sourcePartition: Int32?
    /// Milliseconds since the epoch; nil lets the producer assign it.
    var timestamp: Int64?
    /// An envelope record's `stream` or `list`: where a `stream:*` (`list:*`) target puts it.
    var redisName: UnsafeRawBufferPointer?
}

/// Thrown by `EventSink.send` when it did not even try to send the event: the target
/// became unavailable, so reading further input would only queue more failures.
struct SinkStopped: Error {
    let reason: String
    /// Why: the target stopped answering (the default), refused evt, or a stop signal came.
    var cause: FailureCause = .connectionLost
}

/// A target that events are written to.
protocol EventSink: AnyObject {
    /// Queues one event; may wait while the server catches up. A per-event failure is recorded
    /// in `tally`; throws only when nothing more can be sent (connection lost for good).
    func send(_ event: borrowing OutgoingEvent) throws
    /// The input has nothing more for now: send what is buffered (without waiting for answers).
    func inputStalled() throws
    /// Waits until every queued event was acknowledged or failed, within the timeout.
    func finish()
    /// What became of every event sent so far.
    var tally: DeliveryTally { get }
}

/// A source without positions that `tail` shows (a list's newest items, a channel's new
/// messages); topics and streams are read as record sources (RecordSource).
protocol EventSource: AnyObject {
    /// Hands `body` the last `count` records (oldest first), then with `follow` every new one
    /// until stopped, calling `batchEnded` after each page or burst. The record's buffers are
    /// the source's, valid only during the call. Returns normally on a stop signal.
    func tail(count: Int, follow: Bool, into record: Record, _ body: (Record) throws -> Void,
              batchEnded: () throws -> Void) throws
}

/// A source read with acknowledgements (`subscribe`): records are received, handed over
/// (stdout flushed, or `--exec` succeeded), and only then acknowledged — a record that was
/// not handed over stays pending / uncommitted.
protocol EventConsumer: AnyObject {
    /// Hands `body` up to `limit` records, waiting up to `waitMs` for the first (-1: until one
    /// comes, a stop signal, or a closed stdout — StdoutClosed). The record's buffers are the
    /// consumer's, valid only during the call to `body`; the consumer keeps what it needs to
    /// acknowledge each (a stream id, a list item, a partition's offset). Returns how many it
    /// handed over; 0 when none came in time or a stop was requested.
    func receive(limit: Int, waitMs: Int, into record: Record, _ body: (Record) -> Void) throws -> Int
    /// Acknowledges these records of the last `receive` (their indexes in the order they were
    /// handed over, ascending; the others were not handed over). Not waited for: the
    /// acknowledgement goes out with the next `receive` or on `close`, its answer is checked
    /// when it comes.
    func acknowledge(_ indexes: [Int]) throws
    /// Gives back the records of the last `receive` that were not acknowledged, where the
    /// source needs it (a list pushes them back); then leaves cleanly.
    func close() throws
}

/// What `subscribe` asks of a consumer.
struct ConsumerOptions {
    var group: String?
    var consumer: String?
    var from: Position?
    var createGroup = false
    var processingList: String?
    /// nil: decide from the name (`*`, `?`, `[` make a channel name a pattern).
    var pattern: Bool?
    /// How long to keep retrying a lost connection before giving up.
    var retryForMs = 60_000
    /// Kafka group: how often the offsets of acknowledged records are committed.
    var commitIntervalMs = 1000
    var kafka = KafkaSettings()
}

/// What publish knows about the target beyond its address.
struct SinkOptions {
    var kafka = KafkaSettings()
    var timeoutMs = 30_000
    var headers: [(String, String)] = []
    var maxlen: Int?
    var requireSubscribers = false
    /// `--wait-replicas N`: an event counts as delivered once N replicas have it (WAIT).
    var waitReplicas: Int?
}

enum Backends {
    static func sink(for endpoint: Endpoint, options: SinkOptions) throws -> EventSink {
        switch endpoint {
        case .redis(let server, let kind, let name):
            return try RedisSink(server: server, kind: kind, name: name, options: options)
        case .kafka(let brokers, let topic, let partition):
            return try KafkaSink(brokers: brokers, topic: topic, partition: partition, options: options)
        }
    }

    /// DEST of an option that takes "an endpoint or, if it is not one, a file" (--dead-letter).
    static func sink(forDestination destination: String, environment: [String: String],
                     options: SinkOptions) throws -> EventSink {
        guard Endpoint.looksLikeEndpoint(destination) else { return try FileSink(path: destination) }
        return try sink(for: try Endpoint.parse(destination, environment: environment), options: options)
    }

    /// One consumer for all SOURCEs (`subscribe` checked they are of one kind on one server).
    static func consumer(for endpoints: [Endpoint], options: ConsumerOptions) throws -> EventConsumer {
        switch endpoints[0] {
        case .redis(let server, .stream, let name):
            return try RedisStreamReader(server: server, name: name, options: options)
        case .redis(let server, .list, let name):
            return try RedisListQueue(server: server, name: name, processingList: options.processingList,
                                      retryForMs: options.retryForMs)
        case .redis(let server, .channel, _):
            let names = endpoints.compactMap { endpoint -> String? in
                if case .redis(_, _, let name) = endpoint { return name } else { return nil }
            }
            return try RedisChannelSubscriber(server: server, names: names,
                                              byPattern: options.pattern ?? RedisChannelSubscriber.looksLikePattern(names))
        case .kafka(let brokers, _, let partition):
            let topics = endpoints.compactMap { endpoint -> String? in
                if case .kafka(_, let topic, _) = endpoint { return topic } else { return nil }
            }
            return try KafkaConsumer(brokers: brokers, topics: topics, partition: partition, options: options)
        }
    }

    /// The source of a copy: a topic, a stream or a list (the command checked it is one).
    static func copySource(for endpoint: Endpoint, options: CopyOptions) throws -> RecordSource {
        switch endpoint {
        case .kafka(let brokers, let topic, let partition):
            return try KafkaRecordSource(brokers: brokers, topic: topic, partition: partition, kafka: options.kafka)
        case .redis(let server, .stream, let name):
            return try StreamCopySource(server: server, name: name)
        case .redis(let server, .list, let name):
            let processing = options.checkpointName.map { "evt:checkpoint:" + $0 } ?? "evt:copy:" + name
            return try ListCopySource(server: server, name: name, processingList: processing, follow: options.follow)
        case .redis(_, .channel, _):
            throw EvtError.usage("a channel keeps nothing to copy or resume from.")
        }
    }

    /// Checkpoint NAME of a copy: the Redis hash `evt:checkpoint:NAME` on the target's server,
    /// else the source's; between two topics, the offsets committed for group NAME. A list
    /// source's position is its processing list `evt:checkpoint:NAME`: the hash
    /// `evt:checkpoint:NAME:lease` next to it records only the copy and its lease.
    static func checkpoint(named name: String, source: Endpoint, target: Endpoint,
                           options: CopyOptions) throws -> CheckpointStore {
        let targetIdentity = target.identity + (options.perPartition ? " (--per-partition)" : "")
        switch (target, source) {
        case (_, .redis(let server, .list, let list)):
            return RedisHashCheckpoint(server: server, key: "evt:checkpoint:\(name):lease", sharingSlotWith: list, target: targetIdentity)
        case (.redis(let server, _, let key), _), (_, .redis(let server, _, let key)):
            return RedisHashCheckpoint(server: server, key: "evt:checkpoint:" + name, sharingSlotWith: key, target: targetIdentity)
        case (.kafka, .kafka(let brokers, let topic, let partition)):
            return try KafkaGroupCheckpoint(brokers: brokers, topic: topic, partition: partition, group: name,
                                            target: target, kafka: options.kafka)
        }
    }

    /// The target of a copy. A stream keeps the checkpoint in its batches when it is a Redis
    /// hash there; a topic with --exactly-once partitions by murmur2 and gap-free, so that a
    /// resume can tell which entries it has (KafkaResumeFilter).
    static func copyTarget(for endpoint: Endpoint, source: RecordSource, checkpoint: CheckpointStore?,
                           options: CopyOptions) throws -> RecordTarget {
        var sinkOptions = SinkOptions()
        sinkOptions.timeoutMs = options.timeoutMs
        sinkOptions.kafka = options.kafka
        sinkOptions.waitReplicas = options.waitReplicas
        switch endpoint {
        case .redis(let server, .stream, let name):
            let kept = (checkpoint as? RedisHashCheckpoint).flatMap { $0.server == server && $0.companion == name ? $0 : nil }
            return try StreamTarget(server: server, name: name, checkpoint: kept,
                                    partitions: source.partitions, perPartition: options.perPartition,
                                    timeoutMs: options.timeoutMs, waitReplicas: options.waitReplicas)
        case .kafka(let brokers, let topic, let partition) where options.exactlyOnce:
            // A failed batch must fail everything after it (evt stops at the first failed
            // event), and the partition of an entry must be one evt can compute.
            sinkOptions.kafka = options.kafka.adding([("partitioner", "murmur2"), ("enable.gapless.guarantee", "true")])
            let sink = try KafkaSink(brokers: brokers, topic: topic, partition: partition, options: sinkOptions)
            // Where each entry goes must be the same in every run, or a resume would look for
            // an entry in another partition than the one an earlier run wrote it to.
            guard try partition != nil || sink.knowsPartitionCount else {
                throw EvtError(.connectionLost, "cannot learn how many partitions topic \(topic) has; --exactly-once needs it to know where each entry goes. Is the broker reachable, and does the topic exist?")
            }
            let filter = try KafkaResumeFilter.make(brokers: brokers, topic: topic, partition: partition, sink: sink,
                                                    kafka: options.kafka)
            return SinkRecordTarget(sink: sink, description: endpoint.description, options: options, alreadyCopied: filter)
        default:
            return SinkRecordTarget(sink: try sink(for: endpoint, options: sinkOptions), description: endpoint.description,
                                    options: options)
        }
    }

    /// claim-pending: a stream group's pending entries (the command checked it is a stream).
    static func claimer(for endpoint: Endpoint, group: String, consumer: String, minIdleMs: Int) throws -> RedisClaimer {
        guard case .redis(let server, .stream, let stream) = endpoint else {
            throw EvtError.usage("claim-pending works only for Redis stream groups.")
        }
        return try RedisClaimer(server: server, stream: stream, group: group, consumer: consumer, minIdleMs: minIdleMs)
    }

    /// group-create: a stream's group through XGROUP, a Kafka group through committed offsets.
    static func createGroup(_ group: String, for endpoint: Endpoint, from: Position, reset: Bool,
                            kafka: KafkaSettings) throws -> ExitStatus {
        switch endpoint {
        case .redis(let server, _, let name):
            return try RedisGroups.create(group: group, server: server, stream: name, from: from, reset: reset)
        case .kafka(let brokers, let topic, let partition):
            return try KafkaGroups.create(group: group, brokers: brokers, topic: topic, partition: partition,
                                          from: from, reset: reset, kafka: kafka)
        }
    }

    /// `tail` of a list or a channel (a topic or a stream is a copySource).
    static func source(for endpoint: Endpoint) throws -> EventSource {
        guard case .redis(let server, let kind, let name) = endpoint, kind != .stream else {
            throw EvtError.usage("\(endpoint.description) is read as a record source.")
        }
        return try RedisTailSource(server: server, kind: kind, name: name)
    }
}

// MARK: Capabilities

/// What the system behind an endpoint can do. Commands check their options against these
/// (one place writes the messages), never against the backend kind.
struct Capabilities: OptionSet {
    let rawValue: Int
    /// Keeps events to read again from a position (a topic, a stream).
    static let history = Capabilities(rawValue: 1 << 0)
    /// Consumer groups with acknowledged positions (a topic, a stream).
    static let groups = Capabilities(rawValue: 1 << 1)
    /// Delivered but unacknowledged entries that another consumer can claim (a stream).
    static let pendingEntries = Capabilities(rawValue: 1 << 2)
    /// Events have keys, headers, timestamps and partitions (a topic).
    static let keysAndHeaders = Capabilities(rawValue: 1 << 3)
    /// Trimmed by the writer, `--maxlen` (a stream).
    static let trimming = Capabilities(rawValue: 1 << 4)
    /// Events are field/value pairs under ordered ids that a copy can find again (a stream).
    static let fieldEntries = Capabilities(rawValue: 1 << 5)
    /// A batch of events and the copy's checkpoint are stored in one transaction (a stream).
    static let atomicBatches = Capabilities(rawValue: 1 << 6)
    /// Items leave when they are consumed (a list).
    static let queue = Capabilities(rawValue: 1 << 7)
    /// Publish/subscribe: names or patterns, delivered only to whoever listens (a channel).
    static let pubSub = Capabilities(rawValue: 1 << 8)
    /// Writes a Redis server's replicas copy, which WAIT can wait for (a stream, a list).
    static let replicatedWrites = Capabilities(rawValue: 1 << 9)

    /// What an option that needs these is for, as its usage error says it.
    fileprivate var purpose: String {
        switch self {
        case .keysAndHeaders: return "is for Kafka topics: only they have keys, headers and partitions"
        case .trimming: return "trims Redis streams (Kafka topics are trimmed by their retention settings)"
        case .pubSub: return "is for Redis channels"
        case .replicatedWrites: return "waits for the replicas of a Redis stream or list (WAIT); Kafka's acks=all already waits for the in-sync replicas, and a channel keeps nothing to replicate"
        case .queue: return "is for Redis lists"
        case .groups: return "is for streams and topics: only they have consumer groups"
        case .history: return "is for streams and topics: only they keep positions"
        case .pendingEntries: return "works only for Redis stream groups, the only ones that keep pending entries"
        default: return "is not for this kind of endpoint"
        }
    }
}

extension Endpoint {
    var capabilities: Capabilities {
        switch self {
        case .kafka: return [.history, .groups, .keysAndHeaders]
        case .redis(_, .stream, _): return [.history, .groups, .pendingEntries, .trimming, .fieldEntries, .atomicBatches, .replicatedWrites]
        case .redis(_, .list, _): return [.queue, .replicatedWrites]
        case .redis(_, .channel, _): return [.pubSub]
        }
    }

    func has(_ needed: Capabilities) -> Bool { capabilities.isSuperset(of: needed) }

    /// Refuses the first given option that this endpoint cannot honour: the one place that
    /// writes these usage errors (publish, subscribe, tail, group-create, claim-pending).
    func require(_ checks: [(option: String, given: Bool, needs: Capabilities)], usage: String?) throws {
        for check in checks where check.given && !has(check.needs) {
            throw EvtError.usage("\(check.option) \(check.needs.purpose); \(description) is a \(kindName).\(hint(lacking: check.needs))", usage: usage)
        }
    }

    /// What to do instead, where there is something.
    private func hint(lacking needed: Capabilities) -> String {
        switch (needed, self) {
        case (.pendingEntries, .kafka):
            return " Kafka keeps no per-message pending state: a group resumes from its committed offsets (see evt group-create --reset)."
        case (.pendingEntries, .redis(_, .channel, _)):
            return " Pub/sub keeps nothing: a message nobody received is gone."
        case (.pendingEntries, .redis(_, .list, _)):
            return " A list read with subscribe --processing keeps its unfinished items in the processing list; move them back with LMOVE."
        default:
            return ""
        }
    }

    /// Whether one subscribe can read this and `other` together: channels of one Redis
    /// server, or whole topics of one Kafka cluster.
    func canBeReadTogether(with other: Endpoint) -> Bool {
        switch (self, other) {
        case (.redis(let a, .channel, _), .redis(let b, .channel, _)): return a == b
        case (.kafka(let a, _, nil), .kafka(let b, _, nil)): return a == b
        default: return false
        }
    }

    /// `stream:orders`, `topic:orders/2`: what a checkpoint records as a copy's source or target.
    var identity: String {
        switch self {
        case .kafka(_, let topic, let partition): return "topic:" + topic + (partition.map { "/\($0)" } ?? "")
        case .redis(_, let kind, let name): return kind.rawValue + ":" + name
        }
    }

    /// "topic", "stream", "list" or "channel", for messages.
    var kindName: String {
        switch self {
        case .kafka: return "topic"
        case .redis(_, let kind, _): return kind.rawValue
        }
    }
}

// MARK: Copying (copy-between, replay --to)

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
}
