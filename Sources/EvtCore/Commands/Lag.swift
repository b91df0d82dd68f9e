/// `evt lag SOURCE... [--group G]...`: how far each group is behind, as NDJSON, a table or
/// Prometheus metrics, once or every `--watch`; exit 4 beyond `--max-lag`/`--max-lag-age`.
public enum LagCommand {
    enum Format: String, CaseIterable { case json, table, prometheus }

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
        var query = LagQuery()
        query.groups = arguments.values("group")
        query.groupsWhereFound = arguments.operands.count > 1 && !query.groups.isEmpty
        query.processing = arguments.value("processing")
        query.kafka = try arguments.kafkaSettings()
        var readers: [LagReader] = []
        let sources = try arguments.operands.map { try Endpoint.parse($0, environment: environment) }
        for source in sources {
            readers.append(try Backends.lagReader(for: source, query: query))
        }
        var noted: Set<String> = []
        for text in arguments.values("dead-letter") {
            var deadLetter = LagQuery()
            deadLetter.deadLetter = true
            deadLetter.kafka = query.kafka
            readers.append(try Backends.lagReader(for: try Endpoint.parse(text, environment: environment), query: deadLetter))
        }

        let output = OutputWriter()
        var beyond = false
        do {
            while true {
                let perReader = try readers.map { try $0.read() }
                try query.checkGroupsFound(sources: sources, reports: perReader, noted: &noted)
                let reports = perReader.flatMap { $0 }
                let breaches = reports.flatMap { limits.breaches(of: $0) }
                for reason in breaches { Diagnostics.print(reason) }
                beyond = !breaches.isEmpty
                if watchMs != nil && format == .table { output.buffer += Array("\u{1B}[H\u{1B}[2J".utf8) }
                switch format {
                case .json: for report in reports { LagOutput.appendJSON(report, to: &output.buffer) }
                case .table: LagOutput.appendTable(reports, to: &output.buffer)
                case .prometheus: LagOutput.appendPrometheus(reports, to: &output.buffer)
                }
                try output.flush()
                guard let watchMs else { break }
                // Waits, but notices a stop signal and a closed stdout (| head) at once.
                let deadline = monotonicMilliseconds() + watchMs
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
        return beyond ? .lagExceeded : .success
    }
}
