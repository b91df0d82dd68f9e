#if canImport(Glibc)
import Glibc
#endif

/// `evt lag SOURCE... [--group G]...`: how far each group is behind, as NDJSON, a table or
/// Prometheus metrics, once or every `--watch`; exit 4 beyond `--max-lag`/`--max-lag-age`.
public enum LagCommand {
    enum Format: String { case json, table, prometheus }

    public static func run(_ arguments: ParsedArguments, environment: [String: String]) throws -> ExitStatus {
        let spec = arguments.spec
        guard !arguments.operands.isEmpty else {
            throw EvtError.usage("lag needs a SOURCE, e.g. topic:orders --group billing or stream:orders.", usage: spec.usageLine)
        }
        let format: Format
        if let text = arguments.value("format") {
            guard let chosen = Format(rawValue: text) else {
                throw EvtError.usage("--format takes json, table or prometheus, not \(text).", usage: spec.usageLine)
            }
            format = chosen
        } else {
            format = isatty(1) == 1 ? .table : .json
        }
        let maxLag = try arguments.number("max-lag", minimum: 0)
        let maxAgeMs = try arguments.value("max-lag-age").map { try DurationParser.milliseconds($0, option: "--max-lag-age") }
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
                if query.groupsWhereFound {
                    try checkGroupsFound(query.groups, sources: sources, reports: perReader, noted: &noted)
                }
                let reports = perReader.flatMap { $0 }
                beyond = false
                for report in reports where !report.deadLetter {
                    if let maxLag, report.lag > Int64(maxLag) {
                        beyond = true
                        Diagnostics.print("\(LagFormat.describe(report)) is beyond --max-lag \(maxLag): \(report.lag) events to consume.")
                    }
                    if let maxAgeMs, let age = report.lagMs, age > Int64(maxAgeMs) {
                        beyond = true
                        Diagnostics.print("\(LagFormat.describe(report)) is beyond --max-lag-age: its oldest unconsumed event is \(LagFormat.age(age)) old.")
                    }
                }
                if watchMs != nil && format == .table { output.buffer += Array("\u{1B}[H\u{1B}[2J".utf8) }
                switch format {
                case .json: for report in reports { LagFormat.appendJSON(report, to: &output.buffer) }
                case .table: LagFormat.appendTable(reports, to: &output.buffer)
                case .prometheus: LagFormat.appendPrometheus(reports, to: &output.buffer)
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

    /// Several sources with --group: a group that none of them has is an error; a stream or
    /// topic without one of the groups is named on stderr, once (a list has no groups).
    static func checkGroupsFound(_ groups: [String], sources: [Endpoint], reports: [[LagReport]],
                                 noted: inout Set<String>) throws {
        for group in groups where !reports.contains(where: { $0.contains { $0.group == group } }) {
            throw EvtError(.refused(code: "NOGROUP"), "none of the sources has group \(group): a stream has it when XINFO GROUPS lists it, a topic when the group committed offsets on it. Check the name, or create it with evt group-create SOURCE \(SandboxCommand.shellQuoted(group)).")
        }
        for (source, found) in zip(sources, reports) {
            if case .redis(_, .list, _) = source { continue }
            let missing = groups.filter { group in !found.contains { $0.group == group } }
            guard !missing.isEmpty, noted.insert("\(source.description) \(missing)").inserted else { continue }
            Diagnostics.print("\(source.description) has no group \(missing.joined(separator: " or ")); each group is shown for the sources that have it.")
        }
    }

}

/// The three shapes of `evt lag`'s output.
enum LagFormat {
    // MARK: NDJSON (CONTRACT.md, "Lag")

    static func appendJSON(_ report: LagReport, to out: inout [UInt8]) {
        var object = JSONObjectBuilder()
        object.string(report.kind, report.name)
        if let group = report.group { object.string("group", group) }
        if report.deadLetter { object.raw("dead_letter", "true") }
        object.number("lag", report.lag)
        if !report.lagExact { object.raw("lag_exact", "false") }
        object.number("lag_ms", report.lagMs)
        if !report.partitions.isEmpty {
            object.array("partitions", report.partitions.map { partition in
                var item = JSONObjectBuilder()
                item.number("partition", Int64(partition.partition))
                item.number("committed", partition.committed)
                item.number("log_start", partition.logStart)
                item.number("log_end", partition.logEnd)
                item.number("lag", partition.lag)
                item.number("lag_ms", partition.lagMs)
                return item
            })
        }
        if let pending = report.pending {
            object.number("pending", pending)
            object.number("oldest_pending_ms", report.oldestPendingMs)
        }
        if let deliveries = report.deliveries {
            var histogram = JSONObjectBuilder()
            for (count, entries) in deliveries { histogram.number(String(count), entries) }
            object.object("deliveries", histogram)
            if !report.deliveriesExact { object.raw("deliveries_exact", "false") }
        }
        if let consumers = report.consumers {
            object.array("consumers", consumers.map { consumer in
                var item = JSONObjectBuilder()
                item.string("name", consumer.name)
                item.number("pending", consumer.pending)
                item.number("idle_ms", consumer.idleMs)
                return item
            })
        }
        if let processing = report.processing {
            var item = JSONObjectBuilder()
            item.string("list", processing.name)
            item.number("length", processing.length)
            object.object("processing", item)
        }
        out += object.closed
        out.append(UInt8(ascii: "\n"))
    }

    // MARK: table, for a terminal (after kafka-consumer-groups.sh --describe)

    static func appendTable(_ reports: [LagReport], to out: inout [UInt8]) {
        var rows: [[String]] = [["GROUP", "SOURCE", "PARTITION", "COMMITTED", "LOG-END", "LAG", "AGE", "PENDING"]]
        for report in reports {
            let group = report.group ?? (report.deadLetter ? "(dead letters)" : "-")
            let source = "\(report.kind):\(report.name)"
            let lag = report.lagExact ? String(report.lag) : ">\(report.lag)"
            if report.partitions.isEmpty {
                var pending = report.pending.map(String.init) ?? "-"
                if let processing = report.processing { pending = "\(processing.length) (\(processing.name))" }
                rows.append([group, source, "-", "-", "-", lag, report.lagMs.map(age) ?? "-", pending])
                continue
            }
            for partition in report.partitions {
                rows.append([group, source, String(partition.partition), partition.committed.map(String.init) ?? "-",
                             String(partition.logEnd), String(partition.lag), partition.lagMs.map(age) ?? "-", "-"])
            }
            rows.append([group, source, "total", "", "", lag, report.lagMs.map(age) ?? "-", "-"])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            var line = ""
            for (column, cell) in row.enumerated() {
                // Text columns to the left, numbers to the right.
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                line += column < 2 ? cell + padding : padding + cell
                if column < row.count - 1 { line += "  " }
            }
            out += Array(line.utf8)
            out.append(UInt8(ascii: "\n"))
        }
    }

    /// `group billing of topic orders`, for messages.
    static func describe(_ report: LagReport) -> String {
        (report.group.map { "group \($0) of " } ?? "") + "\(report.kind) \(report.name)"
    }

    /// `lag 1200 events, oldest 3.4s old`, for the --stats lines of long-running commands.
    static func summary(_ report: LagReport) -> String {
        var text = "lag \(report.lagExact ? "" : "over ")\(report.lag) event\(report.lag == 1 ? "" : "s")"
        if let oldest = report.lagMs { text += ", the oldest \(age(oldest)) old" }
        if let pending = report.pending { text += ", \(pending) pending" }
        return text
    }

    /// `950ms`, `5.4s`, `2m03s`, `3h07m`, `2d04h`.
    static func age(_ milliseconds: Int64) -> String {
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        let seconds = milliseconds / 1000
        if seconds < 60 { return seconds < 10 ? "\(seconds).\(milliseconds % 1000 / 100)s" : "\(seconds)s" }
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : String(value) }
        if seconds < 3600 { return "\(seconds / 60)m\(two(seconds % 60))s" }
        if seconds < 86_400 { return "\(seconds / 3600)h\(two(seconds % 3600 / 60))m" }
        return "\(seconds / 86_400)d\(two(seconds % 86_400 / 3600))h"
    }

    // MARK: Prometheus text exposition format (for a scrape or node_exporter's textfile collector)

    static func appendPrometheus(_ reports: [LagReport], to out: inout [UInt8]) {
        var families: [(name: String, help: String, samples: [String])] = [
            ("evt_lag_events", "Events a consumer group has not consumed yet (a list: its length).", []),
            ("evt_lag_seconds", "Age of the oldest event a consumer group has not consumed yet.", []),
            ("evt_pending_events", "Entries a stream group delivered but did not acknowledge.", []),
            ("evt_oldest_pending_seconds", "Age of a stream group's oldest unacknowledged entry.", []),
            ("evt_pending_deliveries", "Unacknowledged entries of a stream group by their delivery count.", []),
            ("evt_consumer_pending_events", "Unacknowledged entries of one consumer of a stream group.", []),
            ("evt_consumer_idle_seconds", "Time since one consumer of a stream group last read.", []),
            ("evt_dead_letter_events", "Events in a dead-letter stream, list or topic.", []),
        ]
        func add(_ family: Int, _ labels: [(String, String)], _ value: String) {
            let text = labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",")
            families[family].samples.append("\(families[family].name){\(text)} \(value)")
        }
        func seconds(_ milliseconds: Int64) -> String {
            let whole = milliseconds / 1000, rest = milliseconds % 1000
            return "\(whole)." + String(String(rest + 1000).dropFirst())
        }
        for report in reports {
            var labels = [("system", report.kind == "topic" ? "kafka" : "redis"), ("kind", report.kind), ("source", report.name)]
            if report.deadLetter {
                add(7, labels, String(report.lag))
                continue
            }
            if let group = report.group { labels.append(("group", group)) }
            if report.partitions.isEmpty {
                add(0, labels, String(report.lag))
                if let age = report.lagMs { add(1, labels, seconds(age)) }
            }
            for partition in report.partitions {
                let withPartition = labels + [("partition", String(partition.partition))]
                add(0, withPartition, String(partition.lag))
                if let age = partition.lagMs { add(1, withPartition, seconds(age)) }
            }
            if let pending = report.pending { add(2, labels, String(pending)) }
            if let age = report.oldestPendingMs { add(3, labels, seconds(age)) }
            for (count, entries) in report.deliveries ?? [] { add(4, labels + [("deliveries", String(count))], String(entries)) }
            for consumer in report.consumers ?? [] {
                add(5, labels + [("consumer", consumer.name)], String(consumer.pending))
                add(6, labels + [("consumer", consumer.name)], seconds(consumer.idleMs))
            }
            if let processing = report.processing {
                add(0, [("system", "redis"), ("kind", "list"), ("source", processing.name)], String(processing.length))
            }
        }
        for family in families where !family.samples.isEmpty {
            out += Array("# HELP \(family.name) \(family.help)\n# TYPE \(family.name) gauge\n".utf8)
            for sample in family.samples { out += Array(sample.utf8); out.append(UInt8(ascii: "\n")) }
        }
    }

    /// Label values escape backslash, double quote and newline (the exposition format's rule).
    static func escapeLabel(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
