/// The three shapes of `evt lag`'s output: NDJSON, a table for a terminal, Prometheus metrics.
enum LagOutput {
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
                rows.append([group, source, "-", "-", "-", lag, report.lagMs.map(LagReport.readableAge) ?? "-", pending])
                continue
            }
            for partition in report.partitions {
                rows.append([group, source, String(partition.partition), partition.committed.map(String.init) ?? "-",
                             String(partition.logEnd), String(partition.lag), partition.lagMs.map(LagReport.readableAge) ?? "-", "-"])
            }
            rows.append([group, source, "total", "", "", lag, report.lagMs.map(LagReport.readableAge) ?? "-", "-"])
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
