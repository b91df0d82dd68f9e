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
    /// True when every record of the last `receive` had been delivered before: re-read from a
    /// stream group's pending list, taken back from a list's processing list (metrics count
    /// them as redeliveries). A receive never mixes the two kinds.
    var redelivered: Bool { get }
}

extension EventConsumer {
    var redelivered: Bool { false }
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
