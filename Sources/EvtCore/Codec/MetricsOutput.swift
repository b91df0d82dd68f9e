/// A worker's figures (WorkerMetrics) as text: the Prometheus text exposition (format 0.0.4)
/// that `subscribe --metrics` and `copy-between -f --metrics` serve, and the latency part
/// of their `--stats` lines.
enum MetricsOutput {
    static func appendWorker(_ figures: WorkerFigures, of metrics: WorkerMetrics, nowMs: Int64, to out: inout [UInt8]) {
        let labels = metrics.labels.map { "\($0.name)=\"\(LagOutput.escapeLabel($0.value))\"" }.joined(separator: ",")
        func family(_ name: String, _ type: String, _ help: String) {
            out += Array("# HELP \(name) \(help)\n# TYPE \(name) \(type)\n".utf8)
        }
        func sample(_ name: String, _ extra: String, _ value: String) {
            let all = extra.isEmpty ? labels : labels.isEmpty ? extra : labels + "," + extra
            out += Array("\(name){\(all)} \(value)\n".utf8)
        }
        func histogram(_ name: String, _ help: String, _ histogram: LatencyHistogram) {
            family(name, "histogram", help)
            var cumulative: UInt64 = 0
            for (index, bound) in LatencyHistogram.boundTexts.enumerated() {
                cumulative &+= histogram.counts[index]
                sample(name + "_bucket", "le=\"\(bound)\"", String(cumulative))
            }
            sample(name + "_sum", "", number(histogram.sum))
            sample(name + "_count", "", String(histogram.count))
        }

        family("evt_events_total", "counter",
               "Events by outcome: acked (handed over and acknowledged; a copy's: acknowledged by the target), failed (--exec exited non-zero), dead_lettered, filtered (left out by --match).")
        for (outcome, value) in [("acked", figures.acked), ("failed", figures.failed),
                                 ("dead_lettered", figures.deadLettered), ("filtered", figures.filtered)] {
            sample("evt_events_total", "outcome=\"\(outcome)\"", String(value))
        }
        family("evt_redeliveries_total", "counter",
               "Events delivered more than once: stream group entries re-read from the pending list, list items taken back from the processing list.")
        sample("evt_redeliveries_total", "", String(figures.redeliveries))
        switch metrics.worker {
        case .subscribe(let exec):
            if exec { histogram("evt_processing_seconds", "How long --exec took per event.", figures.processing) }
        case .copy(let checkpoint):
            family("evt_batches_total", "counter", "Batches read from the source and handed to the target.")
            sample("evt_batches_total", "", String(figures.batches))
            if checkpoint, let updated = figures.checkpointUpdatedAtMs {
                family("evt_checkpoint_age_seconds", "gauge",
                       "Time since the checkpoint was last brought up to date with what the target confirmed.")
                sample("evt_checkpoint_age_seconds", "", number(Double(max(0, nowMs - updated)) / 1000))
            }
        }
        histogram("evt_end_to_end_seconds",
                  "Time from an event's timestamp (a Kafka record's, a stream id's) to its acknowledgement.", figures.endToEnd)
    }

    /// A sample value: integral values without a fraction, others as Swift writes a Double
    /// (which Prometheus parses, exponents included).
    static func number(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    /// `processing p50 12ms p99 80ms; end-to-end p50 1.2s p99 3s`: the histograms that have
    /// observations; nil when none has.
    static func quantileSummary(_ figures: WorkerFigures) -> String? {
        var parts: [String] = []
        for (name, histogram) in [("processing", figures.processing), ("end-to-end", figures.endToEnd)] {
            guard let p50 = histogram.quantile(0.5), let p99 = histogram.quantile(0.99) else { continue }
            parts.append("\(name) p50 \(duration(p50)) p99 \(duration(p99))")
        }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }

    /// `0.4ms`, `12ms`, `1.2s`, `45s`.
    static func duration(_ seconds: Double) -> String {
        if seconds < 0.01 { return trimmed(seconds * 1000, decimals: 1) + "ms" }
        if seconds < 1 { return String(Int((seconds * 1000).rounded())) + "ms" }
        if seconds < 10 { return trimmed(seconds, decimals: 1) + "s" }
        return String(Int(seconds.rounded())) + "s"
    }

    private static func trimmed(_ value: Double, decimals: Int) -> String {
        let scale = decimals == 1 ? 10.0 : 1.0
        let rounded = (value * scale).rounded() / scale
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }
}

extension WorkerMetrics {
    /// What a scrape of `/metrics` answers: the last snapshot published (called on the
    /// listener's thread).
    func exposition() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8192)
        MetricsOutput.appendWorker(snapshot, of: self, nowMs: epochMilliseconds(), to: &out)
        return out
    }
}
