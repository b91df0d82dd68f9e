import Foundation
import Testing
import EvtCore
import EvtTestSupport

/// Kafka addresses where no broker runs fail at once; brokers that are slow, down among others
/// that answer, or gone after they answered are waited for within --timeout, as before.
@Suite("Kafka brokers that refuse connections")
struct KafkaUnreachableTests {
    @Test("every bootstrap address refuses connections: publish, tail and subscribe --group exit 1 within seconds, naming them", arguments: [
        (["publish", "TOPIC", "--timeout", "30s"], 1), (["publish", "TOPIC", "--timeout", "30s"], 2),
        (["tail", "TOPIC"], 1), (["subscribe", "TOPIC", "--group", "g"], 1), (["subscribe", "TOPIC", "--group", "g"], 2),
    ])
    func refusedEverywhere(arguments: [String], addresses: Int) throws {
        // Bound, nothing listening: connections are refused.
        let ports = try (1...addresses).map { _ in try refusingPort() }
        let brokers = ports.map { "127.0.0.1:\($0.port)" }
        let started = Date()
        let result = try Evt.run(arguments.map { $0 == "TOPIC" ? "kafka://\(brokers.joined(separator: ","))/t" : $0 },
                                 stdin: ndjson(sampleLines(3)), timeout: 60)
        let took = Date().timeIntervalSince(started)
        // Before: publish waited out --timeout (30 s), tail its 10 s, subscribe --group for ever.
        #expect(took < 8, "took \(took) s")
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("no Kafka broker accepts connections at \(brokers.joined(separator: ", "))"), "\(result.stderr)")
        if arguments[0] == "publish" {
            #expect(reportedLines(in: result.stderr, marker: "not delivered") == [1, 2, 3], "\(result.stderr)")
        }
    }

    @Test("one bootstrap address that refuses among one that answers is no failure: publish and tail go through")
    func oneRefusedAmongAnswering() throws {
        let cluster = try mockCluster(topics: [("t", 1)])
        let refusing = try refusingPort()
        let closed = "127.0.0.1:\(refusing.port)"
        for brokers in ["\(closed),\(cluster.bootstrapServers)", "\(cluster.bootstrapServers),\(closed)"] {
            let published = try Evt.run(["publish", "kafka://\(brokers)/t"], stdin: ndjson(sampleLines(100)), timeout: 60)
            #expect(published.status == 0, "\(brokers): \(published.stderr)")
            let tailed = try Evt.run(["tail", "kafka://\(brokers)/t", "-n", "5"], timeout: 60)
            #expect(tailed.status == 0, "\(brokers): \(tailed.stderr)")
            #expect(tailed.stdoutLines.count == 5, "\(brokers): \(tailed.stderr)")
        }
        #expect(try kcatConsume(brokers: cluster.bootstrapServers, topic: "t").count == 200)
    }

    @Test("a broker that accepts connections and never answers is waited for until --timeout, not refused")
    func silentBroker() throws {
        let broker = try SilentListener()
        let started = Date()
        let result = try Evt.run(["publish", "kafka://127.0.0.1:\(broker.port)/t", "--timeout", "2s"], stdin: ndjson(sampleLines(3)),
                                 timeout: 60)
        #expect(Date().timeIntervalSince(started) >= 2)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(!result.stderr.contains("accepts connections"), "\(result.stderr)")
        #expect(result.stderr.contains("not acknowledged within --timeout"), "\(result.stderr)")
    }

    @Test("brokers that answered and then went away are waited for until --timeout, not refused")
    func answeredThenGone() throws {
        var cluster: KafkaMockCluster? = try mockCluster(topics: [("gone", 1)])
        let brokers = cluster!.bootstrapServers
        let publisher = try Evt.start(["publish", "kafka://\(brokers)/gone", "--timeout", "3s"])
        defer { if !publisher.hasExited() { publisher.signal(SIGKILL) } }
        publisher.write(Data("{\"n\":1}\n".utf8))
        #expect(try waitUntil { try kcatConsume(brokers: brokers, topic: "gone").count == 1 })
        cluster = nil   // its listeners close…
        // …and its ports stay closed: nothing else takes them.
        let closed = try brokers.split(separator: ",").map { try refusingPort(Int($0.split(separator: ":").last!)!) }
        defer { withExtendedLifetime(closed) {} }
        publisher.write(Data("{\"n\":2}\n".utf8))
        let result = publisher.wait(timeout: 60)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(!result.stderr.contains("accepts connections"), "\(result.stderr)")
        #expect(result.stderr.contains("Kafka did not acknowledge events within --timeout (3s)"), "\(result.stderr)")
        #expect(reportedLines(in: result.stderr, marker: "not delivered")
                    .union(reportedLines(in: result.stderr, marker: "unconfirmed")) == [2], "\(result.stderr)")
    }
}
