/// How far a consumer group (or a queue's consumers) is behind its source: one model for
/// Kafka groups, stream groups and lists, which `evt lag` prints as JSON, a table or
/// Prometheus metrics (CONTRACT.md, "Lag"). Field names mean the same across systems.
struct LagReport {
    /// The source, as the record shape names it: `topic`, `stream` or `list`.
    var kind: String
    var name: String
    var group: String?
    /// Events the group has not consumed yet (a list: its length).
    var lag: Int64
    /// false when counting stopped at a bound (a stream whose own lag Redis does not know).
    var lagExact = true
    /// Age of the oldest event not consumed yet; nil when `lag` is 0 or the age is unknown.
    var lagMs: Int64?
    /// Kafka: one per partition.
    var partitions: [PartitionLag] = []
    /// Stream groups: delivered but unacknowledged entries.
    var pending: Int64?
    /// Age (from its id) of the oldest pending entry.
    var oldestPendingMs: Int64?
    /// Delivery count → entries, in increasing count, of the pending entries scanned.
    var deliveries: [(count: Int64, entries: Int64)]?
    /// false when the scan of pending entries stopped at its bound.
    var deliveriesExact = true
    var consumers: [ConsumerLag]?
    /// A list's `--processing` list: items taken but not handed over yet.
    var processing: (name: String, length: Int64)?
    /// This source was named with `--dead-letter`: its `lag` is the dead-letter depth.
    var deadLetter = false
    /// The group's position and the source's end as counts of events, for the trend of
    /// `--watch` and `--listen` (LagTrend): Kafka, the sums over the partitions of the
    /// committed offsets (the log start where nothing is committed) and of the log ends; a
    /// stream, the group's entries-read and the stream's entries-added (Redis 7.0 and
    /// later). nil where the source does not tell (a list, an older Redis).
    var position: Int64?
    var produced: Int64?
}

struct PartitionLag {
    var partition: Int32
    /// nil when the group committed nothing for this partition (lag then counts from log_start).
    var committed: Int64?
    var logStart: Int64
    var logEnd: Int64
    var lag: Int64
    /// Age of the record at the group's position; nil when lag is 0 or unknown.
    var lagMs: Int64?
}

struct ConsumerLag {
    var name: String
    var pending: Int64
    var idleMs: Int64
}

/// Reads the lag of one source's groups, once per `read()` (`--watch` calls it again).
protocol LagReader: AnyObject {
    func read() throws -> [LagReport]
}

/// What `evt lag` asks about one source.
struct LagQuery {
    /// The groups named with --group; empty: every group the server can list.
    var groups: [String] = []
    /// Several sources: each named group is shown only for the sources that have it (a
    /// stream's XINFO GROUPS lists it; a topic holds offsets it committed), and a list shows
    /// its length. With one source every named group is shown for it, or is an error.
    var groupsWhereFound = false
    /// A list: also show this processing list's length.
    var processing: String?
    var deadLetter = false
    var kafka = KafkaSettings()
    /// Bound of the scans evt makes itself (entries counted past a stream group's position,
    /// pending entries read for the delivery histogram).
    var scanLimit = 100_000
}
