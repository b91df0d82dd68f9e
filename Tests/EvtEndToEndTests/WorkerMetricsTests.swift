import Foundation
import Testing
@testable import EvtCore
import EvtTestSupport

/// `subscribe --metrics` and `copy-between -f --metrics`, scraped by a real Prometheus and
/// checked against what redis-cli reads of the same stream, group and target.
@Suite("worker metrics: subscribe and copy-between -f scraped by Prometheus")
struct WorkerMetricsEndToEndTests {
    static func seq(_ range: ClosedRange<Int>) -> String { range.map(String.init).joined(separator: "\n") + "\n" }

    /// XINFO GROUPS of `stream`, the fields of `group` (name → value, as --raw prints them).
    static func groupInfo(_ redis: RedisServer, _ stream: String, _ group: String) throws -> [String: String] {
        let lines = try redis.cli(["XINFO", "GROUPS", stream]).split(separator: "\n").map(String.init)
        var fields: [String: String] = [:]
        var index = 0
        while index + 1 < lines.count {
            if lines[index] == "name" && !fields.isEmpty && fields["name"] == group { break }
            if lines[index] == "name" { fields = [:] }
            fields[lines[index]] = lines[index + 1]
            index += 2
        }
        return fields["name"] == group ? fields : [:]
    }

    /// XPENDING's entries of `group`: (id, delivery count).
    static func pendingEntries(_ redis: RedisServer, _ stream: String, _ group: String) throws -> [(id: String, deliveries: Int)] {
        let lines = try redis.cli(["XPENDING", stream, group, "-", "+", "1000"]).split(separator: "\n").map(String.init)
        return stride(from: 0, to: lines.count - 3, by: 4).map { (lines[$0], Int(lines[$0 + 3]) ?? -1) }
    }

    static func value(_ samples: [PrometheusSample]) -> Double? { samples.count == 1 ? samples[0].value : nil }

    @Test("a stream group worker's acked and failed counters equal XINFO GROUPS and XPENDING, its processing histogram counts every --exec run, and a rerun counts its redeliveries")
    func streamGroupWorker() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:jobs"], stdin: Self.seq(1...30), environment: env)
        _ = try Evt.run(["group-create", "stream:jobs", "workers", "--from", "beginning"], environment: env)
        let port = try TestPorts.pick()
        let prometheus = try PrometheusServer.start(scraping: ["127.0.0.1:\(port)"])
        defer { prometheus.stop() }

        // Every run appends its job to `runs`; multiples of 7 fail and stay pending.
        let runs = redis.scratch.file("runs")
        let command = "v=$(jq -r .value.value); echo $v >> \(runs); [ $((v % 7)) != 0 ]"
        let arguments = ["subscribe", "stream:jobs", "--group", "workers", "--consumer", "w1", "--exec", command,
                         "--on-exec-error", "continue", "--metrics", "127.0.0.1:\(port)", "--stats", "300ms"]
        let worker = try Evt.start(arguments, environment: env)
        #expect(worker.waitForStderr(containing: "serving metrics at http://127.0.0.1:\(port)/metrics"), "\(worker.stderrSoFar)")
        func runLines() -> [String] {
            ((try? String(contentsOfFile: runs, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        #expect(waitUntil(timeout: 60) { runLines().count == 30 }, "every job ran once: \(runLines())")
        let failing = runLines().filter { Int($0)! % 7 == 0 }.count
        #expect(failing == 4)

        // The truth, as redis-cli reads it once the last acknowledgement is in.
        let selector = #"{job="evt",source="jobs",group="workers",system="redis",kind="stream"}"#
        var truth: (read: Int, pending: Int) = (-1, -1)
        try prometheus.waitFor(#"evt_events_total\#(selector)"#, timeoutSeconds: 60) { samples in
            guard let info = try? Self.groupInfo(redis, "jobs", "workers"), let read = Int(info["entries-read"] ?? ""),
                  let pending = try? Self.pendingEntries(redis, "jobs", "workers").count else { return false }
            truth = (read, pending)
            let byOutcome = Dictionary(samples.map { ($0.labels["outcome"] ?? "", $0.value) }, uniquingKeysWith: { $1 })
            return byOutcome["acked"] == Double(read - pending) && byOutcome["failed"] == Double(pending)
                && byOutcome["filtered"] == 0 && byOutcome["dead_lettered"] == 0
        }
        #expect(truth.read == 30)
        #expect(truth.pending == failing)

        // One observation per --exec run; an end-to-end time for every acknowledged job.
        try prometheus.waitFor(#"evt_processing_seconds_count\#(selector)"#) { Self.value($0) == Double(runLines().count) }
        try prometheus.waitFor(#"evt_processing_seconds_bucket{le="+Inf",group="workers"}"#) { Self.value($0) == 30 }
        try prometheus.waitFor(#"evt_end_to_end_seconds_count\#(selector)"#) { Self.value($0) == Double(30 - failing) }
        let p50 = try prometheus.waitFor(#"histogram_quantile(0.5, evt_end_to_end_seconds_bucket\#(selector))"#) {
            (Self.value($0) ?? 0) > 0
        }
        #expect(Self.value(p50)! <= 60)
        try prometheus.waitFor(#"evt_redeliveries_total\#(selector)"#) { Self.value($0) == 0 }
        let scraped = try runProcess(["curl", "-sS", "--max-time", "10", "http://127.0.0.1:\(port)/metrics"])
        let lint = try runProcess(["promtool", "check", "metrics"], stdin: scraped.stdout)
        #expect(lint.status == 0 && lint.stdoutText.isEmpty && lint.stderr.isEmpty, "\(lint.stdoutText) \(lint.stderr)")
        #expect(worker.waitForStderr(containing: "; processing p50 "), "--stats shows the quantiles: \(worker.stderrSoFar)")
        #expect(worker.stderrSoFar.contains(" p99 "))
        _ = worker.stop()

        // The same consumer again: its four pending jobs are delivered a second time, and
        // fail again.
        let rerun = try Evt.start(arguments, environment: env)
        defer { _ = rerun.stop() }
        #expect(waitUntil(timeout: 60) { runLines().count == 30 + failing }, "\(runLines())")
        try prometheus.waitFor(#"evt_redeliveries_total\#(selector)"#, timeoutSeconds: 60) { samples in
            let twice = (try? Self.pendingEntries(redis, "jobs", "workers").filter { $0.deliveries > 1 }.count) ?? -1
            return twice == failing && Self.value(samples) == Double(twice)
        }
        try prometheus.waitFor(#"evt_events_total{outcome="failed",group="workers"}"#) { Self.value($0) == Double(failing) }
    }

    @Test("copy-between -f --metrics: copied equals the target's length read by redis-cli, with batches, checkpoint age and end-to-end times")
    func followingCopy() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:from"], stdin: Self.seq(1...500), environment: env)
        let port = try TestPorts.pick()
        let prometheus = try PrometheusServer.start(scraping: ["127.0.0.1:\(port)"])
        defer { prometheus.stop() }
        let copy = try Evt.start(["copy-between", "stream:from", "stream:to", "-f", "--checkpoint", "bridge",
                                  "--metrics", "127.0.0.1:\(port)"], environment: env)
        defer { _ = copy.stop() }
        #expect(copy.waitForStderr(containing: "serving metrics at"), "\(copy.stderrSoFar)")
        _ = try Evt.run(["publish", "stream:from"], stdin: Self.seq(501...800), environment: env)

        let selector = #"{source="from",target="stream:to",kind="stream"}"#
        try prometheus.waitFor(#"evt_events_total{outcome="acked",source="from",target="stream:to"}"#, timeoutSeconds: 60) { samples in
            let length = Int((try? redis.cli(["XLEN", "to"]))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? -1
            return length == 800 && Self.value(samples) == Double(length)
        }
        let batches = try #require(Self.value(try prometheus.waitFor(#"evt_batches_total\#(selector)"#) { Self.value($0) ?? 0 >= 2 }))
        #expect(batches <= 800, "a batch holds at least one event")
        try prometheus.waitFor(#"evt_end_to_end_seconds_count\#(selector)"#) { Self.value($0) == 800 }
        let age = try prometheus.waitFor(#"evt_checkpoint_age_seconds\#(selector)"#) { !$0.isEmpty }
        #expect(Self.value(age)! < 30, "an idle bridge keeps its checkpoint up to date")
        try prometheus.waitFor(#"evt_events_total{outcome="failed",target="stream:to"}"#) { Self.value($0) == 0 }
        #expect(try prometheus.query(#"evt_processing_seconds_count\#(selector)"#).isEmpty, "no --exec, no processing histogram")
        // promtool's lint finds nothing to say of the exposition (names, HELP, TYPE, units).
        let scraped = try runProcess(["curl", "-sS", "--max-time", "10", "http://127.0.0.1:\(port)/metrics"])
        let lint = try runProcess(["promtool", "check", "metrics"], stdin: scraped.stdout)
        #expect(lint.status == 0 && lint.stdoutText.isEmpty && lint.stderr.isEmpty, "\(lint.stdoutText) \(lint.stderr)")
    }

    @Test("a Kafka group worker: acked equals the records kcat reads and --exec handled, every one with an end-to-end time from its timestamp, no redeliveries")
    func kafkaGroupWorker() throws {
        let cluster = try mockCluster(topics: [("orders", 2)])
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers]
        let publishedFrom = epochMilliseconds()
        let published = try Evt.run(["publish", "topic:orders"], stdin: Self.seq(1...20), environment: env)
        #expect(published.status == 0, "\(published.stderr)")
        let stored = try kcatConsume(brokers: cluster.bootstrapServers, topic: "orders")
        #expect(stored.count == 20)
        let port = try TestPorts.pick()
        let prometheus = try PrometheusServer.start(scraping: ["127.0.0.1:\(port)"])
        defer { prometheus.stop() }
        let scratch = Scratch()
        let handled = scratch.file("handled")
        let worker = try Evt.start(["subscribe", "topic:orders", "--group", "billing", "--from", "beginning",
                                    "--exec", "cat >> \(handled)", "--metrics", "127.0.0.1:\(port)",
                                    "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"], environment: env)
        defer { _ = worker.stop() }
        func handledCount() -> Int {
            ((try? String(contentsOfFile: handled, encoding: .utf8)) ?? "").split(separator: "\n").count
        }
        #expect(waitUntil(timeout: 60) { handledCount() == stored.count }, "\(worker.stderrSoFar)")
        let selector = #"{system="kafka",kind="topic",source="orders",group="billing"}"#
        try prometheus.waitFor(#"evt_events_total{outcome="acked",system="kafka",group="billing"}"#, timeoutSeconds: 60) {
            Self.value($0) == Double(stored.count)
        }
        try prometheus.waitFor(#"evt_processing_seconds_count\#(selector)"#) { Self.value($0) == Double(handledCount()) }
        let count = try prometheus.waitFor(#"evt_end_to_end_seconds_count\#(selector)"#) { Self.value($0) == 20 }
        #expect(Self.value(count) == 20)
        // Each time runs from a timestamp taken after `publishedFrom` to an acknowledgement
        // before now.
        let sum = try #require(Self.value(try prometheus.query(#"evt_end_to_end_seconds_sum\#(selector)"#)))
        #expect(sum >= 0 && sum <= 20 * Double(epochMilliseconds() - publishedFrom) / 1000, "\(sum)")
        #expect(Self.value(try prometheus.query(#"evt_redeliveries_total\#(selector)"#)) == 0)
    }

    @Test("a list worker with --processing counts the items an earlier run left there as redeliveries")
    func listLeftovers() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "list:q"], stdin: Self.seq(1...10), environment: env)
        // An earlier worker that moved three items into its processing list and died.
        for _ in 0..<3 { try redis.cli(["LMOVE", "q", "q:processing", "RIGHT", "LEFT"]) }
        let port = try TestPorts.pick()
        let prometheus = try PrometheusServer.start(scraping: ["127.0.0.1:\(port)"])
        defer { prometheus.stop() }
        let worker = try Evt.start(["subscribe", "list:q", "--processing", "q:processing", "--exec", "cat > /dev/null",
                                    "--metrics", "127.0.0.1:\(port)"], environment: env)
        defer { _ = worker.stop() }
        let selector = #"{system="redis",kind="list",source="q"}"#
        try prometheus.waitFor(#"evt_events_total{outcome="acked",kind="list",source="q"}"#, timeoutSeconds: 60) { samples in
            let left = (try? redis.cli(["LLEN", "q"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? ""
            let processing = (try? redis.cli(["LLEN", "q:processing"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? ""
            return left == "0" && processing == "0" && Self.value(samples) == 10
        }
        #expect(Self.value(try prometheus.waitFor(#"evt_redeliveries_total\#(selector)"#) { Self.value($0) == 3 }) == 3)
        #expect(Self.value(try prometheus.query(#"evt_end_to_end_seconds_count\#(selector)"#)) == 0, "a list item has no time of its own")
    }

    @Test("copy-between --metrics without -f is a usage error that says to add -f")
    func metricsNeedsFollow() throws {
        let redis = try RedisServer()
        let result = try Evt.run(["copy-between", "stream:a", "stream:b", "--metrics", "127.0.0.1:0"],
                                 environment: ["EVT_REDIS_URL": redis.url])
        #expect(result.status == 2)
        #expect(result.stderr.contains("--metrics") && result.stderr.contains("-f"), "\(result.stderr)")
    }

    @Test("subscribe --metrics on an address in use exits before consuming anything")
    func addressInUse() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "list:q"], stdin: Self.seq(1...3), environment: env)
        let result = try Evt.run(["subscribe", "list:q", "--metrics", "127.0.0.1:\(redis.port)", "-c", "1"], environment: env)
        #expect(result.status != 0)
        #expect(result.stderr.contains("--metrics"), "\(result.stderr)")
        #expect(try redis.cli(["LLEN", "q"]).trimmingCharacters(in: .whitespacesAndNewlines) == "3", "nothing was taken")
    }
}
