import Foundation
import Testing
import EvtTestSupport

/// subscribe, group-create and claim-pending on a real redis-server, checked with redis-cli.
@Suite("subscribe and claim-pending on Redis")
struct SubscribeRedisTests {
    static func records(_ result: ProcessResult) -> [[String: Any]] {
        result.stdoutLines.map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    /// The `value` field of stream records published from `seq`.
    static func values(_ result: ProcessResult) -> [Int] {
        records(result).map { Int((($0["value"] as! [String: Any])["value"] as! String))! }
    }

    static func pendingCount(_ redis: RedisServer, _ stream: String, _ group: String) throws -> Int {
        Int(try redis.cli(["XPENDING", stream, group]).split(separator: "\n").first ?? "0") ?? -1
    }

    static func seq(_ range: ClosedRange<Int>) -> String { range.map(String.init).joined(separator: "\n") + "\n" }

    @Test("-c 5 acknowledges exactly 5; the same consumer's next run continues with the 6th")
    func exactCount() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:s"], stdin: Self.seq(1...20), environment: env)
        let first = try Evt.run(["subscribe", "stream:s", "--group", "g", "--create", "--from", "beginning", "-c", "5"], environment: env)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(Self.values(first) == [1, 2, 3, 4, 5])
        #expect(try Self.pendingCount(redis, "s", "g") == 0)
        let second = try Evt.run(["subscribe", "stream:s", "--group", "g", "-c", "5"], environment: env)
        #expect(Self.values(second) == [6, 7, 8, 9, 10])
        #expect(try Self.pendingCount(redis, "s", "g") == 0)
        #expect(first.stderr.contains("consuming as evt-"), "the default consumer name is announced")
    }

    @Test("after a crash the consumer first re-reads its own pending entries, with their delivery counts")
    func ownPendingFirst() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:s"], stdin: Self.seq(1...6), environment: env)
        _ = try Evt.run(["group-create", "stream:s", "g", "--from", "beginning"], environment: env)
        // A consumer that read three entries and died before acknowledging them.
        try redis.cli(["XREADGROUP", "GROUP", "g", "w1", "COUNT", "3", "STREAMS", "s", ">"])
        let result = try Evt.run(["subscribe", "stream:s", "--group", "g", "--consumer", "w1", "-c", "5"], environment: env)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(Self.values(result) == [1, 2, 3, 4, 5])
        #expect(Self.records(result).map { $0["deliveries"] as? Int } == [2, 2, 2, nil, nil])
        #expect(try Self.pendingCount(redis, "s", "g") == 0)
    }

    @Test("--exec that fails leaves the entry pending and exits 1; --on-exec-error continue goes on")
    func execFailure() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:s"], stdin: Self.seq(1...4), environment: env)
        let failed = try Evt.run(["subscribe", "stream:s", "--group", "g", "--create", "--from", "beginning", "-c", "1",
                                  "--exec", "cat > /dev/null; exit 1"], environment: env)
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("stays pending"), "\(failed.stderr)")
        #expect(try Self.pendingCount(redis, "s", "g") == 1)

        let marker = redis.scratch.file("handled")
        let onward = try Evt.run(["subscribe", "stream:s", "--group", "g", "-c", "4", "--on-exec-error", "continue",
                                  "--exec", "v=$(jq -r .value.value); echo $v >> \(marker); [ $v != 3 ]"], environment: env)
        #expect(onward.status == 1, "a failed --exec is still a failure at the end")
        #expect(try String(contentsOfFile: marker, encoding: .utf8) == "1\n2\n3\n4\n")
        let pending = try redis.cli(["XPENDING", "s", "g", "-", "+", "10"])
        #expect(try Self.pendingCount(redis, "s", "g") == 1, "only the entry whose --exec failed: \(pending)")
    }

    @Test("subscribe | head -n 3 exits promptly, and nothing is left pending")
    func headStops() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:s"], stdin: Self.seq(1...5), environment: env)
        let started = Date()
        let result = try runProcess(["sh", "-c", "\(Evt.binary) subscribe stream:s --group g --create --from beginning | head -n 3"],
                                    environment: Evt.environment(env), timeout: 60)
        // Without noticing the closed pipe it would wait for more until the timeout.
        #expect(Date().timeIntervalSince(started) < 15, "evt noticed the closed pipe while waiting for more")
        #expect(result.stdoutLines.count == 3)
        // All 5 went into the pipe in one flush before head exited: written, so acknowledged.
        #expect(try Self.pendingCount(redis, "s", "g") == 0)

        // A list blocked in BRPOP when head goes: evt stops (no spinning), loses nothing.
        _ = try Evt.run(["publish", "list:q"], stdin: "1\n2\n", environment: env)
        let listStarted = Date()
        let list = try runProcess(["sh", "-c", "\(Evt.binary) subscribe list:q --ack-batch 1 | head -n 1"],
                                  environment: Evt.environment(env), timeout: 60)
        #expect(Date().timeIntervalSince(listStarted) < 15)
        #expect(list.stdoutText == "{\"list\":\"q\",\"value\":1}\n")
        #expect(try redis.cli(["LRANGE", "q", "0", "-1"]).split(separator: "\n").count <= 1, "nothing beyond what the pipe took")
    }

    @Test("--group G | head -1 acknowledges every line written into the pipe, -c 1 exactly one, as README says")
    func headVersusCount() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:s"], stdin: Self.seq(1...5), environment: env)
        let head = try runProcess(["sh", "-c", "\(Evt.binary) subscribe stream:s --group g --create --from beginning | head -1"],
                                  environment: Evt.environment(env), timeout: 20)
        #expect(head.stdoutLines.count == 1)
        // One flush wrote all 5 before head read its line: all 5 were delivered and acknowledged.
        #expect(try Self.pendingCount(redis, "s", "g") == 0)
        let left = try redis.cli(["XREADGROUP", "GROUP", "g", "other", "COUNT", "10", "STREAMS", "s", ">"])
        #expect(!left.contains("-"), "nothing left for g: \(left)")

        let one = try Evt.run(["subscribe", "stream:s", "--group", "g1", "--create", "--from", "beginning", "-c", "1"], environment: env)
        #expect(one.status == 0 && one.stdoutLines.count == 1, "\(one.stderr)")
        #expect(try Self.pendingCount(redis, "s", "g1") == 0)
        let rest = try redis.cli(["XREADGROUP", "GROUP", "g1", "other", "COUNT", "10", "STREAMS", "s", ">"])
        #expect(rest.split(separator: "\n").filter { $0.contains("-") }.count == 4, "the other 4 are still there for g1: \(rest)")

        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        let promise = try #require(readme.range(of: "nothing is acknowledged before it was handed over"))
        let paragraph = readme[promise.lowerBound...].prefix(400)
        #expect(paragraph.contains("| head -1`, every line evt wrote into the pipe is acknowledged") && paragraph.contains("`-c N`"),
                "\(paragraph)")
    }

    @Test("a redis-server restart mid-subscribe loses nothing: evt reconnects and every entry arrives")
    func serverRestart() throws {
        let redis = try RedisServer(persistent: true)
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:s"], stdin: Self.seq(1...100), environment: env)
        // --idle-exit counts from the last entry read, the first 100, through the restart.
        let consumer = try Evt.start(["subscribe", "stream:s", "--group", "g", "--create", "--from", "beginning",
                                      "--idle-exit", "10s", "--retry-for", "30s"], environment: env)
        #expect(waitUntil { consumer.stdoutLinesSoFar.count >= 100 }, "it read the first 100 before the restart")
        redis.stop()
        usleep(300_000)
        try redis.start()
        _ = try Evt.run(["publish", "stream:s"], stdin: Self.seq(101...200), environment: env)
        let result = consumer.wait(timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("reconnected"), "\(result.stderr)")
        #expect(Set(Self.values(result)) == Set(1...200))
        #expect(try Self.pendingCount(redis, "s", "g") == 0)
    }

    @Test("group-create at each kind of position, checked by what subscribe reads")
    func groupCreatePositions() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        for n in 1...6 {
            try redis.cli(["XADD", "s", "\(1_000_000 + n * 1000)-0", "value", String(n)])
        }
        func read(_ group: String) throws -> [Int] {
            Self.values(try Evt.run(["subscribe", "stream:s", "--group", group, "--idle-exit", "300ms"], environment: env))
        }
        let cases: [(String, [Int])] = [("beginning", [1, 2, 3, 4, 5, 6]), ("end", []),
                                         ("1004000-0", [4, 5, 6]), ("@1005000", [5, 6]),
                                         ("@1970-01-01T00:16:43Z", [3, 4, 5, 6])]
        for (index, (position, expected)) in cases.enumerated() {
            let created = try Evt.run(["group-create", "stream:s", "g\(index)", "--from", position], environment: env)
            #expect(created.status == 0, "\(position): \(created.stderr)")
            #expect(try read("g\(index)") == expected, "--from \(position)")
        }
        let again = try Evt.run(["group-create", "stream:s", "g0", "--from", "end"], environment: env)
        #expect(again.status == 0 && again.stderr.contains("already exists"))
        _ = try Evt.run(["group-create", "stream:s", "g0", "--from", "1006000-0", "--reset"], environment: env)
        #expect(try read("g0") == [6])
        let bad = try Evt.run(["group-create", "list:l", "g"], environment: env)
        #expect(bad.status == 2)
    }

    @Test("lists: BRPOP reads in publish order; --processing keeps what was not handed over and delivers it first next time")
    func lists() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "list:q"], stdin: Self.seq(1...6), environment: env)
        let plain = try Evt.run(["subscribe", "list:q", "-c", "2"], environment: env)
        #expect(plain.stdoutText == "{\"list\":\"q\",\"value\":1}\n{\"list\":\"q\",\"value\":2}\n")
        let failing = try Evt.run(["subscribe", "list:q", "--processing", "q-work", "-c", "2", "--exec", "exit 1"], environment: env)
        #expect(failing.status == 1)
        #expect(try redis.cli(["LRANGE", "q-work", "0", "-1"]) == "3\n", "only the item handed over was moved; it stays")
        let resumed = try Evt.run(["subscribe", "list:q", "--processing", "q-work", "-c", "4"], environment: env)
        #expect(resumed.stdoutLines.map { $0.replacingOccurrences(of: "{\"list\":\"q\",\"value\":", with: "") } == ["3}", "4}", "5}", "6}"])
        #expect(try redis.cli(["LLEN", "q-work"]) == "0\n")
        #expect(try redis.cli(["LLEN", "q"]) == "0\n")
    }

    @Test("a plain list: an item whose --exec failed goes back to the queue (at its far end), nothing is lost")
    func listExecFailure() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "list:q"], stdin: Self.seq(1...3), environment: env)
        let result = try Evt.run(["subscribe", "list:q", "-c", "3", "--on-exec-error", "continue",
                                  "--exec", "[ \"$(jq .value)\" != 2 ]"], environment: env)
        #expect(result.status == 1)
        #expect(try redis.cli(["LRANGE", "q", "0", "-1"]) == "2\n", "the failed item is back")
    }

    @Test("-c N limits a channel subscription too, even when a burst arrives at once")
    func channelCount() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        let subscriber = try Evt.start(["subscribe", "channel:burst", "-c", "2"], environment: env)
        #expect(try waitUntil { try redis.cli(["PUBSUB", "NUMSUB", "burst"]) == "burst\n1\n" })
        try redis.cli(["EVAL", "for i = 1, 5 do redis.call('PUBLISH', 'burst', i) end", "0"])
        #expect(subscriber.wait(timeout: 10).stdoutLines.count == 2)
    }

    @Test("channels: several names in one command, and patterns with their pattern in the record")
    func channels() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        let both = try Evt.start(["subscribe", "channel:a", "channel:b", "-c", "2"], environment: env)
        let pattern = try Evt.start(["subscribe", "channel:news.*", "-c", "1"], environment: env)
        #expect(try waitUntil {
            try redis.cli(["PUBSUB", "NUMSUB", "a", "b"]) == "a\n1\nb\n1\n" && redis.cli(["PUBSUB", "NUMPAT"]) == "1\n"
        })
        try redis.cli(["PUBLISH", "a", "1"])
        try redis.cli(["PUBLISH", "b", "hello"])
        try redis.cli(["PUBLISH", "news.eu", "{\"x\":1}"])
        #expect(both.wait(timeout: 10).stdoutText == "{\"channel\":\"a\",\"value\":1}\n{\"channel\":\"b\",\"value\":\"hello\"}\n")
        #expect(pattern.wait(timeout: 10).stdoutText == "{\"channel\":\"news.eu\",\"pattern\":\"news.*\",\"value\":{\"x\":1}}\n")
    }

    @Test("a consumer killed with SIGKILL: claim-pending returns exactly its unacknowledged entries, delivery count 2")
    func claimAfterCrash() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:s"], stdin: Self.seq(1...10), environment: env)
        // Acknowledges 1-3, then reads 4 (its --exec reads one entry at a time) and hangs on it.
        _ = try Evt.run(["subscribe", "stream:s", "--group", "g", "--create", "--from", "beginning", "--consumer", "victim", "-c", "3"], environment: env)
        let handler = StallingHandler(stallAt: 1)
        let victim = try Evt.start(["subscribe", "stream:s", "--group", "g", "--consumer", "victim", "--exec", handler.command],
                                   environment: env)
        #expect(handler.waitUntilStalled())
        victim.signal(SIGKILL)
        _ = victim.wait(timeout: 5)
        handler.killStalled()
        usleep(150_000)

        let dry = try Evt.run(["claim-pending", "stream:s", "g", "--min-idle", "100ms", "--dry-run"], environment: env)
        #expect(dry.stdoutLines.count == 1, "\(dry.stdoutText)")
        #expect(Self.records(dry).allSatisfy { $0["consumer"] as? String == "victim" && $0["deliveries"] as? Int == 1 })
        #expect(try Self.pendingCount(redis, "s", "g") == 1, "--dry-run changes nothing")

        let claimed = try Evt.run(["claim-pending", "stream:s", "g", "--min-idle", "100ms"], environment: env)
        #expect(claimed.status == 0, "\(claimed.stderr)")
        #expect(Self.values(claimed) == [4])
        #expect(Self.records(claimed).allSatisfy { $0["deliveries"] as? Int == 2 })
        #expect(claimed.stderr.contains("claiming as evt-"))
        #expect(try Self.pendingCount(redis, "s", "g") == 0)
    }

    @Test("a stream-group worker killed with SIGKILL while its --exec runs: only that entry stays pending; each one handled before was acknowledged")
    func killedStreamWorkerRedoesOnlyInFlight() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:s"], stdin: Self.seq(1...300), environment: env)
        _ = try Evt.run(["group-create", "stream:s", "g", "--from", "beginning"], environment: env)
        let handler = StallingHandler(stallAt: 50)
        let worker = try Evt.start(["subscribe", "stream:s", "--group", "g", "--consumer", "w", "--exec", handler.command],
                                   environment: env)
        #expect(handler.waitUntilStalled(), "the worker did not reach its 50th entry: \(worker.stderrSoFar)")
        worker.signal(SIGKILL)
        _ = worker.wait(timeout: 10)
        handler.killStalled()

        let handled = handler.handledLines.map { line in
            Int(((try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any])["value"] as! [String: Any])["value"] as! String)!
        }
        #expect(handled == Array(1...50))
        let pending = try redis.cli(["XPENDING", "s", "g", "-", "+", "1000"]).split(separator: "\n")
        #expect(try Self.pendingCount(redis, "s", "g") == 1, "only the entry in flight: \(pending)")
        // The same consumer's next run gives that one again (a second delivery), then goes on.
        let next = try Evt.run(["subscribe", "stream:s", "--group", "g", "--consumer", "w", "-c", "2"], environment: env)
        #expect(Self.values(next) == [50, 51], "\(next.stderr)")
        #expect(Self.records(next).map { $0["deliveries"] as? Int } == [2, nil])
    }

    @Test("a list worker with --processing killed with SIGKILL while its --exec runs: the processing list holds only that item")
    func killedListWorkerRedoesOnlyInFlight() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "list:q"], stdin: Self.seq(1...300), environment: env)
        let handler = StallingHandler(stallAt: 50)
        let worker = try Evt.start(["subscribe", "list:q", "--processing", "q-busy", "--exec", handler.command], environment: env)
        #expect(handler.waitUntilStalled(), "the worker did not reach its 50th item: \(worker.stderrSoFar)")
        worker.signal(SIGKILL)
        _ = worker.wait(timeout: 10)
        handler.killStalled()

        #expect(handler.handledLines == (1...50).map { #"{"list":"q","value":\#($0)}"# })
        #expect(try redis.cli(["LRANGE", "q-busy", "0", "-1"]) == "50\n", "the handled items are gone from it, the rest never came")
        #expect(try redis.cli(["LLEN", "q"]) == "250\n")
        let next = try Evt.run(["subscribe", "list:q", "--processing", "q-busy", "-c", "2"], environment: env)
        #expect(next.stdoutLines == [#"{"list":"q","value":50}"#, #"{"list":"q","value":51}"#], "\(next.stderr)")
    }

    @Test("two list workers with --processing: while the first is busy with one item, the second gets all the others")
    func listWorkersShare() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "list:q"], stdin: Self.seq(1...200), environment: env)
        let busy = StallingHandler(stallAt: 1)
        let first = try Evt.start(["subscribe", "list:q", "--processing", "q-busy-1", "--exec", busy.command], environment: env)
        #expect(busy.waitUntilStalled(), "\(first.stderrSoFar)")
        let handled = redis.scratch.file("second.ndjson")
        // Without items to take, the second worker ends after 3 s idle; with them, at -c 199.
        let second = try Evt.run(["subscribe", "list:q", "--processing", "q-busy-2", "-c", "199", "--idle-exit", "3s",
                                  "--exec", "cat >> '\(handled)'"], environment: env)
        first.signal(SIGKILL)
        _ = first.wait(timeout: 10)
        busy.killStalled()
        #expect(second.status == 0, "\(second.stderr)")
        let lines = ((try? String(contentsOfFile: handled, encoding: .utf8)) ?? "").split(separator: "\n")
        #expect(lines.count == 199, "the second worker was starved: it handled \(lines.count) of 199")
        #expect(try redis.cli(["LRANGE", "q-busy-1", "0", "-1"]) == "1\n", "the first worker took only what it handed over")
        #expect(try redis.cli(["LLEN", "q-busy-2"]) == "0\n")
        #expect(try redis.cli(["LLEN", "q"]) == "0\n")
    }

    @Test("SIGTERM while --exec runs longer than the stop grace: the command finishes, its entry is acknowledged, exit 143")
    func sigtermLetsTheCommandFinish() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:s"], stdin: Self.seq(1...5), environment: env)
        _ = try Evt.run(["group-create", "stream:s", "g", "--from", "beginning"], environment: env)
        let started = redis.scratch.file("started"), go = redis.scratch.file("go"), handled = redis.scratch.file("handled")
        // The second command waits for the test's go, given well after evt's 2 s grace.
        let command = "cat >> '\(handled)'; [ \"$(wc -l < '\(handled)')\" -lt 2 ] || "
            + "{ touch '\(started)'; while [ ! -e '\(go)' ]; do sleep 0.05; done; }"
        let worker = try Evt.start(["subscribe", "stream:s", "--group", "g", "--consumer", "w", "--exec", command], environment: env)
        for _ in 0..<3000 where !FileManager.default.fileExists(atPath: started) { usleep(20_000) }
        worker.signal(SIGTERM)
        usleep(3_000_000)
        FileManager.default.createFile(atPath: go, contents: nil)
        let result = worker.wait(timeout: 30)
        #expect(result.status == 143, "\(result.stderr)")
        #expect(try String(contentsOfFile: handled, encoding: .utf8).split(separator: "\n").count == 2)
        #expect(try Self.pendingCount(redis, "s", "g") == 0, "both handled entries acknowledged, nothing else read: \(result.stderr)")
    }

    /// XINFO CONSUMERS: each consumer's name and pending count.
    static func consumers(_ redis: RedisServer, _ stream: String, _ group: String) throws -> [String: Int] {
        let lines = try redis.cli(["XINFO", "CONSUMERS", stream, group]).split(separator: "\n").map(String.init)
        var result: [String: Int] = [:]
        var name: String?
        for (index, line) in lines.enumerated() where index + 1 < lines.count {
            if line == "name" { name = lines[index + 1] }
            if line == "pending", let name { result[name] = Int(lines[index + 1]) }
        }
        return result
    }

    @Test("claim-pending without --consumer leaves no consumer behind unless entries are pending for it")
    func claimLeavesNoIdleConsumer() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:s"], stdin: Self.seq(1...6), environment: env)
        _ = try Evt.run(["group-create", "stream:s", "g", "--from", "beginning"], environment: env)
        func readAsW(_ count: Int) throws {
            try redis.cli(["XREADGROUP", "GROUP", "g", "w", "COUNT", String(count), "STREAMS", "s", ">"])
            // Idle past --min-idle 100ms, as the server counts it.
            let deadline = Date().addingTimeInterval(10)
            while try redis.cli(["XPENDING", "s", "g", "IDLE", "150", "-", "+", "100", "w"]).split(separator: "\n").count < 4 * count,
                  Date() < deadline { usleep(20_000) }
        }
        func claimer(_ result: ProcessResult) -> String? {
            result.stderr.split(separator: "\n").first { $0.contains("claiming as ") }
                .map { String($0.split(separator: " ")[3]) }
        }
        try readAsW(4)
        // Claims and acknowledges 4 entries; then finds nothing to claim: neither run's consumer stays.
        let claimed = try Evt.run(["claim-pending", "stream:s", "g", "--min-idle", "100ms"], environment: env)
        #expect(claimed.status == 0 && Self.values(claimed) == [1, 2, 3, 4], "\(claimed.stderr)")
        let idle = try Evt.run(["claim-pending", "stream:s", "g", "--min-idle", "100ms"], environment: env)
        #expect(idle.status == 0 && idle.stdoutText.isEmpty, "\(idle.stderr)")
        // A name given with --consumer is the user's: it stays, even with nothing pending.
        try readAsW(2)
        let named = try Evt.run(["claim-pending", "stream:s", "g", "--min-idle", "100ms", "--consumer", "reclaimer"], environment: env)
        #expect(named.status == 0 && Self.values(named) == [5, 6], "\(named.stderr)")
        // Leaves what it claimed pending (--no-ack): its consumer holds it and stays.
        _ = try Evt.run(["publish", "stream:s"], stdin: "7\n", environment: env)
        try readAsW(1)
        let kept = try Evt.run(["claim-pending", "stream:s", "g", "--min-idle", "100ms", "--no-ack"], environment: env)
        #expect(kept.status == 0 && Self.values(kept) == [7], "\(kept.stderr)")

        let claimedName = try #require(claimer(claimed))
        let idleName = try #require(claimer(idle))
        let keptName = try #require(claimer(kept))
        let consumers = try Self.consumers(redis, "s", "g")
        #expect(consumers[claimedName] == nil && consumers[idleName] == nil, "\(consumers)")
        #expect(consumers[keptName] == 1, "\(consumers)")
        #expect(consumers["w"] == 0, "a consumer evt did not make is left alone: \(consumers)")
        #expect(consumers["reclaimer"] == 0, "\(consumers)")
        #expect(consumers.count == 3, "\(consumers)")
        #expect(try Self.pendingCount(redis, "s", "g") == 1)
    }

    @Test("--max-deliveries sends worn-out entries to the dead-letter target, acknowledged only once it took them")
    func deadLetter() throws {
        let redis = try RedisServer()
        let env = ["EVT_REDIS_URL": redis.url]
        _ = try Evt.run(["publish", "stream:s"], stdin: Self.seq(1...3), environment: env)
        _ = try Evt.run(["group-create", "stream:s", "g", "--from", "beginning"], environment: env)
        try redis.cli(["XREADGROUP", "GROUP", "g", "w", "COUNT", "3", "STREAMS", "s", ">"])
        try redis.cli(["SET", "taken", "x"])
        usleep(150_000)
        // The target refuses (WRONGTYPE): nothing is acknowledged, exit 1.
        let refused = try Evt.run(["claim-pending", "stream:s", "g", "--min-idle", "100ms", "--max-deliveries", "2",
                                   "--dead-letter", "list:taken"], environment: env)
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(try Self.pendingCount(redis, "s", "g") == 3)
        usleep(150_000)
        let sent = try Evt.run(["claim-pending", "stream:s", "g", "--min-idle", "100ms", "--max-deliveries", "3",
                                "--dead-letter", "stream:dlq"], environment: env)
        #expect(sent.status == 0, "\(sent.stderr)")
        #expect(sent.stdoutText.isEmpty, "dead-lettered entries are not printed")
        #expect(try Self.pendingCount(redis, "s", "g") == 0)
        let letters = try redis.streamEntries("dlq")
        #expect(letters.count == 3)
        #expect(letters.allSatisfy { $0.fields.contains("deliveries") && $0.fields.contains("3") }, "\(letters)")
        // A file works as the destination too (CONTRACT: an endpoint or else a file path).
        _ = try Evt.run(["publish", "stream:s"], stdin: "4\n", environment: env)
        try redis.cli(["XREADGROUP", "GROUP", "g", "w", "COUNT", "1", "STREAMS", "s", ">"])
        usleep(150_000)
        let file = redis.scratch.file("dlq.ndjson")
        let toFile = try Evt.run(["claim-pending", "stream:s", "g", "--min-idle", "100ms", "--max-deliveries", "2",
                                  "--dead-letter", file], environment: env)
        #expect(toFile.status == 0, "\(toFile.stderr)")
        let kept = try String(contentsOfFile: file, encoding: .utf8)
        #expect(kept.hasPrefix(#"{"stream":"s","id":""#) && kept.contains(#""value":{"value":"4"},"deliveries":2}"#), "\(kept)")
        #expect(try Self.pendingCount(redis, "s", "g") == 0)

        let kafka = try Evt.run(["claim-pending", "topic:t", "g", "--min-idle", "1s"], environment: env)
        #expect(kafka.status == 2 && kafka.stderr.contains("only for Redis stream groups"))
    }
}
