import Foundation
import Testing
import EvtTestSupport

/// `evt lag --listen` scraped by a real Prometheus (Debian's), queried through its HTTP API:
/// lag against what a peer client (confluent-kafka, redis-cli) reads, the status and rates of
/// groups that a background worker drives at known rates, and evt_up when a server dies.
/// Every check waits for a condition with a deadline: scrapes and reads come when they come.
@Suite("evt lag --listen: lag, rates and status as Prometheus scrapes them", .serialized)
struct LagMetricsTests {
    /// Starts `evt lag ARGS --listen 127.0.0.1:0` and reads its port from stderr.
    static func listen(_ arguments: [String], environment: [String: String]) throws -> (RunningProcess, String) {
        let evt = try Evt.start(["lag"] + arguments + ["--listen", "127.0.0.1:0"], environment: environment)
        var target: String?
        _ = waitUntil(timeout: 30) {
            let text = evt.stderrSoFar
            if let match = text.firstMatch(of: /serving metrics at http:\/\/(127\.0\.0\.1:\d+)\/metrics/) {
                target = String(match.1)
            }
            return target != nil || evt.hasExited()
        }
        guard let target else {
            throw Failure("evt lag --listen did not say where it serves: \(evt.stderrSoFar)")
        }
        return (evt, target)
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func one(_ samples: [PrometheusSample]) -> Double? { samples.count == 1 ? samples[0].value : nil }

    @Test("a Kafka group's evt_lag_events per partition is what confluent-kafka reads of its committed offsets and the watermarks, also after it commits more; it is stalled while it does not consume")
    func kafkaGroup() throws {
        let cluster = try mockCluster(topics: [("t", 3)])
        let env = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers]
        let published = try Evt.run(["publish", "topic:t", "--key", "id"],
                                    stdin: ndjson((1...30).map { #"{"id":\#($0)}"# }), environment: env)
        #expect(published.status == 0, "\(published.stderr)")
        /// Commits `commits` (partition → offset) for group g as a standalone consumer, then
        /// reads back, per partition, [committed (-1001 when none), low, high].
        func peer(_ commits: [Int: Int]) throws -> [Int: [Int]] {
            let script = """
                import sys, json
                from confluent_kafka import Consumer, TopicPartition
                c = Consumer({'bootstrap.servers': sys.argv[1], 'group.id': 'g', 'enable.auto.commit': False})
                commits = json.loads(sys.argv[2])
                if commits:
                    c.commit(offsets=[TopicPartition('t', int(p), o) for p, o in commits.items()], asynchronous=False)
                out = {}
                for tp in c.committed([TopicPartition('t', p) for p in range(3)], timeout=10):
                    low, high = c.get_watermark_offsets(TopicPartition('t', tp.partition), timeout=10)
                    out[tp.partition] = [tp.offset, low, high]
                print(json.dumps(out))
                c.close()
                """
            let arguments = String(decoding: try JSONSerialization.data(withJSONObject: Dictionary(uniqueKeysWithValues: commits.map { (String($0.key), $0.value) })), as: UTF8.self)
            let result = try runProcess(["python3", "-c", script, cluster.bootstrapServers, arguments], timeout: 60)
            let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: [Int]]
            return Dictionary(uniqueKeysWithValues: (object ?? [:]).map { (Int($0.key)!, $0.value) })
        }
        func expectedLag(_ read: [Int: [Int]]) -> [String: Double] {
            Dictionary(uniqueKeysWithValues: read.map { partition, marks in
                (String(partition), Double(marks[2] - (marks[0] >= 0 ? marks[0] : marks[1])))
            })
        }
        let first = try peer([0: 4, 1: 7])
        #expect(first.count == 3 && first[2]?[0] ?? 0 < 0, "partition 2 has nothing committed: \(first)")

        let (evt, target) = try Self.listen(["topic:t", "--group", "g", "--watch", "1s", "--window", "3"], environment: env)
        defer { _ = evt.stop() }
        let prometheus = try PrometheusServer.start(scraping: [target])
        defer { prometheus.stop() }
        let lagQuery = #"evt_lag_events{system="kafka",kind="topic",source="t",group="g"}"#
        func byPartition(_ samples: [PrometheusSample]) -> [String: Double] {
            Dictionary(samples.map { ($0.labels["partition"] ?? "?", $0.value) }, uniquingKeysWith: { a, _ in a })
        }
        let expected = expectedLag(first)
        try prometheus.waitFor(lagQuery) { byPartition($0) == expected }
        #expect(Self.one(try prometheus.query(#"evt_up{system="kafka",source="t"}"#)) == 1)
        // Nothing consumes: once the window is full the group is stalled, at 0 events/s.
        try prometheus.waitFor(#"evt_lag_status{group="g",status="stalled"}"#) { Self.one($0) == 1 }
        #expect(Self.one(try prometheus.query(#"evt_consume_rate{group="g"}"#)) == 0)

        // The group commits more (partition 2 for the first time): the lag follows.
        let second = try peer([1: 8, 2: 5])
        #expect(second[2]?[0] == 5 && second[1]?[0] == 8, "\(second)")
        try prometheus.waitFor(lagQuery) { byPartition($0) == expectedLag(second) }
        let stopped = evt.stop(SIGINT)
        #expect(stopped.result.status == 130 && stopped.result.stdout.isEmpty, "\(stopped.result.stderr)")
    }

    /// A worker on stream `orders` (redis-py): every 50 ms (on a fixed schedule) it adds 4
    /// entries, unless the file `catchUp` exists, and group `slow` reads 2 and acknowledges
    /// them. It logs "epoch-seconds consumed-so-far" per tick to `log`.
    static let worker = """
        import os, sys, time, redis
        r = redis.Redis(port=int(sys.argv[1]))
        log, catch_up = sys.argv[2], sys.argv[3]
        start, tick, consumed = time.monotonic(), 0, 0
        with open(log, 'a', buffering=1) as out:
            while True:
                if not os.path.exists(catch_up):
                    pipe = r.pipeline(transaction=False)
                    for _ in range(4):
                        pipe.xadd('orders', {'n': str(tick)})
                    pipe.execute()
                reply = r.xreadgroup('slow', 'w', {'orders': '>'}, count=2)
                ids = [entry[0] for _, entries in reply for entry in entries]
                if ids:
                    r.xack('orders', 'slow', *ids)
                consumed += len(ids)
                out.write(f'{time.time()} {consumed}\\n')
                tick += 1
                delay = start + tick * 0.05 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        """

    /// The rate at which the worker consumed over the last `seconds`, from its log.
    static func trueRate(_ log: String, seconds: Double) -> Double? {
        guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return nil }
        let points = text.split(separator: "\n").compactMap { line -> (Double, Double)? in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let at = Double(parts[0]), let count = Double(parts[1]) else { return nil }
            return (at, count)
        }
        guard let last = points.last, let first = points.last(where: { $0.0 <= last.0 - seconds }) else { return nil }
        return (last.1 - first.1) / (last.0 - first.0)
    }

    @Test("a stream group consumed more slowly than produced is falling_behind, one that does not consume is stalled; consume_rate is the worker's true rate; the slow one is ok once it catches up")
    func streamStatus() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        try redis.cli(["XGROUP", "CREATE", "orders", "slow", "$", "MKSTREAM"])
        try redis.cli(["XGROUP", "CREATE", "orders", "idle", "$"])
        let scratch = Scratch()
        let log = scratch.file("worker.log"), catchUp = scratch.file("catch-up")
        let worker = try RunningProcess(["python3", "-c", Self.worker, String(redis.port), log, catchUp])
        defer { _ = worker.stop(SIGKILL) }

        let (evt, target) = try Self.listen(["stream:orders", "--watch", "1s", "--window", "3"], environment: env)
        defer { _ = evt.stop() }
        let prometheus = try PrometheusServer.start(scraping: [target])
        defer { prometheus.stop() }

        try prometheus.waitFor(#"evt_lag_status{source="orders",group="slow",status="falling_behind"}"#, timeoutSeconds: 60) { Self.one($0) == 1 }
        try prometheus.waitFor(#"evt_lag_status{source="orders",group="idle",status="stalled"}"#) { Self.one($0) == 1 }
        #expect(Self.one(try prometheus.query(#"evt_consume_rate{group="idle"}"#)) == 0)
        #expect(try prometheus.query(#"evt_catch_up_seconds{source="orders"}"#).isEmpty, "neither lag shrinks")
        // The worker consumes 40/s and produces 80/s on its schedule; on a loaded machine it
        // may slip, so evt's rate (over its last 3 reads) is compared with what the worker
        // logged over about the same span, within 25 %.
        var compared = ""
        try prometheus.waitFor(#"evt_consume_rate{group="slow"}"#, timeoutSeconds: 60) { samples in
            guard let rate = Self.one(samples), let truth = Self.trueRate(log, seconds: 3), truth > 0 else { return false }
            compared = "evt \(rate)/s, worker \(truth)/s"
            return abs(rate - truth) <= 0.25 * truth
        }
        let produced = try #require(Self.one(try prometheus.query(#"evt_produce_rate{group="slow"}"#)))
        #expect(produced > 40, "the stream grows faster than slow consumes: \(produced)/s; \(compared)")

        // Production stops; slow catches up: its lag shrinks (a catch-up time), then it is ok.
        FileManager.default.createFile(atPath: catchUp, contents: Data())
        try prometheus.waitFor(#"evt_catch_up_seconds{group="slow"}"#, timeoutSeconds: 60) { (Self.one($0) ?? 0) > 0 }
        try prometheus.waitFor(#"evt_lag_status{group="slow",status="ok"}"#, timeoutSeconds: 60) { Self.one($0) == 1 }
        try prometheus.waitFor(#"evt_lag_events{group="slow"}"#, timeoutSeconds: 120) { Self.one($0) == 0 }
        #expect(try redis.cli(["XINFO", "GROUPS", "orders"]).contains("slow"))
        try prometheus.waitFor(#"evt_lag_status{group="slow",status="ok"}"#) { Self.one($0) == 1 }
        // idle never moved: still stalled, with every entry still to read.
        let length = Double(try redis.cli(["XLEN", "orders"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        try prometheus.waitFor(#"evt_lag_events{group="idle"}"#) { Self.one($0) == length }
        #expect(Self.one(try prometheus.query(#"evt_lag_status{group="idle",status="stalled"}"#)) == 1)
    }

    @Test("a redis-server that dies makes evt_up 0 and its lag series absent while evt goes on serving; once the stream is back, evt_up is 1 again")
    func serverDies() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        func fill() throws {
            try redis.cli(["XADD", "orders", "*", "n", "1"])
            try redis.cli(["XGROUP", "CREATE", "orders", "billing", "0"])
        }
        try fill()
        let (evt, target) = try Self.listen(["stream:orders", "--watch", "1s", "--window", "3"], environment: env)
        defer { _ = evt.stop() }
        let prometheus = try PrometheusServer.start(scraping: [target])
        defer { prometheus.stop() }
        try prometheus.waitFor(#"evt_lag_events{source="orders",group="billing"}"#) { Self.one($0) == 1 }
        try prometheus.waitFor(#"evt_up{system="redis",source="orders"}"#) { Self.one($0) == 1 }

        redis.kill()
        try prometheus.waitFor(#"evt_up{system="redis",source="orders"}"#) { Self.one($0) == 0 }
        // Prometheus still scrapes evt (its own up is 1), and the lag series are gone.
        try prometheus.waitFor(#"up{job="evt"}"#) { Self.one($0) == 1 }
        try prometheus.waitFor(#"evt_lag_events{source="orders"}"#) { $0.isEmpty }
        #expect(!evt.hasExited(), "\(evt.stderrSoFar)")
        #expect(evt.stderrSoFar.contains("evt_up 0 for stream orders on "), "\(evt.stderrSoFar)")

        try redis.start()
        try fill()
        try prometheus.waitFor(#"evt_up{system="redis",source="orders"}"#) { Self.one($0) == 1 }
        try prometheus.waitFor(#"evt_lag_events{source="orders",group="billing"}"#) { Self.one($0) == 1 }
        let stopped = evt.stop(SIGTERM)
        #expect(stopped.result.status == 143, "\(stopped.result.stderr)")
    }

    @Test("--fail-on without --watch reads the window and exits 4 naming a stalled group, 0 for a group with nothing to read; --window 1 and an unknown status are usage errors")
    func failOnForCron() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        try redis.cli(["XADD", "orders", "*", "n", "1"])
        try redis.cli(["XGROUP", "CREATE", "orders", "billing", "0"])
        let stalled = try Evt.run(["lag", "stream:orders", "--fail-on", "stalled,falling_behind", "--window", "2"], environment: env)
        #expect(stalled.status == 4, "\(stalled.stderr)")
        #expect(stalled.stderr.contains("group billing of stream orders is stalled (--fail-on): lag 1 events"), "\(stalled.stderr)")
        #expect(stalled.stdoutLines.count == 1 && stalled.stdoutText.contains(#""status":"stalled","consume_rate":0,"produce_rate":0"#),
                "\(stalled.stdoutText)")

        try redis.cli(["XREADGROUP", "GROUP", "billing", "w", "STREAMS", "orders", ">"])
        let caughtUp = try Evt.run(["lag", "stream:orders", "--fail-on", "stalled", "--window", "2"], environment: env)
        #expect(caughtUp.status == 0 && caughtUp.stdoutText.contains(#""status":"ok""#), "\(caughtUp.stdoutText)\(caughtUp.stderr)")

        let single = try Evt.run(["lag", "stream:orders"], environment: env)
        #expect(!single.stdoutText.contains("status"), "one read: the objects are as before")
        for bad in [["--window", "1", "--watch", "1s"], ["--fail-on", "late"], ["--listen", "127.0.0.1:0", "--format", "json"]] {
            let refused = try Evt.run(["lag", "stream:orders"] + bad, environment: env)
            #expect(refused.status == 2, "\(bad): \(refused.stderr)")
        }
    }
}
