import Foundation
import Testing
import EvtTestSupport

@Suite("publish to Redis")
struct PublishRedisTests {
    @Test("10 000 lines become stream entries whose fields are the objects' members, checked with redis-cli XRANGE")
    func streamFields() throws {
        let redis = try RedisServer()
        let lines = sampleLines(10_000)
        let result = try Evt.run(["publish", "stream:orders"], stdin: ndjson(lines), environment: ["EVT_REDIS_URL": redis.url])
        #expect(result.status == 0, "\(result.stderr)")
        let entries = try redis.streamEntries("orders")
        #expect(entries.count == 10_000)
        for (index, entry) in entries.enumerated() {
            let n = index + 1
            #expect(entry.fields == ["n", "\(n)", "user", #"{"id":"u\#(n % 50)","name":"user \#(n % 50)"}"#,
                                     "type", "order.created", "amount", "\(n % 997).5", "note", String(repeating: "x", count: 90)])
        }
    }

    @Test("stream:* and list:* with --envelope: each record goes to the key it names, in order per key; a tail of two streams restores")
    func keyFromRecord() throws {
        let redis = try RedisServer()
        let environment = ["EVT_REDIS_URL": redis.url]
        let lines = (1...300).map { #"{"stream":"s\#($0 % 3)","value":{"n":"\#($0)"}}"# }
        let result = try Evt.run(["publish", "stream:*", "--envelope"], stdin: ndjson(lines), environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        for key in 0..<3 {
            #expect(try redis.streamEntries("s\(key)").map { $0.fields } == (1...300).filter { $0 % 3 == key }.map { ["n", String($0)] })
        }
        // evt's own records of two streams, back into two other streams through one publish.
        let dump = try Evt.run(["tail", "stream:s1", "-n", "100"], environment: environment).stdoutText
            .replacingOccurrences(of: #""stream":"s1""#, with: #""stream":"copy1""#)
        #expect(try Evt.run(["publish", "stream:*", "--envelope"], stdin: dump, environment: environment).status == 0)
        #expect(try redis.streamEntries("copy1").map { $0.fields } == (1...300).filter { $0 % 3 == 1 }.map { ["n", String($0)] })
        let list = try Evt.run(["publish", "list:*", "--envelope"], stdin: #"{"list":"q1","value":"a"}"# + "\n" + #"{"list":"q2","value":"b"}"# + "\n",
                               environment: environment)
        #expect(list.status == 0, "\(list.stderr)")
        #expect(try redis.cli(["LRANGE", "q1", "0", "-1"]) == "a\n" && (try redis.cli(["LRANGE", "q2", "0", "-1"])) == "b\n")
    }

    @Test("stream:* without --envelope is a usage error; a record naming no stream is bad line N, every line before it delivered; --wait-replicas on a channel is a usage error")
    func keyFromRecordErrors() throws {
        let redis = try RedisServer()
        let environment = ["EVT_REDIS_URL": redis.url]
        let plain = try Evt.run(["publish", "stream:*"], stdin: "{}\n", environment: environment)
        #expect(plain.status == 2 && plain.stderr.contains("--envelope"), "\(plain.stderr)")
        let input = #"{"stream":"a","value":1}"# + "\n" + #"{"value":2}"# + "\n" + #"{"stream":"a","value":3}"# + "\n"
        let missing = try Evt.run(["publish", "stream:*", "--envelope"], stdin: input, environment: environment)
        #expect(missing.status == 3, "\(missing.stderr)")
        #expect(missing.stderr.contains("line 2: the record names no stream"), "\(missing.stderr)")
        #expect(try redis.streamEntries("a").map { $0.fields } == [["value", "1"]])
        let channel = try Evt.run(["publish", "channel:news", "--wait-replicas", "1"], stdin: "1\n", environment: environment)
        #expect(channel.status == 2 && channel.stderr.contains("--wait-replicas"), "\(channel.stderr)")
        // A standalone server has no replica: WAIT times out, and the lines are named.
        let unreplicated = try Evt.run(["publish", "stream:w", "--wait-replicas", "1", "--timeout", "1s"], stdin: "1\n2\n", environment: environment)
        #expect(unreplicated.status == 1, "\(unreplicated.stderr)")
        #expect(unreplicated.stderr.contains("only 0 of 1 replicas had it"), "\(unreplicated.stderr)")
        #expect(reportedLines(in: unreplicated.stderr, marker: "not delivered") == [1, 2], "\(unreplicated.stderr)")
    }

    @Test("a line that is not an object becomes one field named value; escapes are decoded; --maxlen trims")
    func nonObjectsAndEscapes() throws {
        let redis = try RedisServer()
        let input = "[1,2]\n\"text\"\n{\"a\\nb\":\"tab\\there \\u00e9\"}\n"
        let result = try Evt.run(["publish", "\(redis.url)/stream/misc"], stdin: input)
        #expect(result.status == 0, "\(result.stderr)")
        let entries = try redis.streamEntries("misc")
        #expect(entries.map(\.fields) == [["value", "[1,2]"], ["value", "\"text\""], ["a\nb", "tab\there é"]])

        let trimmed = try Evt.run(["publish", "stream:capped", "--maxlen", "10"], stdin: ndjson(sampleLines(2000)),
                                  environment: ["EVT_REDIS_URL": redis.url])
        #expect(trimmed.status == 0)
        let length = Int(try redis.cli(["XLEN", "capped"]).trimmingCharacters(in: .whitespacesAndNewlines))!
        #expect(length < 2000 && length >= 10)
    }

    @Test("a list gets LPUSH, so the first line is at the tail (FIFO for BRPOP readers)")
    func listOrder() throws {
        let redis = try RedisServer()
        let result = try Evt.run(["publish", "list:jobs"], stdin: "{\"job\":1}\n{\"job\":2}\n\n{\"job\":3}\r\n",
                                 environment: ["EVT_REDIS_URL": redis.url])
        #expect(result.status == 0)
        #expect(try redis.cli(["LRANGE", "jobs", "0", "-1"]) == "{\"job\":3}\n{\"job\":2}\n{\"job\":1}\n")
    }

    @Test("a channel message reaches a redis-cli subscriber; with --require-subscribers and none, exit 1")
    func channel() throws {
        let redis = try RedisServer()
        let subscriber = try RunningProcess(["redis-cli", "-p", String(redis.port), "SUBSCRIBE", "news"], stdinData: Data())
        defer { subscriber.signal(SIGTERM); _ = subscriber.wait(timeout: 5) }
        #expect(try waitUntil { try redis.cli(["PUBSUB", "NUMSUB", "news"]).contains("\n1") })
        let result = try Evt.run(["publish", "channel:news", "--require-subscribers"], stdin: "{\"headline\":\"hi\"}\n",
                                 environment: ["EVT_REDIS_URL": redis.url])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(waitUntil { subscriber.stdoutLinesSoFar.contains { $0.contains("{\"headline\":\"hi\"}") } })
        subscriber.signal(SIGTERM)
        #expect(subscriber.wait(timeout: 10).stdoutText.contains("{\"headline\":\"hi\"}"))

        let nobody = try Evt.run(["publish", "channel:empty", "--require-subscribers"], stdin: "1\n2\n",
                                 environment: ["EVT_REDIS_URL": redis.url])
        #expect(nobody.status == 1)
        #expect(reportedLines(in: nobody.stderr, marker: "not delivered") == [1, 2], "\(nobody.stderr)")
    }

    @Test("a bad line at 5 001 exits 3, lines 1-5000 are in the stream and nothing after")
    func badLine() throws {
        let redis = try RedisServer()
        var lines = sampleLines(10_000)
        lines[5000] = #"{"n":5001,}"#
        let result = try Evt.run(["publish", "stream:s"], stdin: ndjson(lines), environment: ["EVT_REDIS_URL": redis.url])
        #expect(result.status == 3)
        #expect(result.stderr.contains("line 5001"), "\(result.stderr)")
        #expect(try redis.streamEntries("s").map { Int($0.fields[1])! } == Array(1...5000))
    }

    @Test("--dry-run checks every line as publish would and sends nothing: bad lines named (exit 3), good input exit 0, no server needed")
    func dryRun() throws {
        let redis = try RedisServer()
        var lines = sampleLines(2_000)
        lines[99] = #"{"n":100,}"#
        lines[1499] = "not json"
        let checked = try Evt.run(["publish", "stream:s", "--dry-run", "--on-error", "skip"], stdin: ndjson(lines),
                                  environment: ["EVT_REDIS_URL": redis.url])
        #expect(checked.status == 3)
        #expect(checked.stdout.isEmpty)
        #expect(checked.stderr.contains("line 100:") && checked.stderr.contains("line 1500:"), "\(checked.stderr)")
        #expect(checked.stderr.contains("2000 lines read, 1998 events checked, 2 bad; nothing was sent"), "\(checked.stderr)")
        #expect(try redis.cli(["EXISTS", "s"]).trimmingCharacters(in: .whitespacesAndNewlines) == "0")

        // No broker listens on port 1: a dry run never connects.
        let good = try Evt.run(["publish", "topic:t", "--dry-run", "--key", "user.id"], stdin: ndjson(sampleLines(500)),
                               environment: ["EVT_KAFKA_BROKERS": "127.0.0.1:1"])
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stderr.contains("500 lines read, 500 events checked, all good"), "\(good.stderr)")

        let both = try Evt.run(["publish", "stream:s", "--dry-run", "--dead-letter", "bad.ndjson"], stdin: "{}\n",
                               environment: ["EVT_REDIS_URL": redis.url])
        #expect(both.status == 2 && both.stderr.contains("--dry-run sends nothing"), "\(both.stderr)")
    }

    @Test("--dead-letter to an endpoint: bad lines become events there, with their line numbers; a DLQ that refuses them means exit 1")
    func deadLetterEndpoint() throws {
        let redis = try RedisServer()
        var input = Data("{\"a\":1}\nnot json\n{\"b\":2}\n".utf8)
        input += Data([0x22, 0xFF, 0x22, 0x0A])   // a JSON string holding a byte that is not UTF-8
        let result = try Evt.run(["publish", "stream:s", "--on-error", "skip", "--dead-letter", "list:dlq"],
                                 stdin: input, environment: ["EVT_REDIS_URL": redis.url])
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr.contains("2 bad lines kept in list:dlq"), "\(result.stderr)")
        #expect(try redis.streamEntries("s").map(\.fields) == [["a", "1"], ["b", "2"]])
        let kept = try redis.cli(["LRANGE", "dlq", "0", "-1"]).split(separator: "\n").reversed().map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        #expect(kept.map { $0["line"] as? Int } == [2, 4])
        #expect(kept[0]["input"] as? String == "not json")
        #expect(kept[1]["input_b64"] as? String == Data([0x22, 0xFF, 0x22]).base64EncodedString())

        try redis.cli(["SET", "taken", "x"])
        let refused = try Evt.run(["publish", "stream:s", "--on-error", "skip", "--dead-letter", "list:taken"],
                                  stdin: "{}\nbad\n", environment: ["EVT_REDIS_URL": redis.url])
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("did not take every bad line"), "\(refused.stderr)")
        #expect(reportedLines(in: refused.stderr, marker: "not delivered") == [2], "\(refused.stderr)")
    }

    @Test("a Redis error reply (WRONGTYPE) is not delivered: exit 1 naming the lines")
    func serverErrorReply() throws {
        let redis = try RedisServer()
        try redis.cli(["SET", "taken", "x"])
        let result = try Evt.run(["publish", "stream:taken"], stdin: "1\n2\n", environment: ["EVT_REDIS_URL": redis.url])
        #expect(result.status == 1)
        #expect(reportedLines(in: result.stderr, marker: "not delivered") == [1, 2])
        #expect(result.stderr.contains("WRONGTYPE"))
    }

    @Test("redis-server killed mid-publish: exit 1, lost lines named, every delivered line in the stream exactly once")
    func serverKilled() throws {
        let redis = try RedisServer(persistent: true)
        let lines = sampleLines(200_000)
        let evt = try Evt.start(["publish", "stream:s"], environment: ["EVT_REDIS_URL": redis.url])
        evt.write(ndjson(Array(lines[0..<20_000])))
        #expect(try waitUntil { (Int(try redis.cli(["XLEN", "s"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 1000 })
        redis.kill()
        // Keep feeding until evt notices and stops reading.
        // (wait() closes stdin, so the feeder must be done first.)
        let fed = DispatchSemaphore(value: 0)
        let feeder = Thread {
            var offset = 20_000
            while offset < lines.count && !evt.hasExited() {
                evt.write(ndjson(Array(lines[offset..<min(offset + 5_000, lines.count)])))
                offset += 5_000
            }
            fed.signal()
        }
        feeder.start()
        fed.wait()
        let result = evt.wait(timeout: 60)
        #expect(result.status == 1, "\(result.stderr)")
        let notDelivered = reportedLines(in: result.stderr, marker: "not delivered")
        let unconfirmed = reportedLines(in: result.stderr, marker: "unconfirmed")
        let stopLine = result.stderr.firstMatch(of: /after line (\d+)/).map { Int($0.1)! }
        #expect(stopLine != nil, "\(result.stderr)")
        #expect(!unconfirmed.union(notDelivered).isEmpty)

        try redis.start()   // appendonly + fsync always: every acknowledged XADD is back
        let stored = try redis.streamEntries("s").map { Int($0.fields[1])! }
        #expect(stored.count == Set(stored).count, "no line stored twice")
        let delivered = Set(1...max(stopLine ?? 1, 1)).subtracting(notDelivered).subtracting(unconfirmed)
        #expect(delivered.isSubset(of: Set(stored)), "every line reported delivered is stored")
    }
}
