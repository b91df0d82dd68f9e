/// `evt lag SOURCE... [--group G]...`: how far each group is behind, as NDJSON, a table or
/// Prometheus metrics, once or every `--watch`, with the trend of the last `--window` reads
/// (status and rates); exit 4 beyond `--max-lag`/`--max-lag-age` or in a `--fail-on` status.
public enum LagCommand {
    enum Format: String, CaseIterable { case json, table, prometheus }

    /// The time between the reads of the window when `--fail-on` is given without `--watch`.
    static let failOnSpacingMs = 5000

    public static func run(_ arguments: ParsedArguments, environment: [String: String]) throws -> ExitStatus {
        let spec = arguments.spec
        guard !arguments.operands.isEmpty else {
            throw EvtError.usage("lag needs a SOURCE, e.g. topic:orders --group billing or stream:orders.", usage: spec.usageLine)
        }
        let format = try arguments.format(Format.self, onATerminal: .table, otherwise: .json)
        let limits = LagLimits(
            maxLag: try arguments.number("max-lag", minimum: 0),
            maxAgeMs: try arguments.value("max-lag-age").map { try DurationParser.milliseconds($0, option: "--max-lag-age") })
        let watchMs = try arguments.value("watch").map { try DurationParser.milliseconds($0, option: "--watch") }
        if let watchMs, watchMs <= 0 {
            throw EvtError.usage("--watch needs a duration of more than 0, e.g. --watch 2s.", usage: spec.usageLine)
        }
        let window = try arguments.number("window", minimum: 2, what: "reads") ?? 5
        let statusLimits = try arguments.value("fail-on").map(LagStatusLimits.parse) ?? LagStatusLimits()
        let consumerLabels = arguments.flag("consumer-labels")
        var query = LagQuery()
        query.groups = arguments.values("group")
        query.groupsWhereFound = arguments.operands.count > 1 && !query.groups.isEmpty
        query.processing = arguments.value("processing")
        query.kafka = try arguments.kafkaSettings()
        var sources: [LagSource] = []
        let endpoints = try arguments.operands.map { try Endpoint.parse($0, environment: environment) }
        for endpoint in endpoints { sources.append(LagSource(endpoint, query)) }
        for text in arguments.values("dead-letter") {
            var deadLetter = LagQuery()
            deadLetter.deadLetter = true
            deadLetter.kafka = query.kafka
            sources.append(LagSource(try Endpoint.parse(text, environment: environment), deadLetter))
        }

        if let address = arguments.value("listen") {
            if arguments.value("format") != nil {
                throw EvtError.usage("--listen serves the Prometheus format at /metrics and prints nothing on stdout; leave out --format, or drop --listen to print.", usage: spec.usageLine)
            }
            var round = LagRound(sources: sources, query: query, endpoints: endpoints, limits: limits,
                                 statusLimits: statusLimits, window: window)
            // The address first: a wrong one is the usage error, before any source is tried.
            let listener = try MetricsListener(address: address, option: "--listen")
            defer { listener.close() }
            // Only a usage error stops evt before it serves: a server that cannot be read
            // now is evt_up 0 until it can.
            try round.openTolerant()
            serve(listener, &round, intervalMs: watchMs ?? 5000, consumerLabels: consumerLabels)
            if let stopped = Signals.exitStatusAfterSignal { return stopped }
            return round.beyond ? .lagExceeded : .success
        }

        for source in sources { try source.open() }
        var round = LagRound(sources: sources, query: query, endpoints: endpoints, limits: limits,
                             statusLimits: statusLimits, window: window)
        // --fail-on needs a full window: without --watch, evt reads it (a read every
        // failOnSpacingMs) and prints the last read.
        let windowOnly = watchMs == nil && !statusLimits.statuses.isEmpty
        let spacingMs = watchMs ?? (windowOnly ? Self.failOnSpacingMs : nil)
        let showTrend = watchMs != nil || windowOnly
        let output = OutputWriter()
        var reads = 0
        do {
            while true {
                try round.read()
                reads += 1
                if !windowOnly || reads == window {
                    if watchMs != nil && format == .table { output.buffer += Array("\u{1B}[H\u{1B}[2J".utf8) }
                    let trends = showTrend ? round.trends : nil
                    switch format {
                    case .json:
                        for (index, report) in round.reports.enumerated() {
                            LagOutput.appendJSON(report, trend: trends?[index], to: &output.buffer)
                        }
                    case .table: LagOutput.appendTable(round.reports, trends: trends, to: &output.buffer)
                    case .prometheus:
                        LagOutput.appendPrometheus(round.reports, trends: trends, consumerLabels: consumerLabels, to: &output.buffer)
                    }
                    try output.flush()
                }
                guard let spacingMs, !(windowOnly && reads == window) else { break }
                // Waits, but notices a stop signal and a closed stdout (| head) at once.
                let deadline = monotonicMilliseconds() + spacingMs
                while !Signals.stopRequested && monotonicMilliseconds() < deadline {
                    if stdoutReaderIsGone() { throw StdoutClosed() }
                    Signals.sleep(milliseconds: min(200, deadline - monotonicMilliseconds()))
                }
                if Signals.stopRequested { break }
            }
        } catch is StdoutClosed {
            return .success
        }
        if let stopped = Signals.exitStatusAfterSignal { return stopped }
        return round.beyond ? .lagExceeded : .success
    }
}

extension LagCommand {
    /// `--listen`: answers each scrape of /metrics, on this thread, until a stop signal. A
    /// scrape reads every source again when the last read is `intervalMs` old (a tenth
    /// early still counts, so that a scrape interval equal to --watch reads at every
    /// scrape); otherwise it gets the last read again. Nothing is read between scrapes but
    /// the first read, made at the start (scrapes wait for it in the listen queue): it
    /// names at once a source that cannot be read, and the first scrape does not pay for
    /// what later reads keep (a Kafka reader's record timestamps, up to 3 s a topic).
    static func serve(_ listener: MetricsListener, _ round: inout LagRound, intervalMs: Int,
                      consumerLabels: Bool) {
        var exposition: [UInt8] = []
        var readAtMs = 0
        func read() {
            readAtMs = monotonicMilliseconds()
            round.readTolerant()
            exposition = []
            LagOutput.appendPrometheus(round.reports, trends: round.trends, up: round.up,
                                       consumerLabels: consumerLabels, to: &exposition)
        }
        read()
        while !Signals.stopRequested {
            listener.serve(forMs: 1000) {
                if monotonicMilliseconds() - readAtMs >= intervalMs - intervalMs / 10 { read() }
                return exposition
            }
        }
    }
}

/// One SOURCE (or --dead-letter) of `evt lag`, and its reader once made.
final class LagSource {
    let endpoint: Endpoint
    let query: LagQuery
    private(set) var reader: LagReader?

    init(_ endpoint: Endpoint, _ query: LagQuery) {
        self.endpoint = endpoint
        self.query = query
    }

    /// Makes the reader, if it is not made yet.
    func open() throws {
        if reader == nil { reader = try Backends.lagReader(for: endpoint, query: query) }
    }

    func read() throws -> [LagReport] {
        try open()
        return try reader!.read()
    }
}

/// The last read of every source of `evt lag`, with the trends and what is beyond the limits.
struct LagRound {
    let sources: [LagSource]
    let query: LagQuery
    /// The SOURCE operands' endpoints (the first sources), for checkGroupsFound.
    let endpoints: [Endpoint]
    let limits: LagLimits
    let statusLimits: LagStatusLimits
    private(set) var trendsByGroup: LagTrends
    private(set) var reports: [LagReport] = []
    private(set) var trends: [LagTrend] = []
    /// Whether each source was read at the last read (--listen).
    private(set) var up: [LagOutput.SourceUp] = []
    /// The last read found a group beyond a limit.
    private(set) var beyond = false
    private var noted: Set<String> = []
    /// The sources that could not be read, with the reason named on stderr (--listen): it
    /// is named again only when it changes, or once the source can be read again.
    private var down: [Int: String] = [:]

    init(sources: [LagSource], query: LagQuery, endpoints: [Endpoint], limits: LagLimits,
         statusLimits: LagStatusLimits, window: Int) {
        self.sources = sources
        self.query = query
        self.endpoints = endpoints
        self.limits = limits
        self.statusLimits = statusLimits
        trendsByGroup = LagTrends(window: window)
    }

    /// Reads every source; the first failure ends it (--watch: exit 1).
    mutating func read() throws {
        let atMs = monotonicMilliseconds()
        let perSource = try sources.map { try $0.read() }
        try query.checkGroupsFound(sources: endpoints, reports: Array(perSource.prefix(endpoints.count)), noted: &noted)
        settle(perSource.map { .success($0) }, atMs: atMs)
    }

    /// Makes every source's reader: a usage error is thrown; a source that cannot be reached
    /// now is down until it can be read (--listen).
    mutating func openTolerant() throws {
        for (index, source) in sources.enumerated() {
            do { try source.open() } catch let error as EvtError where error.cause == .usage { throw error } catch {
                noteDown(index, error)
            }
        }
    }

    /// Reads every source; one that fails is down (evt_up 0, its series absent) and named on
    /// stderr once, until it answers again (--listen).
    mutating func readTolerant() {
        let atMs = monotonicMilliseconds()
        var perSource: [Result<[LagReport], Error>] = []
        for (index, source) in sources.enumerated() {
            do {
                perSource.append(.success(try source.read()))
                if down.removeValue(forKey: index) != nil { Diagnostics.print("\(source.endpoint.description) can be read again (evt_up 1).") }
            } catch {
                perSource.append(.failure(error))
                noteDown(index, error)
            }
        }
        let found = perSource.prefix(endpoints.count).map { (try? $0.get()) ?? [] }
        do { try query.checkGroupsFound(sources: endpoints, reports: found, noted: &noted) } catch {
            if noted.insert(Self.text(error)).inserted { Diagnostics.print(Self.text(error)) }
        }
        settle(perSource, atMs: atMs)
    }

    private mutating func noteDown(_ index: Int, _ error: Error) {
        let reason = Self.text(error)
        // A read cut short by the stop signal says nothing about the source.
        guard !Signals.stopRequested, down.updateValue(reason, forKey: index) != reason else { return }
        Diagnostics.print("evt_up 0 for \(sources[index].endpoint.description) until it can be read: \(reason)")
    }

    static func text(_ error: Error) -> String {
        (error as? EvtError)?.message ?? "\(error)"
    }

    private mutating func settle(_ perSource: [Result<[LagReport], Error>], atMs: Int) {
        reports = []
        trends = []
        up = []
        for (index, result) in perSource.enumerated() {
            up.append(LagOutput.SourceUp(sources[index].endpoint, up: (try? result.get()) != nil))
            guard let found = try? result.get() else {
                trendsByGroup.forget(source: index)
                continue
            }
            reports += found
            trends += trendsByGroup.record(source: index, found, atMs: atMs)
        }
        var breaches = reports.flatMap { limits.breaches(of: $0) }
        breaches += zip(reports, trends).compactMap { statusLimits.breach(of: $0, $1) }
        for reason in breaches { Diagnostics.print(reason) }
        beyond = !breaches.isEmpty
    }
}
