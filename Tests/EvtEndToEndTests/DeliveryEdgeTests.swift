import Foundation
import Testing
import EvtCore
import EvtTestSupport

/// Delivery corner cases: a stalled server, a producer told to wait forever, trickling input,
/// and byte-exact header names.
@Suite("delivery corner cases")
struct DeliveryEdgeTests {
    @Test("Kafka: -X message.timeout.ms=0 (wait forever) still ends with exit 1 and every line named")
    func kafkaNeverAnswers() throws {
        let broker = try SilentListener()   // accepts, never answers (a closed port fails at once)
        let result = try Evt.run(["publish", "kafka://127.0.0.1:\(broker.port)/t", "--timeout", "1s", "-X", "message.timeout.ms=0"],
                                 stdin: "1\n2\n3\n", timeout: 60)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(reportedLines(in: result.stderr, marker: "not delivered")
                    .union(reportedLines(in: result.stderr, marker: "unconfirmed")) == [1, 2, 3], "\(result.stderr)")
        let zero = try Evt.run(["publish", "topic:t", "--timeout", "0s"], stdin: "1\n")
        #expect(zero.status == 2 && zero.stderr.contains("--timeout"))
    }

    @Test("Kafka: the wait for room in a full producer queue ends at --timeout, also with -X message.timeout.ms=0")
    func kafkaQueueFullForever() throws {
        let broker = try SilentListener()   // accepts, never answers
        let started = Date()
        let result = try Evt.run(["publish", "kafka://127.0.0.1:\(broker.port)/t", "--timeout", "2s",
                                  "-X", "message.timeout.ms=0", "-X", "queue.buffering.max.messages=10"],
                                 stdin: ndjson(sampleLines(100)), timeout: 60)
        #expect(Date().timeIntervalSince(started) < 20, "took \(Date().timeIntervalSince(started)) s")
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("Kafka took no event for --timeout (2s)"), "\(result.stderr)")
        #expect(reportedLines(in: result.stderr, marker: "not delivered")
                    .union(reportedLines(in: result.stderr, marker: "unconfirmed")) == Set(1...10), "\(result.stderr)")
    }

    @Test("Kafka: SIGTERM while no broker answers ends publish within a few seconds, every line named, not after message.timeout.ms", arguments: [5, 200_000])
    func kafkaStopWhileUnreachable(lines: Int) throws {
        let broker = try SilentListener()   // accepts, never answers (a closed port fails at once)
        let port = broker.port
        // 5 lines and stdin left open (evt waits for input), or more than the producer queue
        // holds, from a file (evt waits for room in the queue).
        let scratch = Scratch()
        let publisher: RunningProcess
        if lines < 100_000 {
            publisher = try Evt.start(["publish", "kafka://127.0.0.1:\(port)/t"])
            publisher.write(Data(String(repeating: "{\"a\":1}\n", count: lines).utf8))
        } else {
            let file = scratch.write("in.ndjson", Data(String(repeating: "{\"a\":1}\n", count: lines).utf8))
            publisher = try Evt.start(["publish", "kafka://127.0.0.1:\(port)/t", file])
        }
        usleep(1_500_000)
        let (result, took) = publisher.stop()
        #expect(took < 6, "took \(took) s")
        #expect(result.status == 143, "\(result.stderr)")
        #expect(!reportedLines(in: result.stderr, marker: "not delivered").isEmpty, "\(result.stderr)")
    }

    @Test("Kafka readers (tail, replay, copy-between) that wait for a broker that never answers stop at once on SIGTERM with exit 143", arguments: [
        ["tail", "TOPIC"], ["replay-from-offset", "TOPIC", "beginning"], ["copy-between", "TOPIC", "stream:x"],
    ])
    func kafkaReadersStopWhileUnreachable(arguments: [String]) throws {
        let broker = try SilentListener()   // accepts, never answers (a closed port fails at once)
        let reader = try Evt.start(arguments.map { $0 == "TOPIC" ? "kafka://127.0.0.1:\(broker.port)/t" : $0 },
                                   environment: ["EVT_REDIS_URL": "redis://127.0.0.1:\(try freeLoopbackPort())"])
        usleep(1_500_000)
        let (result, took) = reader.stop()
        #expect(took < 5, "took \(took) s")
        #expect(result.status == 143, "\(result.stderr)")
        #expect(result.stderr.contains("stopped before"), "\(result.stderr)")
    }

    @Test("Redis: a server that stops answering (SIGSTOP) ends publish with exit 1 within --timeout; unsent lines are not delivered, written ones unconfirmed")
    func redisStalls() throws {
        let redis = try RedisServer()
        let publisher = try Evt.start(["publish", "stream:s", "--timeout", "2s"], environment: ["EVT_REDIS_URL": redis.url])
        defer { if !publisher.hasExited() { publisher.signal(SIGKILL) } }
        // evt has asked what the server is (CLUSTER SLOTS) and waits for input.
        #expect(waitUntil {
            KernelView.connectedPorts(publisher.pid).contains(redis.port) && KernelView.unreadBytes(port: redis.port) == (0, 0)
                && KernelView.processState(publisher.pid) == "S"
        }, "\(publisher.stderrSoFar)")
        try redis.pause()
        defer { redis.resume() }
        let started = Date()
        publisher.feed(ndjson(sampleLines(40_000)))
        #expect(waitUntil { KernelView.unreadBytes(port: redis.port).toServer > 0 }, "evt never sent the lines")
        let result = publisher.wait(timeout: 60)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(Date().timeIntervalSince(started) < 20)
        let unconfirmed = reportedLines(in: result.stderr, marker: "unconfirmed")
        let notSent = reportedLines(in: result.stderr, marker: "not delivered")
        #expect(!unconfirmed.isEmpty && unconfirmed.isDisjoint(with: notSent), "\(result.stderr)")
        #expect((unconfirmed.max() ?? 0) < (notSent.min() ?? Int.max), "written lines come before unwritten ones")
    }

    @Test("Redis: publish to a server that answers nothing from the start ends with exit 1 within --timeout, naming it")
    func redisSilentFromTheStart() throws {
        let redis = try RedisServer()
        try redis.pause()
        defer { redis.resume() }
        let started = Date()
        let result = try Evt.run(["publish", "stream:s", "--timeout", "2s"], stdin: ndjson(sampleLines(10)),
                                 environment: ["EVT_REDIS_URL": redis.url], timeout: 60)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(result.stderr.contains("127.0.0.1:\(redis.port)"), "\(result.stderr)")
    }

    @Test("Redis: a line is stored while the input is still open (no waiting for a full batch)")
    func redisTrickle() throws {
        let redis = try RedisServer()
        let evt = try Evt.start(["publish", "stream:trickle"], environment: ["EVT_REDIS_URL": redis.url])
        evt.write(Data("{\"a\":1}\n".utf8))
        var length = 0
        _ = try waitUntil {
            length = Int(try redis.cli(["XLEN", "trickle"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            return length > 0
        }
        #expect(length == 1, "the first line reached Redis before input ended")
        let result = evt.wait(timeout: 20)
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test("Kafka: a header name that is not UTF-8 shows as \"b64:…\" and goes back as the same bytes")
    func binaryHeaderName() throws {
        let cluster = try mockCluster(topics: [("h", 1), ("copy", 1)])
        let environment = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers]
        let published = try Evt.run(["publish", "topic:h", "--envelope"], stdin: #"{"value":1,"headers":{"b64:/w==":"v","n":"x"}}"# + "\n",
                                    environment: environment)
        #expect(published.status == 0, "\(published.stderr)")
        let tailed = try Evt.run(["tail", "topic:h"], environment: environment)
        #expect(tailed.stdoutText.contains(#""headers":{"b64:/w==":"v","n":"x"}"#), "\(tailed.stdoutText)")
        #expect((try? JSONSerialization.jsonObject(with: tailed.stdout)) != nil, "valid JSON")
        let copied = try Evt.run(["publish", "topic:copy", "--envelope"], stdin: tailed.stdout, environment: environment)
        #expect(copied.status == 0)
        let raw = try runProcess(["kcat", "-C", "-b", cluster.bootstrapServers, "-t", "copy", "-e", "-q", "-f", "%h"], timeout: 30)
        #expect(Array(raw.stdout) == [0xFF, 0x3D, 0x76, 0x2C, 0x6E, 0x3D, 0x78])   // \xff=v,n=x
    }
}
