/// The backend adapter layer: every command talks to brokers only through these two
/// protocols, and `Backends` is the one place that knows which implementation serves which
/// endpoint. A new backend is new files plus a case here — no command changes.

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
}

/// Thrown by `EventSink.send` when it did not even try to send the event: the target
/// became unavailable, so reading further input would only queue more failures.
struct SinkStopped: Error {
    let reason: String
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

/// A source that events are read from.
protocol EventSource: AnyObject {
    /// Writes the last `count` events (oldest first) to `output`, then with `follow` every new
    /// one until stopped. Returns normally on a stop signal; throws StdoutClosed on `| head`.
    func tail(count: Int, follow: Bool, output: OutputWriter) throws
    /// Writes the events from `from` to `until` (inclusive; nil: the end as of the start),
    /// oldest first (per partition), then with `follow` every new one; at most `limit`.
    func read(from: Position, until: Position?, follow: Bool, limit: Int, output: OutputWriter) throws
}

/// Records received but not yet handed over: NDJSON in `writer.buffer` (never flushed by a
/// consumer), and where each record ends, so `--exec` can take them one by one.
final class RecordBatch {
    let writer = OutputWriter()
    private(set) var ends: [Int] = []

    var count: Int { ends.count }
    func recordEnded() { ends.append(writer.buffer.count) }
    func range(of index: Int) -> Range<Int> { (index == 0 ? 0 : ends[index - 1])..<ends[index] }
    func removeAll() {
        writer.buffer.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
    }
}

/// A source read with acknowledgements (`subscribe`, `claim-pending`): records are received
/// into a batch, handed over (stdout flushed, or `--exec` succeeded), and only then
/// acknowledged — a record that was not handed over stays pending / uncommitted.
protocol EventConsumer: AnyObject {
    /// Appends up to `limit` records to `batch`, waiting up to `waitMs` for the first (-1:
    /// until one comes, a stop signal, or a closed stdout — StdoutClosed). Returns how many
    /// arrived; 0 when none came in time or a stop was requested.
    func receive(limit: Int, waitMs: Int, into batch: RecordBatch) throws -> Int
    /// Acknowledges these records of the last `receive` (indexes in ascending order).
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
    var kafkaProperties: [(String, String)] = []
}

/// What publish knows about the target beyond its address.
struct SinkOptions {
    var kafkaProperties: [(String, String)] = []
    var timeoutMs = 30_000
    var headers: [(String, String)] = []
    var maxlen: Int?
    var requireSubscribers = false
}

struct SourceOptions {
    var kafkaProperties: [(String, String)] = []
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
        case .redis(let server, let kind, _):
            let names = endpoints.compactMap { endpoint -> String? in
                if case .redis(_, _, let name) = endpoint { return name } else { return nil }
            }
            return try RedisConsumer(server: server, kind: kind, names: names, options: options)
        case .kafka(let brokers, _, let partition):
            let topics = endpoints.compactMap { endpoint -> String? in
                if case .kafka(_, let topic, _) = endpoint { return topic } else { return nil }
            }
            return try KafkaConsumer(brokers: brokers, topics: topics, partition: partition, options: options)
        }
    }

    static func source(for endpoint: Endpoint, options: SourceOptions) throws -> EventSource {
        switch endpoint {
        case .redis(let server, let kind, let name):
            return try RedisTailSource(server: server, kind: kind, name: name)
        case .kafka(let brokers, let topic, let partition):
            return try KafkaTailSource(brokers: brokers, topic: topic, partition: partition, options: options)
        }
    }
}
