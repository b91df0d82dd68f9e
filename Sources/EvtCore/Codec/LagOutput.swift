/// The three shapes of `evt lag`'s output: NDJSON, a table for a terminal, Prometheus metrics.
enum LagOutput {
    // MARK: NDJSON (CONTRACT.md, "Lag")

    /// `trend`: under `--watch`, the group's status and rates (null until the window is full);
    /// nil for a single read, whose objects stay as they were.
    static func appendJSON(_ report: LagReport, trend: LagTrend? = nil, to out: inout [UInt8]) {
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
        if let trend, !report.deadLetter {
            object.raw("status", trend.status.map { "\"\($0.rawValue)\"" } ?? "null")
            object.raw("consume_rate", trend.consumeRate.map(LagTrend.rate) ?? "null")
            object.raw("produce_rate", trend.produceRate.map(LagTrend.rate) ?? "null")
        }
        out += object.closed
        out.append(UInt8(ascii: "\n"))
    }

    // MARK: table, for a terminal (after kafka-consumer-groups.sh --describe)

    /// `trends` (under `--watch`, one per report) add the columns STATUS, CONSUMED/S and
    /// PRODUCED/S, filled on the group's row (a Kafka group's total row); `-` until known.
    static func appendTable(_ reports: [LagReport], trends: [LagTrend]? = nil, to out: inout [UInt8]) {
        var rows: [[String]] = [["GROUP", "SOURCE", "PARTITION", "COMMITTED", "LOG-END", "LAG", "AGE", "PENDING"]]
        if trends != nil { rows[0] += ["STATUS", "CONSUMED/S", "PRODUCED/S"] }
        func trendCells(_ index: Int?) -> [String] {
            guard let trends else { return [] }
            guard let index, !reports[index].deadLetter else { return ["-", "-", "-"] }
            let trend = trends[index]
            return [trend.status?.rawValue ?? "-", trend.consumeRate.map(LagTrend.rate) ?? "-",
                    trend.produceRate.map(LagTrend.rate) ?? "-"]
        }
        for (index, report) in reports.enumerated() {
            let group = report.group ?? (report.deadLetter ? "(dead letters)" : "-")
            let source = "\(report.kind):\(report.name)"
            let lag = report.lagExact ? String(report.lag) : ">\(report.lag)"
            if report.partitions.isEmpty {
                var pending = report.pending.map(String.init) ?? "-"
                if let processing = report.processing { pending = "\(processing.length) (\(processing.name))" }
                rows.append([group, source, "-", "-", "-", lag, report.lagMs.map(LagReport.readableAge) ?? "-", pending]
                            + trendCells(index))
                continue
            }
            for partition in report.partitions {
                rows.append([group, source, String(partition.partition), partition.committed.map(String.init) ?? "-",
                             String(partition.logEnd), String(partition.lag), partition.lagMs.map(LagReport.readableAge) ?? "-", "-"]
                            + (trends == nil ? [] : ["", "", ""]))
            }
            rows.append([group, source, "total", "", "", lag, report.lagMs.map(LagReport.readableAge) ?? "-", "-"]
                        + trendCells(index))
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            var line = ""
            for (column, cell) in row.enumerated() {
                // Text columns to the left, numbers to the right.
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                line += column < 2 || column == 8 ? cell + padding : padding + cell
                if column < row.count - 1 { line += "  " }
            }
            // Blank trend cells of a Kafka partition's row leave nothing at the end of it.
            while line.last == " " { line.removeLast() }
            out += Array(line.utf8)
            out.append(UInt8(ascii: "\n"))
        }
    }

    // MARK: Prometheus text exposition format (for a scrape or node_exporter's textfile collector)

    /// Whether the source `source` (system, kind, name) could be read: `evt_up`, for `--listen`.
    struct SourceUp {
        var system: String
        var kind: String
        var name: String
        var up: Bool

        init(_ endpoint: Endpoint, up: Bool) {
            switch endpoint {
            case .redis(_, let kind, let name): (system, self.kind, self.name) = ("redis", kind.rawValue, name)
            case .kafka(_, let topic, _): (system, kind, name) = ("kafka", "topic", topic)
            }
            self.up = up
        }
    }

    /// `trends`: one per report, under `--watch` and `--listen` (rates and status where the
    /// window is full). `up`: every source evt reads, for `--listen`. `consumerLabels`: the
    /// series per consumer of a stream group (a label per consumer is unbounded: only on request).
    static func appendPrometheus(_ reports: [LagReport], trends: [LagTrend]? = nil, up: [SourceUp] = [],
                                 consumerLabels: Bool = false, to out: inout [UInt8]) {
        var families: [(name: String, help: String, samples: [String])] = [
            ("evt_lag_events", "Events a consumer group has not consumed yet (a list: its length).", []),
            ("evt_lag_seconds", "Age of the oldest event a consumer group has not consumed yet.", []),
            ("evt_pending_events", "Entries a stream group delivered but did not acknowledge.", []),
            ("evt_oldest_pending_seconds", "Age of a stream group's oldest unacknowledged entry.", []),
            ("evt_pending_deliveries", "Unacknowledged entries of a stream group by their delivery count.", []),
            ("evt_consumer_pending_events", "Unacknowledged entries of one consumer of a stream group.", []),
            ("evt_consumer_idle_seconds", "Time since one consumer of a stream group last read.", []),
            ("evt_dead_letter_events", "Events in a dead-letter stream, list or topic.", []),
            ("evt_consume_rate", "Events per second a consumer group consumed over the last --window reads.", []),
            ("evt_produce_rate", "Events per second added to the group's source over the last --window reads.", []),
            ("evt_lag_status", "1 for the group's status over the last --window reads: ok, falling_behind (lag grows at every read while the group consumes) or stalled (no progress while lag > 0).", []),
            ("evt_catch_up_seconds", "The lag divided by the net rate at which it shrinks; absent while it does not shrink.", []),
            ("evt_up", "1 when evt read this source at its last read, 0 when it could not (its lag series are then absent).", []),
        ]
        func add(_ family: Int, _ labels: [(String, String)], _ value: String) {
            let text = labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",")
            families[family].samples.append("\(families[family].name){\(text)} \(value)")
        }
        func seconds(_ milliseconds: Int64) -> String {
            let whole = milliseconds / 1000, rest = milliseconds % 1000
            return "\(whole)." + String(String(rest + 1000).dropFirst())
        }
        for (index, report) in reports.enumerated() {
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
            for consumer in consumerLabels ? report.consumers ?? [] : [] {
                add(5, labels + [("consumer", consumer.name)], String(consumer.pending))
                add(6, labels + [("consumer", consumer.name)], seconds(consumer.idleMs))
            }
            if let processing = report.processing {
                add(0, [("system", "redis"), ("kind", "list"), ("source", processing.name)], String(processing.length))
            }
            if let trend = trends?[index] {
                if let rate = trend.consumeRate { add(8, labels, LagTrend.rate(rate)) }
                if let rate = trend.produceRate { add(9, labels, LagTrend.rate(rate)) }
                if let status = trend.status { add(10, labels + [("status", status.rawValue)], "1") }
                if let seconds = trend.catchUpSeconds { add(11, labels, LagTrend.rate(seconds)) }
            }
        }
        for source in up {
            add(12, [("system", source.system), ("kind", source.kind), ("source", source.name)], source.up ? "1" : "0")
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
