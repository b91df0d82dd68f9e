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

    static func source(for endpoint: Endpoint, options: SourceOptions) throws -> EventSource {
        switch endpoint {
        case .redis(let server, let kind, let name):
            return try RedisTailSource(server: server, kind: kind, name: name)
        case .kafka(let brokers, let topic, let partition):
            return try KafkaTailSource(brokers: brokers, topic: topic, partition: partition, options: options)
        }
    }
}
