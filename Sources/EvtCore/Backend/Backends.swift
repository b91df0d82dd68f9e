/// The backend adapter layer: every command talks to brokers only through its protocols
/// (sinks for publish, EventSink.swift; consumers for subscribe, EventConsumer.swift; record
/// sources, targets and checkpoint stores for copies, replays and tails, CopyProtocols.swift)
/// and the capabilities each endpoint declares (here).
/// `Backends` is the one place that knows which implementation serves which endpoint: a new
/// backend is new files plus cases here, no command changes.

enum Backends {
    static func sink(for endpoint: Endpoint, options: SinkOptions) throws -> EventSink {
        switch endpoint {
        case .redis(let server, let kind, let name):
            return try RedisSink(server: server, kind: kind, name: name, options: options)
        case .kafka(let brokers, let topic, let partition):
            return try KafkaSink(brokers: brokers, topic: topic, partition: partition, options: options)
        }
    }

    /// The lag of groups on `endpoint` (evt lag, subscribe --stats).
    static func lagReader(for endpoint: Endpoint, query: LagQuery) throws -> LagReader {
        switch endpoint {
        case .redis(let server, let kind, let name):
            return try RedisLagReader(server: server, kind: kind, name: name, query: query)
        case .kafka(let brokers, let topic, let partition):
            return try KafkaLagReader(brokers: brokers, topic: topic, partition: partition, query: query)
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
            return try KafkaRecordSource(brokers: brokers, topic: topic, partition: partition, kafka: options.kafka, key: options.key)
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
    /// `reset` nil: an existing group is left as it is. Returns the plan of a dry run.
    static func createGroup(_ group: String, for endpoint: Endpoint, from: Position, reset: GroupReset?,
                            kafka: KafkaSettings) throws -> [GroupPosition] {
        switch endpoint {
        case .redis(let server, _, let name):
            return try RedisGroups.create(group: group, server: server, stream: name, from: from, reset: reset)
        case .kafka(let brokers, let topic, let partition):
            return try KafkaGroups.create(group: group, brokers: brokers, topic: topic, partition: partition,
                                          from: from, reset: reset, kafka: kafka)
        }
    }

    /// group-delete: XGROUP DESTROY on a stream (how many pending entries went with it), a
    /// DeleteGroups request on Kafka (0). The command checked the endpoint has groups.
    static func deleteGroup(_ group: String, for endpoint: Endpoint, force: Bool, kafka: KafkaSettings) throws -> Int {
        switch endpoint {
        case .redis(let server, _, let name):
            return try RedisGroups.delete(group: group, server: server, stream: name, force: force)
        case .kafka(let brokers, _, _):
            try KafkaGroupDeletion.delete(group: group, brokers: brokers, kafka: kafka)
            return 0
        }
    }

    /// consumers: a stream group's consumers (the command checked it is a stream).
    static func consumers(of group: String, on endpoint: Endpoint) throws -> RedisConsumers {
        guard case .redis(let server, .stream, let stream) = endpoint else {
            throw EvtError.usage("evt consumers lists the consumers of Redis stream groups.")
        }
        return try RedisConsumers(server: server, stream: stream, group: group)
    }

    /// trim: a stream's head (the command checked that the endpoint is a stream).
    static func trim(_ endpoint: Endpoint, conditions: StreamTrimConditions, dryRun: Bool) throws -> StreamTrimPlan {
        guard case .redis(let server, .stream, let stream) = endpoint else {
            throw EvtError.usage("evt trim trims Redis streams; \(endpoint.description) is a \(endpoint.kindName).")
        }
        return try RedisStreamTrim.trim(server: server, stream: stream, conditions: conditions, dryRun: dryRun)
    }

    /// count: a topic from its watermarks, a stream by XLEN, a list by LLEN (the command
    /// refused a channel).
    static func count(_ endpoint: Endpoint, kafka: KafkaSettings) throws -> SourceCount {
        switch endpoint {
        case .kafka(let brokers, let topic, let partition):
            return try KafkaCount.fromWatermarks(brokers: brokers, topic: topic, partition: partition, kafka: kafka)
        case .redis(let server, let kind, let name) where kind != .channel:
            return try RedisCount.length(server: server, kind: kind, name: name)
        case .redis:
            throw EvtError.usage("a channel keeps nothing to count.")
        }
    }

    /// count between two positions, when the server can count them without handing the
    /// records over (a stream); nil when the records must be read.
    static func countRange(_ endpoint: Endpoint, from: Position, until: Position?) throws -> SourceCount? {
        guard case .redis(let server, .stream, let name) = endpoint else { return nil }
        return try RedisCount.range(server: server, name: name, from: from, until: until)
    }

    /// ls: what one server or cluster holds, of the kinds and names `patterns` asks for.
    static func inventory(of server: InventoryServer, patterns: InventoryPatterns, kafka: KafkaSettings) throws -> Inventory {
        switch server {
        case .redis(let address):
            return .redis(try RedisInventoryReader.read(server: address, patterns: patterns))
        case .kafka(let brokers):
            return .kafka(try KafkaInventoryReader.read(brokers: brokers, topicGlobs: patterns.topics, kafka: kafka))
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

    /// The topic's or the key's name.
    var name: String {
        switch self {
        case .kafka(_, let topic, _): return topic
        case .redis(_, _, let name): return name
        }
    }

    /// "topic", "stream", "list" or "channel", for messages.
    var kindName: String {
        switch self {
        case .kafka: return "topic"
        case .redis(_, let kind, _): return kind.rawValue
        }
    }

    /// `kafka` or `redis`: the `system` label of metrics.
    var systemName: String {
        switch self {
        case .kafka: return "kafka"
        case .redis: return "redis"
        }
    }
}
