import Testing
@testable import EvtCore

@Suite("WorkerMetrics: latency buckets, quantiles and the exposition of a worker's figures")
struct WorkerMetricsTests {
    @Test("an observation goes into the first bucket whose bound it does not exceed; beyond 60 s into +Inf")
    func buckets() {
        var histogram = LatencyHistogram()
        histogram.observe(seconds: 0)
        histogram.observe(seconds: 0.001)       // on the bound: le="0.001"
        histogram.observe(seconds: 0.0010001)   // just above: le="0.0025"
        histogram.observe(seconds: 2.5)
        histogram.observe(seconds: 61)
        #expect(histogram.counts[0] == 2)
        #expect(histogram.counts[1] == 1)
        #expect(histogram.counts[LatencyHistogram.bounds.firstIndex(of: 2.5)!] == 1)
        #expect(histogram.counts[15] == 1)
        #expect(histogram.count == 5)
        #expect(histogram.cumulative(upTo: 15) == 5)
        #expect(abs(histogram.sum - 63.5020001) < 1e-9)
        #expect(LatencyHistogram.boundTexts.count == LatencyHistogram.bounds.count + 1)
        for (bound, text) in zip(LatencyHistogram.bounds, LatencyHistogram.boundTexts) { #expect(Double(text) == bound) }
    }

    @Test("the bucket search agrees with the bounds: on each bound, just above and below it, and far out")
    func bucketSearch() {
        var values: [Double] = [0, -1, 1e-9, 1e9, .infinity]
        for bound in LatencyHistogram.bounds { values += [bound, bound.nextUp, bound.nextDown, bound * 1.3] }
        for value in values {
            let expected = LatencyHistogram.bounds.firstIndex { value <= $0 } ?? LatencyHistogram.bounds.count
            #expect(LatencyHistogram.bucket(of: value) == expected, "\(value)")
        }
        #expect(LatencyHistogram.bucket(of: .nan) == 15)
    }

    @Test("a stream id's milliseconds, and 0 for what is not an id")
    func idMilliseconds() {
        func ms(_ text: String) -> Int64 { Array(text.utf8).withUnsafeBytes { EventTimes.milliseconds(ofID: $0) } }
        #expect(ms("1763812345123-7") == 1_763_812_345_123)
        #expect(ms("0-1") == 0)
        #expect(ms("12") == 0)
        #expect(ms("1a-1") == 0)
        #expect(ms("99999999999999999999999-0") == 0)
        // The 13-digit fast path against the digit-by-digit reading, with every digit place
        // spoiled in turn by a byte just outside '0'...'9' and by non-ASCII bytes.
        func slow(_ text: String) -> Int64 {
            guard let dash = text.firstIndex(of: "-"), text[..<dash].allSatisfy(\.isASCII), let value = Int64(text[..<dash]),
                  text[..<dash].allSatisfy({ $0.isNumber }) else { return 0 }
            return value
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let value = Int64.random(in: 1_000_000_000_000...9_999_999_999_999, using: &generator)
            let id = "\(value)-\(Int.random(in: 0...99, using: &generator))"
            #expect(ms(id) == value, "\(id)")
        }
        for place in 0..<13 {
            for spoiler: UInt8 in [0x2F, 0x3A, 0x20, 0xB0, 0xC3, 0x00] {
                var bytes = Array("1763812345123-7".utf8)
                bytes[place] = spoiler
                let value = bytes.withUnsafeBytes { EventTimes.milliseconds(ofID: $0) }
                #expect(value == 0, "byte \(spoiler) at \(place)")
            }
        }
        #expect(ms("0000000000000-0") == 0 && ms("0000000000042-0") == 42 && ms("9999999999999-0") == 9_999_999_999_999)
        #expect(ms("1763812345123-") == slow("1763812345123-") && ms("1763812345123") == 0)
    }

    @Test("quantiles are interpolated within the bucket that holds the rank, as histogram_quantile does")
    func quantiles() throws {
        var histogram = LatencyHistogram()
        #expect(histogram.quantile(0.5) == nil)
        for _ in 0..<5 { histogram.observe(seconds: 0.003) }   // (0.0025, 0.005]
        for _ in 0..<5 { histogram.observe(seconds: 0.04) }    // (0.025, 0.05]
        // rank 5 is the last observation of the first bucket: its upper bound.
        #expect(abs(try #require(histogram.quantile(0.5)) - 0.005) < 1e-12)
        // rank 9.9: 4.9 of the 5 in (0.025, 0.05].
        let expected: Double = 0.025 + 0.025 * 4.9 / 5
        let p99 = try #require(histogram.quantile(0.99))
        #expect(abs(p99 - expected) < 1e-12)
        // The first bucket starts at 0.
        var small = LatencyHistogram()
        small.observe(seconds: 0.0005)
        small.observe(seconds: 0.0005)
        #expect(abs(try #require(small.quantile(0.5)) - 0.0005) < 1e-12)
        // A rank in +Inf answers the highest finite bound.
        var slow = LatencyHistogram()
        slow.observe(seconds: 100)
        #expect(slow.quantile(0.99) == 60)
    }

    @Test("--stats shows p50 and p99 of the histograms that have observations, and nothing without any")
    func summary() {
        var figures = WorkerFigures()
        #expect(MetricsOutput.quantileSummary(figures) == nil)
        for _ in 0..<10 { figures.endToEnd.observe(seconds: 1.5) }   // (1, 2.5]
        #expect(MetricsOutput.quantileSummary(figures) == "end-to-end p50 1.8s p99 2.5s")
        for _ in 0..<2 { figures.processing.observe(seconds: 0.008) }   // (0.005, 0.01]
        for _ in 0..<2 { figures.processing.observe(seconds: 0.012) }   // (0.01, 0.025]
        #expect(MetricsOutput.quantileSummary(figures) == "processing p50 10ms p99 25ms; end-to-end p50 1.8s p99 2.5s")
        #expect(MetricsOutput.duration(0.0004) == "0.4ms")
        #expect(MetricsOutput.duration(0.002) == "2ms")
        #expect(MetricsOutput.duration(45.2) == "45s")
    }

    @Test("the exposition has HELP and TYPE lines, every outcome, cumulative buckets ending in +Inf, _sum and _count")
    func exposition() {
        let metrics = WorkerMetrics(worker: .subscribe(exec: true),
                                    labels: [("system", "redis"), ("kind", "stream"), ("source", "or\"ders"), ("group", "g")])
        var figures = WorkerFigures()
        figures.acked = 7
        figures.failed = 2
        figures.redeliveries = 3
        figures.processing.observe(seconds: 0.00390625)   // 2^-8: exact sums
        figures.processing.observe(seconds: 0.25)
        metrics.publish(figures)
        #expect(metrics.snapshot == figures)
        var out: [UInt8] = []
        MetricsOutput.appendWorker(metrics.snapshot, of: metrics, nowMs: 0, to: &out)
        let lines = String(decoding: out, as: UTF8.self).split(separator: "\n").map(String.init)
        let labels = #"system="redis",kind="stream",source="or\"ders",group="g""#
        #expect(lines.contains("# TYPE evt_events_total counter"))
        #expect(lines.contains("evt_events_total{\(labels),outcome=\"acked\"} 7"))
        #expect(lines.contains("evt_events_total{\(labels),outcome=\"failed\"} 2"))
        #expect(lines.contains("evt_events_total{\(labels),outcome=\"dead_lettered\"} 0"))
        #expect(lines.contains("evt_events_total{\(labels),outcome=\"filtered\"} 0"))
        #expect(lines.contains("evt_redeliveries_total{\(labels)} 3"))
        #expect(lines.contains("# TYPE evt_processing_seconds histogram"))
        #expect(lines.contains("evt_processing_seconds_bucket{\(labels),le=\"0.0025\"} 0"))
        #expect(lines.contains("evt_processing_seconds_bucket{\(labels),le=\"0.005\"} 1"))
        #expect(lines.contains("evt_processing_seconds_bucket{\(labels),le=\"0.25\"} 2"))
        #expect(lines.contains("evt_processing_seconds_bucket{\(labels),le=\"+Inf\"} 2"))
        #expect(lines.contains("evt_processing_seconds_sum{\(labels)} 0.25390625"))
        #expect(lines.contains("evt_processing_seconds_count{\(labels)} 2"))
        #expect(lines.contains("evt_end_to_end_seconds_count{\(labels)} 0"))
        #expect(!lines.contains { $0.hasPrefix("evt_batches_total") })
        // Every sample line belongs to a family announced before it.
        var announced: Set<String> = []
        for line in lines {
            if line.hasPrefix("# TYPE ") { announced.insert(String(line.split(separator: " ")[2])) ; continue }
            if line.hasPrefix("#") { continue }
            let name = String(line.prefix { $0 != "{" })
            #expect(announced.contains { name == $0 || name == $0 + "_bucket" || name == $0 + "_sum" || name == $0 + "_count" }, "\(line)")
        }
    }

    @Test("a copy's exposition has batches and, with a checkpoint, its age; no processing histogram")
    func copyExposition() {
        let metrics = WorkerMetrics(worker: .copy(checkpoint: true), labels: [("source", "a"), ("target", "stream:b")])
        var figures = WorkerFigures()
        figures.acked = 10
        figures.batches = 2
        figures.checkpointUpdatedAtMs = 10_000
        var out: [UInt8] = []
        MetricsOutput.appendWorker(figures, of: metrics, nowMs: 12_500, to: &out)
        let text = String(decoding: out, as: UTF8.self)
        #expect(text.contains("evt_batches_total{source=\"a\",target=\"stream:b\"} 2\n"))
        #expect(text.contains("evt_checkpoint_age_seconds{source=\"a\",target=\"stream:b\"} 2.5\n"))
        #expect(text.contains("evt_events_total{source=\"a\",target=\"stream:b\",outcome=\"acked\"} 10\n"))
        #expect(!text.contains("evt_processing_seconds"))
    }

    @Test("end-to-end times come from a stream id's ms or a Kafka timestamp; a list item has none")
    func eventTimes() {
        var times = EventTimes(capacity: 4)
        let record = Record()
        record.origin = .kafka
        record.timestamp = 1_000
        times.append(record)
        record.origin = .list
        times.append(record)
        record.origin = .stream
        let id = Array("3000-1".utf8)
        id.withUnsafeBytes { bytes in
            record.id = bytes
            times.append(record)
        }
        var histogram = LatencyHistogram()
        for index in 0..<times.count { times.observe(index, acknowledgedAt: 3_500, into: &histogram) }
        #expect(histogram.count == 2)
        #expect(abs(histogram.sum - 3.0) < 1e-9)   // 2.5 s + 0.5 s
        times.observeFirst(2, acknowledgedAt: 3_500, into: &histogram)
        #expect(histogram.count == 3)
        #expect(times.count == 1)
    }
}
