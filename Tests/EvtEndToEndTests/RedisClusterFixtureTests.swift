import Foundation
import Testing
import EvtCore
import EvtTestSupport

/// The Redis Cluster fixture itself (3 masters + 3 replicas of Debian's redis-server), and
/// evt's slot function against the server's: what the cluster tests of issue #12 stand on.
@Suite("Redis Cluster fixture")
struct RedisClusterFixtureTests {
    @Test("a 3+3 cluster comes up, CLUSTER KEYSLOT agrees with ClusterSlot.of, and a slot moves with its stream group")
    func upKeyslotAndMove() throws {
        let cluster = try RedisCluster()
        print("cluster of \(cluster.ports) ready after \(String(format: "%.2f", cluster.startupSeconds)) s")
        #expect(cluster.ports.count == 6)
        let masters = try cluster.masterPorts()
        #expect(masters.count == 3 && Set(masters) == Set(cluster.ports.prefix(3)))
        for master in masters { #expect(try cluster.replicaPorts(of: master).count == 1) }
        #expect(cluster.url == "redis://127.0.0.1:\(cluster.ports[0])")
        #expect(cluster.environment["EVT_REDIS_URL"] == cluster.url)

        // ~200 keys, tagged, empty tags, stray braces, UTF-8: one redis-cli reading commands from stdin.
        var random = SplitMix(seed: 12)
        let alphabet = Array("ab{}{}:-_.0123456789xyz")
        var keys = ["foo", "bar", "", "{user1000}.following", "{user1000}.followers", "foo{}{bar}",
                    "foo{{bar}}zap", "foo{bar}{zap}", "{", "}", "{}", "}{", "a}b{c}", "café{ü}", "commandes:{café}.x"]
        while keys.count < 200 {
            keys.append(String((0..<Int(random.next() % 16)).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }))
        }
        let commands = keys.map { "CLUSTER KEYSLOT \"\($0)\"\n" }.joined()
        let answer = try runProcess(["redis-cli"] + cluster.cliConnection(port: cluster.ports[0]) + ["--raw"],
                                    stdin: Data(commands.utf8), timeout: 20)
        let slots = answer.stdoutLines.map { Int($0) ?? -1 }
        try #require(slots.count == keys.count, "\(answer.stdoutText.prefix(300)) \(answer.stderr)")
        for (key, slot) in zip(keys, slots) { #expect(ClusterSlot.of(key) == slot, "\(key)") }
        #expect(slots[0] == 12182 && slots[1] == 5061 && slots[2] == 0)
        // Derived names share their key's slot on the server too.
        let derived = keys.compactMap { ClusterSlot.keyWithTag("evt:checkpoint:", sharing: $0) }
        #expect(derived.count == keys.count)
        let derivedCommands = derived.map { "CLUSTER KEYSLOT \"\($0)\"\n" }.joined()
        let derivedSlots = try runProcess(["redis-cli"] + cluster.cliConnection(port: cluster.ports[0]) + ["--raw"],
                                          stdin: Data(derivedCommands.utf8), timeout: 20).stdoutLines.map { Int($0) ?? -1 }
        #expect(derivedSlots == slots)

        // A stream with a group and two pending entries, and 24 more keys of its slot.
        let stream = "{mv}orders"
        for n in 1...5 { try cluster.cli(["XADD", stream, "*", "n", String(n)]) }
        try cluster.cli(["XGROUP", "CREATE", stream, "g", "0"])
        try cluster.cli(["XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", stream, ">"])
        let others = (1...24).map { "{mv}k\($0)" }
        for key in others { try cluster.cli(["SET", key, "v"]) }
        let slot = try cluster.slot(forKey: stream)
        #expect(slot == ClusterSlot.of("mv"))
        let source = try cluster.masterPort(forKey: stream)
        let target = try cluster.nonOwnerPort(forKey: stream)
        #expect(source != target && masters.contains(target))

        var asks = 0
        let started = Date()
        let moved = try cluster.moveSlot(slot, to: target, keysPerBatch: 10) { movedSoFar in
            // Mid-move: the source sends moved keys on with ASK; the target takes them only after ASKING.
            if movedSoFar == 10 {
                for key in others + [stream] {
                    let reply = try cluster.cli(port: source, ["EXISTS", key])
                    if reply.hasPrefix("ASK \(slot) 127.0.0.1:\(target)") { asks += 1 }
                }
                #expect(try cluster.cli(["GET", "{mv}k1"]).hasPrefix("v"))   // -c follows ASK
            }
        }
        print("moved slot \(slot) (\(moved) keys) in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        #expect(moved == 25)
        #expect(asks == 10)
        #expect(try cluster.masterPort(forKey: stream) == target)
        #expect(try cluster.cli(port: source, ["XLEN", stream]).hasPrefix("MOVED \(slot) 127.0.0.1:\(target)"))
        #expect(try cluster.cli(port: target, ["XLEN", stream]) == "5\n")
        #expect(try cluster.cli(port: target, ["XPENDING", stream, "g"]).hasPrefix("2\n"))
        #expect(try cluster.streamEntries(stream).map { $0.fields } == (1...5).map { ["n", String($0)] })
        #expect(try cluster.cli(port: target, ["DBSIZE"]).trimmingCharacters(in: .whitespacesAndNewlines) != "0")
    }

    @Test("killing a master: its replica takes over, with CLUSTERDOWN for a while, and the old master rejoins as a replica")
    func failover() throws {
        let cluster = try RedisCluster()
        print("cluster of \(cluster.ports) ready after \(String(format: "%.2f", cluster.startupSeconds)) s")
        let key = "{fo}k"
        try cluster.cli(["SET", key, "1"])
        let victim = try cluster.masterPort(forKey: key)
        let replica = try #require(try cluster.replicaPorts(of: victim).first)
        let witness = try cluster.nonOwnerPort(forKey: key)
        #expect(try cluster.cli(port: victim, ["WAIT", "1", "2000"]) == "1\n")   // the replica has it

        try cluster.killMaster(port: victim)
        let killed = Date()
        // What a client writing through a surviving master sees, every 50 ms, until a write succeeds.
        var refused: (first: Double, last: Double)?
        var down: (first: Double, last: Double)?
        var succeeded: Double?
        while succeeded == nil && Date().timeIntervalSince(killed) < 30 {
            let result = try runProcess(["redis-cli"] + cluster.cliConnection(port: witness) + ["-c", "--raw", "SET", key, "2"],
                                        timeout: 10)
            let text = result.stdoutText + result.stderr
            let now = Date().timeIntervalSince(killed)
            if text.hasPrefix("OK") {
                succeeded = now
            } else if text.contains("CLUSTERDOWN") {
                down = (down?.first ?? now, now)
            } else {
                refused = (refused?.first ?? now, now)
            }
            usleep(50_000)
        }
        let seconds = try cluster.waitForFailover(ofPort: victim, timeout: 30)
        func span(_ range: (first: Double, last: Double)?) -> String {
            range.map { String(format: "%.2f–%.2f s", $0.first, $0.last) } ?? "never"
        }
        print("after kill -9 of \(victim): refused/unanswered \(span(refused)), CLUSTERDOWN \(span(down)), first write at \(succeeded.map { String(format: "%.2f s", $0) } ?? "never"), failover complete (all nodes agree, ok) at \(String(format: "%.2f", seconds)) s")
        #expect(succeeded != nil)
        #expect(try cluster.masterPort(forKey: key) == replica)
        #expect(try cluster.cli(["GET", key]) == "2\n")
        #expect(!cluster.livePorts.contains(victim))

        let restarted = Date()
        try cluster.restart(port: victim)
        var rejoined = false
        while !rejoined && Date().timeIntervalSince(restarted) < 15 {
            rejoined = try cluster.replicaPorts(of: replica).contains(victim)
                && (try? cluster.cli(port: victim, ["INFO", "replication"]))?.contains("master_link_status:up") == true
            if !rejoined { usleep(50_000) }
        }
        print("old master \(victim) back as a replica of \(replica) after \(String(format: "%.2f", Date().timeIntervalSince(restarted))) s")
        #expect(rejoined)
        #expect(try cluster.masterPorts().count == 3)
    }
}

extension RedisClusterFixtureTests {
    @Test("a mutual-TLS cluster comes up (TLS on the client ports, the bus and replication) and moves a slot over TLS")
    func mutualTLS() throws {
        let cluster = try RedisCluster(transport: .mutualTLS)
        print("TLS cluster of \(cluster.ports) ready after \(String(format: "%.2f", cluster.startupSeconds)) s")
        #expect(cluster.url == "rediss://127.0.0.1:\(cluster.ports[0])")
        #expect(cluster.seedsURL == "rediss://127.0.0.1:\(cluster.ports[0]),127.0.0.1:\(cluster.ports[1])")
        #expect(cluster.environment["EVT_REDIS_CERT"] != nil && cluster.environment["EVT_REDIS_CACERT"] != nil)
        // No plain-text port: a client without TLS gets nothing.
        let plain = try runProcess(["redis-cli", "-p", String(cluster.ports[0]), "PING"], timeout: 10)
        #expect(!plain.stdoutText.contains("PONG"))

        let key = "{tls}s"
        for n in 1...3 { try cluster.cli(["XADD", key, "*", "n", String(n)]) }
        let target = try cluster.nonOwnerPort(forKey: key)
        #expect(try cluster.moveSlot(try cluster.slot(forKey: key), to: target) == 1)
        #expect(try cluster.masterPort(forKey: key) == target)
        #expect(try cluster.streamEntries(key).count == 3)
        #expect(try cluster.cli(port: target, ["INFO", "replication"]).contains("connected_slaves:1"))
    }
}

/// A small deterministic generator, so a failing key list is the same on the next run.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
