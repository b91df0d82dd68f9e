import Foundation
import Synchronization
import Testing
import EvtCore
import EvtTestSupport

/// evt on a real Redis Cluster (3 masters + 3 replicas of Debian's redis-server): every
/// command given a seed node that does not serve the key's slot, checked with `redis-cli -c`.
/// Each test has a cluster of its own (~2–3 s to start), stopped when the test ends.
@Suite("Redis Cluster")
struct RedisClusterTests {
    /// A new cluster, and the environment with a seed that does not serve `key`.
    static func environment(seedFor key: String) throws -> (RedisCluster, [String: String]) {
        let cluster = try RedisCluster()
        let seed = try cluster.nonOwnerPort(forKey: key)
        return (cluster, ["EVT_REDIS_URL": "redis://127.0.0.1:\(seed)"])
    }

    /// The same with a mock Kafka cluster holding `topics`, its brokers in EVT_KAFKA_BROKERS.
    static func environment(seedFor key: String, topics: [(String, Int)]) throws
        -> (RedisCluster, KafkaMockCluster, [String: String]) {
        let (cluster, redisEnvironment) = try environment(seedFor: key)
        let kafka = try mockCluster(topics: topics)
        var environment = redisEnvironment
        environment["EVT_KAFKA_BROKERS"] = kafka.bootstrapServers
        return (cluster, kafka, environment)
    }

    /// The master to move `slot` to: the seed of `environment` when it does not serve the slot
    /// (the node evt's first connection is on), else another.
    static func moveTarget(_ cluster: RedisCluster, slot: Int, environment: [String: String]) throws -> Int {
        let owner = try cluster.masterPort(forSlot: slot)
        let seed = Int(environment["EVT_REDIS_URL"]!.split(separator: ":").last!)!
        return seed != owner ? seed : try cluster.masterPorts().first { $0 != owner }!
    }

    static func lines(_ range: ClosedRange<Int>) -> String { range.map { "{\"n\":\($0)}" }.joined(separator: "\n") + "\n" }

    @Test("publish to a stream, a list and a channel through a node that does not serve the key")
    func publish() throws {
        let (cluster, environment) = try Self.environment(seedFor: "orders")
        let stream = try Evt.run(["publish", "stream:orders"], stdin: Self.lines(1...500), environment: environment)
        #expect(stream.status == 0, "\(stream.stderr)")
        #expect(try cluster.cli(["XLEN", "orders"]).trimmingCharacters(in: .whitespacesAndNewlines) == "500")
        let entries = try cluster.streamEntries("orders")
        #expect(entries.map { $0.fields } == (1...500).map { ["n", String($0)] })

        let listEnvironment = ["EVT_REDIS_URL": "redis://127.0.0.1:\(try cluster.nonOwnerPort(forKey: "jobs"))"]
        let list = try Evt.run(["publish", "list:jobs"], stdin: Self.lines(1...20), environment: listEnvironment)
        #expect(list.status == 0, "\(list.stderr)")
        #expect(try cluster.cli(["LLEN", "jobs"]).trimmingCharacters(in: .whitespacesAndNewlines) == "20")
    }

    @Test("tail, group-create, subscribe --group, claim-pending and lag on a stream served by another node")
    func streamCommands() throws {
        let (cluster, environment) = try Self.environment(seedFor: "events")
        for n in 1...30 { try cluster.cli(["XADD", "events", "*", "n", String(n)]) }
        let tail = try Evt.run(["tail", "stream:events", "-n", "5"], environment: environment)
        #expect(tail.status == 0, "\(tail.stderr)")
        #expect(tail.stdoutLines.count == 5, "\(tail.stdoutText)")

        let created = try Evt.run(["group-create", "stream:events", "workers", "--from", "beginning"], environment: environment)
        #expect(created.status == 0, "\(created.stderr)")
        // 10 left pending by consumer a, 10 read and acknowledged by evt as c, 10 claimed by b.
        try cluster.cli(["XREADGROUP", "GROUP", "workers", "a", "COUNT", "10", "STREAMS", "events", ">"])
        let read = try Evt.run(["subscribe", "stream:events", "--group", "workers", "--consumer", "c", "-c", "10"],
                               environment: environment)
        #expect(read.status == 0, "\(read.stderr)")
        #expect(read.stdoutLines.count == 10)
        let claimed = try Evt.run(["claim-pending", "stream:events", "workers", "--consumer", "b", "--min-idle", "0s"],
                                  environment: environment)
        #expect(claimed.status == 0, "\(claimed.stderr)")
        #expect(claimed.stdoutLines.count == 10, "\(claimed.stdoutText)")
        #expect(try cluster.cli(["XPENDING", "events", "workers"]).hasPrefix("0"))
        let lag = try Evt.run(["lag", "stream:events", "--group", "workers"], environment: environment)
        #expect(lag.status == 0, "\(lag.stderr)")
        #expect(lag.stdoutText.contains("\"lag\":10"), "\(lag.stdoutText)")
    }

    @Test("publish while the stream's slot moves to another master: every line stored once, in order")
    func publishDuringReshard() throws {
        let (cluster, environment) = try Self.environment(seedFor: "moving")
        let slot = try cluster.slot(forKey: "moving")
        let target = try Self.moveTarget(cluster, slot: slot, environment: environment)
        try cluster.cli(["XADD", "moving", "*", "n", "0"])
        let count = 200_000
        let publisher = try Evt.start(["publish", "stream:moving"], environment: environment)
        publisher.feed(Data(Self.lines(1...count).utf8))
        #expect(try Self.waitFor(2, in: "moving", cluster), "the move starts once evt is storing lines")
        try cluster.moveSlot(slot, to: target)
        let result = publisher.wait(timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try cluster.masterPort(forSlot: slot) == target)
        let entries = try cluster.streamEntries("moving")
        #expect(entries.count == count + 1)
        #expect(entries.dropFirst().map { $0.fields.last ?? "" } == (1...count).map(String.init), "lost or doubled entries")
    }

    static func length(_ cluster: RedisCluster, _ key: String) throws -> Int {
        Int(try cluster.cli(["XLEN", key]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    static func waitFor(_ count: Int, in key: String, _ cluster: RedisCluster, seconds: Double = 30) throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try length(cluster, key) >= count { return true }
            usleep(50_000)
        }
        return false
    }

    @Test("a copy-between -f --checkpoint bridge from a topic while the stream's slot moves: every kafka.source once")
    func bridgeDuringReshard() throws {
        let (cluster, kafka, environment) = try Self.environment(seedFor: "bridged", topics: [("orders", 4)])
        defer { withExtendedLifetime(kafka) {} }   // the mock broker serves until the test ends
        let count = 60_000
        let published = try Evt.run(["publish", "topic:orders", "--key", "n"], stdin: Self.lines(1...count), environment: environment)
        #expect(published.status == 0, "\(published.stderr)")
        let bridge = try Evt.start(["copy-between", "topic:orders", "stream:bridged", "--checkpoint", "bridge", "-f"],
                                   environment: environment)
        #expect(try Self.waitFor(1, in: "bridged", cluster))
        let slot = try cluster.slot(forKey: "bridged")
        let target = try Self.moveTarget(cluster, slot: slot, environment: environment)
        try cluster.moveSlot(slot, to: target)
        let more = try Evt.run(["publish", "topic:orders", "--key", "n"], stdin: Self.lines(count + 1...count + 100), environment: environment)
        #expect(more.status == 0)
        #expect(try Self.waitFor(count + 100, in: "bridged", cluster), "the copy fell short")
        usleep(300_000)
        bridge.signal(SIGTERM)
        let result = bridge.wait(timeout: 20)
        #expect(result.status == 143, "\(result.stderr)")
        let sources = try cluster.streamEntries("bridged").map { entry -> String in
            guard let index = entry.fields.firstIndex(of: "kafka.source"), index + 1 < entry.fields.count else { return "" }
            return entry.fields[index + 1]
        }
        #expect(sources.count == count + 100, "\(sources.count) entries")
        #expect(Set(sources).count == sources.count, "a record was copied twice")
        // The checkpoint shares the stream's slot (so the copy's MULTI/EXEC stays legal).
        #expect(try cluster.cli(["EXISTS", "evt:checkpoint:bridge{bridged}"]).hasPrefix("1"))
    }

    @Test("a group read blocked on a stream whose slot moves, then fed on the new master: every entry handed over once, all acknowledged")
    func groupReadDuringReshard() throws {
        let (cluster, environment) = try Self.environment(seedFor: "work")
        let half = 5_000
        let published = try Evt.run(["publish", "stream:work"], stdin: Self.lines(1...half), environment: environment)
        #expect(published.status == 0, "\(published.stderr)")
        let created = try Evt.run(["group-create", "stream:work", "g", "--from", "beginning"], environment: environment)
        #expect(created.status == 0, "\(created.stderr)")
        let reader = try Evt.start(["subscribe", "stream:work", "--group", "g", "-c", String(2 * half), "--ack-batch", "100"],
                                   environment: environment)
        // It has read the first half and waits in XREADGROUP BLOCK.
        #expect(waitUntil { reader.stdoutLinesSoFar.count >= half })
        let slot = try cluster.slot(forKey: "work")
        let target = try Self.moveTarget(cluster, slot: slot, environment: environment)
        try cluster.moveSlot(slot, to: target)
        let more = try Evt.run(["publish", "stream:work"], stdin: Self.lines(half + 1...2 * half), environment: environment)
        #expect(more.status == 0, "\(more.stderr)")
        let result = reader.wait(timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        let numbers = result.stdoutLines.compactMap { line -> Int? in
            guard let range = line.range(of: "\"n\":\""), let end = line[range.upperBound...].firstIndex(of: "\"") else { return nil }
            return Int(line[range.upperBound..<end])
        }
        #expect(numbers.count == 2 * half && Set(numbers) == Set(1...2 * half), "\(Set(1...2 * half).subtracting(numbers).count) entries never handed over, \(numbers.count - Set(numbers).count) twice")
        #expect(try cluster.cli(["XPENDING", "work", "g"]).hasPrefix("0"), "entries left pending")
    }

    @Test("a group read that meets ASK while its stream's slot is being moved reads on the importing node, with ASKING, before the move ends")
    func groupReadDuringMigration() throws {
        let (cluster, environment) = try Self.environment(seedFor: "work")
        let count = 1_000
        let published = try Evt.run(["publish", "stream:work"], stdin: Self.lines(1...count), environment: environment)
        #expect(published.status == 0, "\(published.stderr)")
        let created = try Evt.run(["group-create", "stream:work", "g", "--from", "beginning"], environment: environment)
        #expect(created.status == 0, "\(created.stderr)")
        let slot = try cluster.slot(forKey: "work")
        let target = try Self.moveTarget(cluster, slot: slot, environment: environment)
        var result: ProcessResult?
        try cluster.moveSlot(slot, to: target) { _ in
            // The stream (with its group) is on the importing node now, and the old master
            // answers ASK for it until the move ends, which waits for this read.
            result = try Evt.run(["subscribe", "stream:work", "--group", "g", "-c", String(count)], environment: environment, timeout: 60)
        }
        let read = try #require(result)
        #expect(read.status == 0, "\(read.stderr)")
        #expect(Set(Self.numbers(read.stdoutLines)) == Set(1...count) && read.stdoutLines.count == count)
        #expect(try cluster.cli(["XPENDING", "work", "g"]).hasPrefix("0"), "entries left pending")
    }

    /// The `n` of each record a subscribe printed, in order.
    static func numbers(_ lines: [String]) -> [Int] {
        lines.compactMap { line -> Int? in
            guard let range = line.range(of: "\"n\":\""), let end = line[range.upperBound...].firstIndex(of: "\"") else { return nil }
            return Int(line[range.upperBound..<end])
        }
    }

    @Test("publish while the stream's master is killed: with --wait-replicas 1 every line reported delivered survives the failover", arguments: [true, false])
    func publishThroughFailover(waitForReplica: Bool) throws {
        let (cluster, environment) = try Self.environment(seedFor: "durable")
        let master = try cluster.masterPort(forKey: "durable")
        let count = 400_000
        let scratch = Scratch()
        let file = scratch.write("in.ndjson", Data(Self.lines(1...count).utf8))
        let publisher = try Evt.start(["publish", "stream:durable", file, "--timeout", "5s"]
                                      + (waitForReplica ? ["--wait-replicas", "1"] : []), environment: environment)
        // Kill the master once part of the input is in.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, (Int((try? cluster.cli(port: master, ["XLEN", "durable"]))?
                                        .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0) < 50_000 {
            usleep(10_000)
        }
        try cluster.killMaster(port: master)
        let result = publisher.wait(timeout: 60)
        let recovery = try cluster.waitForFailover(ofPort: master)
        #expect(result.status == 1, "a lost master is a failure: \(result.stderr)")
        let reported = reportedLines(in: result.stderr, marker: "not delivered")
            .union(reportedLines(in: result.stderr, marker: "unconfirmed"))
        let stored = Set(try cluster.streamEntries("durable").compactMap { Int($0.fields.last ?? "") })
        // Reported delivered: every line before evt stopped reading that is not named.
        let lastRead = result.stderr.range(of: "stopped reading input after line ").flatMap { range in
            Int(result.stderr[range.upperBound...].prefix { $0.isNumber })
        } ?? count
        let delivered = Set(1...lastRead).subtracting(reported)
        let lost = delivered.subtracting(stored)
        print("failover after \(String(format: "%.1f", recovery)) s; --wait-replicas \(waitForReplica ? 1 : 0): \(delivered.count) lines reported delivered, \(lost.count) of them lost, \(reported.count) named not delivered or unconfirmed")
        if waitForReplica {
            #expect(lost.isEmpty, "\(lost.count) lines reported delivered were lost in the failover")
        }
    }

    @Test("a group read and a -f bridge while the master of their streams is killed: they ride through CLUSTERDOWN, nothing is lost")
    func readersThroughFailover() throws {
        let (cluster, kafka, environment) = try Self.environment(seedFor: "{f}jobs", topics: [("feed", 2)])
        defer { withExtendedLifetime(kafka) {} }   // the mock broker serves until the test ends
        let master = try cluster.masterPort(forKey: "{f}jobs")
        let half = 3_000
        let published = try Evt.run(["publish", "stream:{f}jobs", "--wait-replicas", "1"], stdin: Self.lines(1...half), environment: environment)
        #expect(published.status == 0, "\(published.stderr)")
        #expect(try Evt.run(["group-create", "stream:{f}jobs", "g", "--from", "beginning"], environment: environment).status == 0)
        #expect(try Evt.run(["publish", "topic:feed", "--key", "n"], stdin: Self.lines(1...half), environment: environment).status == 0)
        let reader = try Evt.start(["subscribe", "stream:{f}jobs", "--group", "g", "-c", String(2 * half), "--ack-batch", "100"],
                                   environment: environment)
        let bridge = try Evt.start(["copy-between", "topic:feed", "stream:{f}copy", "--checkpoint", "feed", "-f"], environment: environment)
        #expect(try Self.waitFor(half, in: "{f}copy", cluster))
        usleep(300_000)
        try cluster.killMaster(port: master)
        let recovery = try cluster.waitForFailover(ofPort: master)
        // More for both once a replica took over (a master with no replica left: no --wait-replicas).
        #expect(try Evt.run(["publish", "stream:{f}jobs"], stdin: Self.lines(half + 1...2 * half),
                            environment: environment).status == 0)
        #expect(try Evt.run(["publish", "topic:feed", "--key", "n"], stdin: Self.lines(half + 1...2 * half), environment: environment).status == 0)
        let read = reader.wait(timeout: 60)
        #expect(read.status == 0, "\(read.stderr)")
        #expect(Set(Self.numbers(read.stdoutLines)) == Set(1...2 * half), "entries never handed over")
        #expect(try Self.waitFor(2 * half, in: "{f}copy", cluster), "the bridge did not catch up after the failover")
        usleep(300_000)
        bridge.signal(SIGTERM)
        let copied = bridge.wait(timeout: 20)
        #expect(copied.status == 143, "\(copied.stderr)")
        let sources = try cluster.streamEntries("{f}copy").map { $0.fields.last ?? "" }
        #expect(sources.count == 2 * half && Set(sources).count == sources.count, "\(sources.count) entries, \(Set(sources).count) distinct")
        print("failover after \(String(format: "%.1f", recovery)) s; reader: \(read.stderr.split(separator: "\n").filter { $0.contains("retrying") || $0.contains("reconnected") }), bridge: \(copied.stderr.split(separator: "\n").filter { $0.contains("retrying") || $0.contains("again") })")
    }

    @Test("publish 'stream:*' --envelope over 64 keys on all three masters, pipelined per node, while one of their slots moves")
    func publishManyKeys() throws {
        let (cluster, environment) = try Self.environment(seedFor: "k:0")
        let count = 64_000
        let input = (1...count).map { #"{"stream":"k:\#($0 % 64)","value":{"n":"\#($0)"}}"# }.joined(separator: "\n") + "\n"
        let slot = try cluster.slot(forKey: "k:5")
        let target = try Self.moveTarget(cluster, slot: slot, environment: environment)
        let publisher = try Evt.start(["publish", "stream:*", "--envelope"], environment: environment)
        publisher.feed(Data(input.utf8))
        usleep(150_000)
        try cluster.moveSlot(slot, to: target)
        let result = publisher.wait(timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        let owners = Set(try (0..<64).map { try cluster.masterPort(forKey: "k:\($0)") })
        #expect(owners.count == 3, "the keys should spread over the three masters")
        for key in 0..<64 {
            let numbers = try cluster.streamEntries("k:\(key)").compactMap { Int($0.fields.last ?? "") }
            #expect(numbers == (1...count).filter { $0 % 64 == key }, "stream k:\(key): \(numbers.count) entries")
        }
    }

    @Test("publish 'stream:*' and 'stream:KEY' through a replica: evt reads the slot map first, so no command goes where its slot is not served")
    func publishReadsTheSlotMapFirst() throws {
        let cluster = try RedisCluster()
        let replica = try cluster.replicaPorts(of: try cluster.masterPort(forKey: "k:4")).first!
        let environment = ["EVT_REDIS_URL": "redis://127.0.0.1:\(replica)"]
        let many = try Evt.run(["publish", "stream:*", "--envelope"],
                               stdin: (1...50).map { #"{"stream":"k:\#($0 % 5)","value":{"n":"\#($0)"}}"# }.joined(separator: "\n") + "\n",
                               environment: environment)
        #expect(many.status == 0, "\(many.stderr)")
        let one = try Evt.run(["publish", "stream:k:4"], stdin: "{\"n\":1}\n", environment: environment)
        #expect(one.status == 0, "\(one.stderr)")
        #expect(try (0..<5).map { try Self.length(cluster, "k:\($0)") } == [10, 10, 10, 10, 11])
        // A replica answers a client's write MOVED (a rejected call; its master's own stream of
        // writes it applies): evt sent it none.
        let stats = try cluster.cli(port: replica, ["INFO", "commandstats"])
        let xadd = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_xadd:") } ?? ""
        #expect(xadd.contains("rejected_calls=0,"), "\(xadd)")
    }

    @Test("publish 'stream:*' --envelope --dead-letter stream:bad on a cluster: the dead-letter stream, learning the slot map mid-run, does not let later events of a key overtake earlier ones")
    func publishWithDeadLettersOnTheCluster() throws {
        let cluster = try RedisCluster()
        let key = "k:5"
        // A replica serves no key: the key's and the dead letters' commands are all answered MOVED.
        let seed = try cluster.replicaPorts(of: try cluster.masterPort(forKey: key)).first!
        let record = { (n: Int) in #"{"stream":"\#(key)","value":{"n":"\#(n)"}}"# }
        // More bad lines than a connection keeps in flight: the dead-letter stream (same
        // server, so the same slot map) reads its answers, MOVED, and reads the map while the
        // first lines of the key are still queued for the seed (stdin is a file: no pause in
        // the input flushes them).
        let bad = 20_000
        let input = (1...10).map(record) + Array(repeating: "not json", count: bad) + (11...20).map(record)
        let result = try Evt.run(["publish", "stream:*", "--envelope", "--on-error", "skip", "--dead-letter", "stream:bad"],
                                 stdin: input.joined(separator: "\n") + "\n", environment: ["EVT_REDIS_URL": "redis://127.0.0.1:\(seed)"])
        #expect(result.status == 3, "\(result.stderr)")
        #expect(try Self.length(cluster, "bad") == bad)
        let numbers = try cluster.streamEntries(key).compactMap { Int($0.fields.last ?? "") }
        #expect(numbers == Array(1...20), "stored in this order: \(numbers)")
    }

    @Test("a mutual-TLS cluster (rediss://): publish and a group read through a seed that does not serve the key, certificates checked on every node")
    func mutualTLSCluster() throws {
        let cluster = try RedisCluster(transport: .mutualTLS)
        let seed = try cluster.nonOwnerPort(forKey: "secure")
        var environment = cluster.environment
        environment["EVT_REDIS_URL"] = "rediss://127.0.0.1:\(seed)"
        let published = try Evt.run(["publish", "stream:secure"], stdin: Self.lines(1...1000), environment: environment)
        #expect(published.status == 0, "\(published.stderr)")
        #expect(try Self.length(cluster, "secure") == 1000)
        let read = try Evt.run(["subscribe", "stream:secure", "--group", "g", "--create", "--from", "beginning", "-c", "1000"],
                               environment: environment)
        #expect(read.status == 0, "\(read.stderr)")
        #expect(Self.numbers(read.stdoutLines) == Array(1...1000))
    }

    @Test("copy-between a list into a stream with --wait-replicas 1: on the cluster every item copied; a server without replicas stops the copy with exit 1 and keeps the items")
    func copyWaitingForReplicas() throws {
        let (cluster, environment) = try Self.environment(seedFor: "{q}in")
        for n in 1...500 { try cluster.cli(["LPUSH", "{q}in", "{\"n\":\"\(n)\"}"]) }
        let copied = try Evt.run(["copy-between", "list:{q}in", "stream:{q}out", "--wait-replicas", "1"], environment: environment)
        #expect(copied.status == 0, "\(copied.stderr)")
        #expect(try Self.length(cluster, "{q}out") == 500)
        #expect(try cluster.cli(["LLEN", "{q}in"]).hasPrefix("0"))

        let redis = try RedisServer()
        for n in 1...5 { try redis.cli(["LPUSH", "in", "\(n)"]) }
        let alone = try Evt.run(["copy-between", "list:in", "stream:out", "--wait-replicas", "1", "--timeout", "1s"],
                                environment: ["EVT_REDIS_URL": redis.url])
        #expect(alone.status == 1, "\(alone.stderr)")
        #expect(alone.stderr.contains("only 0 of 1 replicas had it"), "\(alone.stderr)")
        let kept = Int(try redis.cli(["LLEN", "in"]).trimmingCharacters(in: .whitespacesAndNewlines))!
            + Int(try redis.cli(["LLEN", "evt:copy:in"]).trimmingCharacters(in: .whitespacesAndNewlines))!
        #expect(kept == 5, "items removed from the source though no replica had them")
    }

    @Test("exactly-once keys that cannot share a slot are usage errors before anything is copied: a checkpoint NAME with a brace, --per-partition streams, a --processing list")
    func slotUsageErrors() throws {
        let (cluster, kafka, environment) = try Self.environment(seedFor: "orders", topics: [("t", 2)])
        defer { withExtendedLifetime(kafka) {} }   // the mock broker serves until the test ends
        #expect(try Evt.run(["publish", "topic:t", "--key", "n"], stdin: Self.lines(1...10), environment: environment).status == 0)
        let braced = try Evt.run(["copy-between", "topic:t", "stream:orders", "--checkpoint", "a{b}"], environment: environment)
        #expect(braced.status == 2, "\(braced.stderr)")
        #expect(braced.stderr.contains("contains a {") && !braced.stderr.contains("run the same command again"), "\(braced.stderr)")
        let spread = try Evt.run(["copy-between", "topic:t", "stream:orders", "--per-partition", "--checkpoint", "p"], environment: environment)
        #expect(spread.status == 2 && spread.stderr.contains("different slots") && spread.stderr.contains("{orders}"), "\(spread.stderr)")
        let tagged = try Evt.run(["copy-between", "topic:t", "stream:{orders}", "--per-partition", "--checkpoint", "p"], environment: environment)
        #expect(tagged.status == 0, "\(tagged.stderr)")
        #expect(try Self.length(cluster, "{orders}:0") + (try Self.length(cluster, "{orders}:1")) == 10)
        #expect(try cluster.cli(["EXISTS", "evt:checkpoint:p{orders}"]).hasPrefix("1"))
        let processing = try Evt.run(["subscribe", "list:jobs", "--processing", "jobs:working", "-c", "1"], environment: environment)
        #expect(processing.status == 2 && processing.stderr.contains("different slots"), "\(processing.stderr)")
        #expect(try Self.length(cluster, "orders") == 0, "nothing was copied by the refused runs")
    }

    @Test("every README example runs as written against a Redis Cluster, EVT_REDIS_URL naming a node that does not serve its streams")
    func readmeExamples() throws {
        let (cluster, kafka, clusterEnvironment) = try Self.environment(seedFor: "orders", topics: [("orders", 4)])
        defer { withExtendedLifetime(kafka) {} }
        let scratch = Scratch()
        let path = scratch.write("examples.sh", Data(try UsageAndSandboxTests.readmeExamples().utf8))
        let evtDirectory = URL(fileURLWithPath: Evt.binary).deletingLastPathComponent().path
        var environment = Evt.environment(clusterEnvironment)
        environment["PATH"] = evtDirectory + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        let result = try runProcess(["sh", "-e", "-c", "cd \(scratch.path) && sh -e \(path)"], environment: environment, timeout: 180)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutText.contains(#""deliveries":1}"#), "claim-pending --dry-run listed the stuck entries")
        #expect(try String(contentsOfFile: scratch.file("handled.ndjson"), encoding: .utf8).split(separator: "\n").count == 3)
        // The streams are where their slots are, with the tagged checkpoint next to its stream.
        #expect(try Self.length(cluster, "orders-p3-copy") > 0)
        #expect(try cluster.cli(["EXISTS", "evt:checkpoint:orders-p3{orders-p3-copy}"]).hasPrefix("1"))
    }

    @Test("publish to a surviving master while another master fails over: its CLUSTERDOWN answers are waited out, every line stored once")
    func publishThroughClusterDown() throws {
        let (cluster, environment) = try Self.environment(seedFor: "steady")
        let owner = try cluster.masterPort(forKey: "steady")
        let victim = try cluster.masterPorts().first { $0 != owner }!
        let publisher = try Evt.start(["publish", "stream:steady"], environment: Self.environment(environment, seed: owner))
        // 120 lines every 50 ms, from before the kill until a second after the failover: through
        // the CLUSTERDOWN the surviving master answers meanwhile, however long it takes here.
        let stop = Mutex(false)
        let written = DispatchSemaphore(value: 0)
        let chunks = Mutex(0)
        let writer = Thread {
            while !stop.withLock({ $0 }) {
                let chunk = chunks.withLock { value in value += 1; return value - 1 }
                publisher.write(Data(Self.lines(chunk * 120 + 1...chunk * 120 + 120).utf8))
                usleep(50_000)
            }
            written.signal()
        }
        writer.start()
        usleep(500_000)
        try cluster.killMaster(port: victim)
        try cluster.waitForFailover(ofPort: victim)
        usleep(1_000_000)
        stop.withLock { $0 = true }
        written.wait()
        let result = publisher.wait(timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        let count = chunks.withLock { $0 } * 120
        let numbers = try cluster.streamEntries("steady").compactMap { Int($0.fields.last ?? "") }
        #expect(numbers.count == count && numbers == Array(1...count), "\(numbers.count) of \(count) entries, not in order or not each once")
        let errors = try cluster.cli(port: owner, ["INFO", "errorstats"])
        // The failover's CLUSTERDOWN window (~3–4.5 s after the kill) fell inside the publish.
        #expect(errors.contains("errorstat_CLUSTERDOWN"), "no CLUSTERDOWN answer was met: \(errors)")
    }

    /// `environment` with EVT_REDIS_URL at the node on `seed`.
    static func environment(_ environment: [String: String], seed: Int) -> [String: String] {
        var changed = environment
        changed["EVT_REDIS_URL"] = "redis://127.0.0.1:\(seed)"
        return changed
    }
}
