/// Lag over time (CONTRACT.md, "Metrics"): from the last `--window N` reads of one group,
/// how fast it consumes, how fast its source grows, how long it needs to catch up, and a
/// status that alerts can use (after Burrow's evaluation of a window of offsets). Pure: the
/// reads come in with their monotonic time; `evt lag --watch` and `--listen` feed it.
enum LagStatus: String, CaseIterable {
    case ok
    /// The lag grew from each read to the next while the position moved.
    case fallingBehind = "falling_behind"
    /// The position did not move during the whole window while the lag was above 0.
    case stalled
}

/// One read of one group, as the trend needs it.
struct LagSample: Equatable {
    /// monotonicMilliseconds() when it was read.
    var atMs: Int
    var lag: Int64
    /// LagReport.position and .produced; nil where the source does not tell (a list).
    var position: Int64?
    var produced: Int64?
}

/// What the window says; every field nil until the window is full (and for a source whose
/// position is not known, such as a list).
struct LagTrend: Equatable {
    var status: LagStatus?
    /// Events per second the group consumed over the window.
    var consumeRate: Double?
    /// Events per second the source gained over the window.
    var produceRate: Double?
    /// The lag divided by the rate at which it shrinks; nil while it does not shrink.
    var catchUpSeconds: Double?

    static let unknown = LagTrend()
}

/// The last `capacity` reads of one group, oldest first.
struct LagWindow {
    let capacity: Int
    private(set) var samples: [LagSample] = []

    init(capacity: Int) {
        precondition(capacity >= 2, "a trend needs two reads at least")
        self.capacity = capacity
    }

    mutating func add(_ sample: LagSample) {
        samples.append(sample)
        if samples.count > capacity { samples.removeFirst(samples.count - capacity) }
    }

    var trend: LagTrend {
        guard samples.count == capacity, let first = samples.first, let last = samples.last,
              last.atMs > first.atMs else { return .unknown }
        let positions = samples.compactMap(\.position), produced = samples.compactMap(\.produced)
        guard positions.count == capacity, produced.count == capacity else { return .unknown }
        let seconds = Double(last.atMs - first.atMs) / 1000
        // Only forward moves count: a group moved back (group-create --reset) or a Kafka
        // partition whose log start passed an uncommitted position does not consume less
        // than nothing. The produced end never goes back, except for a topic made again.
        let consumed = Self.forward(positions), added = Self.forward(produced)
        var trend = LagTrend()
        trend.consumeRate = Double(consumed) / seconds
        trend.produceRate = Double(added) / seconds
        let shrinking = trend.consumeRate! - trend.produceRate!
        if shrinking > 0 && last.lag > 0 { trend.catchUpSeconds = Double(last.lag) / shrinking }
        let moved = zip(positions, positions.dropFirst()).contains { $0 != $1 }
        if !moved && samples.allSatisfy({ $0.lag > 0 }) {
            trend.status = .stalled
        } else if moved && zip(samples, samples.dropFirst()).allSatisfy({ $1.lag > $0.lag }) {
            trend.status = .fallingBehind
        } else {
            trend.status = .ok
        }
        return trend
    }

    private static func forward(_ values: [Int64]) -> Int64 {
        zip(values, values.dropFirst()).reduce(0) { $0 + max(0, $1.1 - $1.0) }
    }
}

/// The windows of every group `evt lag` watches, keyed by the source (its place among the
/// sources evt reads) and the group. A group that a read no longer shows loses its window;
/// so does every group of a source that could not be read (after an outage the window fills
/// again, rather than spanning the gap).
struct LagTrends {
    struct Key: Hashable {
        var source: Int
        var kind: String
        var name: String
        var group: String?
    }

    let window: Int
    private var windows: [Key: LagWindow] = [:]

    init(window: Int) { self.window = window }

    /// Adds one read of source `source` (its reports, read at `atMs`) and gives each report's
    /// trend, in their order.
    mutating func record(source: Int, _ reports: [LagReport], atMs: Int) -> [LagTrend] {
        var seen: Set<Key> = []
        let trends = reports.map { report -> LagTrend in
            let key = Key(source: source, kind: report.kind, name: report.name, group: report.group)
            seen.insert(key)
            var window = windows[key] ?? LagWindow(capacity: window)
            window.add(LagSample(atMs: atMs, lag: report.lag, position: report.position, produced: report.produced))
            windows[key] = window
            return window.trend
        }
        windows = windows.filter { $0.key.source != source || seen.contains($0.key) }
        return trends
    }

    /// Source `source` could not be read: its windows start again.
    mutating func forget(source: Int) {
        windows = windows.filter { $0.key.source != source }
    }
}

/// `--fail-on STATUS[,STATUS]`: a group in one of these statuses makes `evt lag` exit 4.
struct LagStatusLimits {
    var statuses: Set<LagStatus> = []

    /// "stalled,falling_behind" → the statuses; a usage error names the ones it knows.
    static func parse(_ text: String) throws -> LagStatusLimits {
        var limits = LagStatusLimits()
        for word in text.split(separator: ",", omittingEmptySubsequences: false) {
            let name = String(word.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
            guard let status = LagStatus(rawValue: name) else {
                let known = LagStatus.allCases.map(\.rawValue).joined(separator: ", ")
                throw EvtError.usage("--fail-on takes statuses separated by commas (\(known)), e.g. --fail-on stalled,falling_behind; \(name.isEmpty ? "an empty one" : "'\(name)'") is not one.")
            }
            limits.statuses.insert(status)
        }
        return limits
    }

    /// The sentence for a group whose status is one of the limits; nil otherwise.
    func breach(of report: LagReport, _ trend: LagTrend) -> String? {
        guard let status = trend.status, statuses.contains(status) else { return nil }
        let rates = [trend.consumeRate.map { "consuming \(LagTrend.rate($0))/s" },
                     trend.produceRate.map { "produced \(LagTrend.rate($0))/s" }].compactMap { $0 }
        return "\(report.subject) is \(status.rawValue) (--fail-on): lag \(report.lag) events, \(rates.joined(separator: ", "))."
    }
}

extension LagTrend {
    /// A rate or a time for output: at most 3 decimals, no exponent, no trailing zeros
    /// (`12.5`, `0.333`, `40`).
    static func rate(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let thousandths = (value * 1000).rounded()
        guard abs(thousandths) < 9e15 else { return String(Int64(value.rounded())) }
        let whole = Int64(thousandths) / 1000, rest = abs(Int64(thousandths) % 1000)
        let sign = thousandths < 0 && whole == 0 ? "-" : ""
        guard rest > 0 else { return sign + String(whole) }
        var fraction = String(String(rest + 1000).dropFirst())
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(sign)\(whole).\(fraction)"
    }
}
