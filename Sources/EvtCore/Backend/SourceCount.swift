/// `evt count`: how many records a topic, stream or list holds (or a range of it holds).
struct SourceCount {
    /// "topic", "stream" or "list", and its name.
    let kind: String
    let name: String
    var count: Int64 = 0
    /// A topic's count per partition read (nil for a stream or a list).
    var partitions: [Int32: Int64]?
    /// False when the count comes from watermarks that may include offsets without a record
    /// (a compacted topic, or one whose compaction evt could not learn).
    var exact = true
}

/// The target of a count by reading (a POSITION, --until, --match, --key, --exact): counts the
/// records the copy loop hands over, per partition, and keeps none of them.
final class CountingTarget: RecordTarget {
    private(set) var total = 0
    private(set) var perPartition: [Int32: Int64] = [:]

    func write(_ record: Record, after cursor: SourceCursor) throws -> Bool {
        total += 1
        if record.origin == .kafka { perPartition[record.partition, default: 0] += 1 }
        return true
    }

    func reached(_ cursor: SourceCursor, batchEnded: Bool) throws {}
    func drain(at cursor: SourceCursor) throws {}
    var confirmed: SourcePosition? { nil }
    var delivered: Int { total }
    var keepsCheckpoint: Bool { false }
    var confirmsAsItGoes: Bool { true }
}
