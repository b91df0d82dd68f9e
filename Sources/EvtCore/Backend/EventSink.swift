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
    /// The kind of JSON `key` holds when it came as JSON other than a string (an envelope's
    /// `"key":42`); nil when it is the text of a string.
    var keyKind: JSONKind?
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
    /// An envelope record's `value_schema_id`/`key_schema_id` (from `tail` of a topic whose
    /// values a registry's schema decoded): the JSON value (key) goes out encoded with it.
    var valueSchemaID: Int32?
    var keySchemaID: Int32?
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

/// What publish knows about the target beyond its address.
struct SinkOptions {
    var kafka = KafkaSettings()
    var timeoutMs = 30_000
    var headers: [(String, String)] = []
    /// `--maxlen N` or `--max-age DURATION`: how XADD trims a stream as it adds.
    var trimOnAdd: StreamTrimOnAdd?
    var requireSubscribers = false
    /// `--wait-replicas N`: an event counts as delivered once N replicas have it (WAIT).
    var waitReplicas: Int?
}

/// How publish trims a stream as it adds entries: to about N entries (XADD MAXLEN ~ N), or of
/// entries older than an age by evt's clock (XADD MINID ~ NOW-AGE).
enum StreamTrimOnAdd {
    case maxLength(Int)
    case maxAgeMs(Int)
}
