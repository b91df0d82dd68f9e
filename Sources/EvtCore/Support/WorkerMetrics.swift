import Synchronization

/// Durations in seconds over fixed, log-spaced buckets (1 ms … 60 s, then +Inf), as a
/// Prometheus histogram counts them: an observation goes into the first bucket whose upper
/// bound it does not exceed. A value type with its counts inline: observing allocates
/// nothing, and copying it (a snapshot) copies about 150 bytes.
struct LatencyHistogram: Sendable, Equatable {
    /// The upper bounds of the finite buckets, in seconds; one more bucket (+Inf) takes the rest.
    static let bounds: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
    /// The bounds as the exposition writes them (`le="0.0025"`), then `+Inf`.
    static let boundTexts = ["0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                             "1", "2.5", "5", "10", "30", "60", "+Inf"]

    /// Per bucket, not cumulative: the finite ones in order, then +Inf.
    private(set) var counts = InlineArray<16, UInt64>(repeating: 0)
    private(set) var sum: Double = 0
    private(set) var count: UInt64 = 0

    mutating func observe(seconds: Double) {
        counts[Self.bucket(of: seconds)] &+= 1
        sum += seconds
        count &+= 1
    }

    /// The index of the bucket `seconds` goes into: `bounds` as literals, searched in halves
    /// (it runs once or twice per event: no array, no reference count to touch). NaN goes
    /// into +Inf.
    @inline(__always)
    static func bucket(of seconds: Double) -> Int {
        if seconds <= 0.1 {
            if seconds <= 0.005 { return seconds <= 0.001 ? 0 : seconds <= 0.0025 ? 1 : 2 }
            return seconds <= 0.01 ? 3 : seconds <= 0.025 ? 4 : seconds <= 0.05 ? 5 : 6
        }
        if seconds <= 2.5 { return seconds <= 0.25 ? 7 : seconds <= 0.5 ? 8 : seconds <= 1 ? 9 : 10 }
        return seconds <= 5 ? 11 : seconds <= 10 ? 12 : seconds <= 30 ? 13 : seconds <= 60 ? 14 : 15
    }

    static func == (a: LatencyHistogram, b: LatencyHistogram) -> Bool {
        guard a.count == b.count, a.sum == b.sum else { return false }
        for index in a.counts.indices where a.counts[index] != b.counts[index] { return false }
        return true
    }

    /// Observations at or below bucket `index`'s upper bound (the exposition's `_bucket`).
    func cumulative(upTo index: Int) -> UInt64 {
        var total: UInt64 = 0
        for bucket in 0...index { total &+= counts[bucket] }
        return total
    }

    /// The `q`-quantile (0…1) estimated from the buckets as Prometheus' histogram_quantile
    /// does: the bucket that holds the rank, interpolated linearly within it (the first
    /// bucket starts at 0); a rank in the +Inf bucket answers the highest finite bound. nil
    /// without observations.
    func quantile(_ q: Double) -> Double? {
        guard count > 0, q >= 0, q <= 1 else { return nil }
        var rank = q * Double(count)
        var below: UInt64 = 0
        for index in 0..<Self.bounds.count {
            let through = below + counts[index]
            if Double(through) >= rank {
                let start = index == 0 ? 0 : Self.bounds[index - 1]
                let inBucket = Double(counts[index])
                rank -= Double(below)
                return inBucket == 0 ? start : start + (Self.bounds[index] - start) * (rank / inBucket)
            }
            below = through
        }
        return Self.bounds[Self.bounds.count - 1]
    }
}

/// A worker's own figures (`subscribe`, `copy-between -f`): plain counters and histograms
/// that the consuming loop owns and adds to without any lock; it hands a copy to
/// WorkerMetrics.publish once per batch or acknowledgement.
struct WorkerFigures: Sendable, Equatable {
    /// Handed over (printed and flushed, or --exec exited 0) and acknowledged where the source
    /// keeps acknowledgements; a copy's: acknowledged by the target.
    var acked: UInt64 = 0
    /// --exec exited non-zero: not acknowledged.
    var failed: UInt64 = 0
    /// Sent to a dead-letter destination (neither subscribe nor copy-between dead-letters).
    var deadLettered: UInt64 = 0
    /// Left out by --match.
    var filtered: UInt64 = 0
    /// Delivered more than once: a stream group's entries re-read from the pending list, a
    /// list's items taken back from the --processing list.
    var redeliveries: UInt64 = 0
    /// A copy's batches read from the source and handed to the target.
    var batches: UInt64 = 0
    /// --exec's run time per event.
    var processing = LatencyHistogram()
    /// From the event's time (a Kafka record's timestamp, a stream id's ms) to its
    /// acknowledgement.
    var endToEnd = LatencyHistogram()
    /// A copy with a checkpoint: when (ms since the epoch) the checkpoint was last brought up
    /// to date with what the target confirmed.
    var checkpointUpdatedAtMs: Int64?
}

/// The worker figures the metrics listener reads: the last snapshot the consuming loop
/// published, under a lock taken once per batch by the loop and once per scrape by the
/// listener's thread, never per event.
final class WorkerMetrics: Sendable {
    /// `subscribe` or `copy-between`: which families the exposition has.
    enum Worker: Sendable { case subscribe(exec: Bool), copy(checkpoint: Bool) }

    let worker: Worker
    /// The labels of every sample: system, kind, source and group (subscribe), or system,
    /// kind, source and target (copy); bounded, one set per process.
    let labels: [(name: String, value: String)]
    private let published = Mutex(WorkerFigures())

    init(worker: Worker, labels: [(name: String, value: String)]) {
        self.worker = worker
        self.labels = labels
    }

    func publish(_ figures: WorkerFigures) {
        published.withLock { $0 = figures }
    }

    var snapshot: WorkerFigures { published.withLock { $0 } }
}

/// The observations of one batch that need the time of its acknowledgement: each event's
/// time (ms since the epoch; 0 for none) kept from its receipt by index, in storage
/// reused from batch to batch.
struct EventTimes {
    private var milliseconds: [Int64] = []

    init(capacity: Int) { milliseconds.reserveCapacity(capacity) }

    mutating func removeAll() { milliseconds.removeAll(keepingCapacity: true) }

    /// The time of the next event received: a Kafka record's timestamp, a stream entry id's
    /// ms part; 0 (not observed) for a list item or a channel message.
    mutating func append(_ record: Record) {
        var time: Int64 = 0
        switch record.origin {
        case .kafka: time = record.timestamp ?? 0
        case .stream: time = Self.milliseconds(ofID: record.id)
        case .list, .channel: break
        }
        milliseconds.append(time)
    }

    var count: Int { milliseconds.count }

    /// The `MS` of a stream id `MS-SEQ`; 0 when it is not one.
    /// Ids of this era have 13 digits before the dash (2001 to 2286): those are read eight
    /// bytes at a time: reading them byte by byte was 208 of the 332 instructions an event
    /// that `--metrics` added to subscribe's ~6 000; now it adds 153 (callgrind, subscribe of
    /// 100 k stream entries).
    static func milliseconds(ofID id: UnsafeRawBufferPointer) -> Int64 {
        if id.count >= 14 && id[13] == UInt8(ascii: "-") {
            // Digits 0-7, and 5-12 (overlapping, so that both loads stay inside the id).
            let first = UInt64(littleEndian: id.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
            let last = UInt64(littleEndian: id.loadUnaligned(fromByteOffset: 5, as: UInt64.self))
            guard isEightDigits(first), isEightDigits(last) else { return 0 }
            return Int64(eightDigits(first) * 100_000 + eightDigits(last) % 100_000)
        }
        var value: Int64 = 0
        for byte in id {
            if byte == UInt8(ascii: "-") { return value }
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10, value < Int64.max / 10 - 1 else { return 0 }
            value = value * 10 + Int64(digit)
        }
        return 0
    }

    /// Observes the end-to-end time of event `index`, acknowledged at `nowMs`.
    func observe(_ index: Int, acknowledgedAt nowMs: Int64, into histogram: inout LatencyHistogram) {
        guard index < milliseconds.count else { return }
        let time = milliseconds[index]
        guard time > 0 else { return }
        histogram.observe(seconds: Double(max(0, nowMs - time)) / 1000)
    }

    /// Whether the 8 bytes of `word` (the first in its low byte) are all ASCII digits.
    @inline(__always)
    static func isEightDigits(_ word: UInt64) -> Bool {
        (word & 0xF0F0_F0F0_F0F0_F0F0) | (((word &+ 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4) == 0x3333_3333_3333_3333
    }

    /// The number the 8 ASCII digits of `word` spell, the first in its low byte: pairs, then
    /// fours, then all eight, each step one multiplication.
    @inline(__always)
    static func eightDigits(_ word: UInt64) -> UInt64 {
        var value = ((word & 0x0F0F_0F0F_0F0F_0F0F) &* 2561) >> 8
        value = ((value & 0x00FF_00FF_00FF_00FF) &* 6_553_601) >> 16
        return ((value & 0x0000_FFFF_0000_FFFF) &* 42_949_672_960_001) >> 32
    }

    /// Observes the first `count` events and drops them (a copy's target confirmed them).
    mutating func observeFirst(_ count: Int, acknowledgedAt nowMs: Int64, into histogram: inout LatencyHistogram) {
        let count = min(count, milliseconds.count)
        guard count > 0 else { return }
        for index in 0..<count { observe(index, acknowledgedAt: nowMs, into: &histogram) }
        milliseconds.removeFirst(count)
    }
}
