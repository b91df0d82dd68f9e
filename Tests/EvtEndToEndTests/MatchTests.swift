import Foundation
import Testing
import EvtTestSupport

/// `--match` while reading: tail, replay and subscribe, on a topic and a stream, and what a
/// group read acknowledges.
@Suite("--match filters")
struct MatchTests {
    static func numbers(_ lines: [String]) -> [Int] {
        lines.compactMap { line -> Int? in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let value = object["value"] as? [String: Any] else { return nil }
            return (value["n"] as? Int) ?? (value["n"] as? String).flatMap { Int($0) }
        }.sorted()
    }

    /// 1…30: type signup for multiples of 3, else order; the key user-(n % 10).
    static let input = (1...30).map { #"{"n":\#($0),"type":"\#($0 % 3 == 0 ? "signup" : "order")","user":{"id":"user-\#($0 % 10)"}}"# }
        .joined(separator: "\n") + "\n"

    @Test("a topic: tail, replay by key glob, header glob and value path; all conditions must hold")
    func topic() throws {
        let cluster = try mockCluster(topics: [("events", 2)])
        let environment = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers]
        #expect(try Evt.run(["publish", "topic:events", "--key", "user.id", "-H", "src=web"], stdin: Self.input, environment: environment).status == 0)
        #expect(try Evt.run(["publish", "topic:events", "-H", "src=batch"], stdin: #"{"n":31,"type":"signup"}"# + "\n", environment: environment).status == 0)
        func read(_ arguments: [String]) throws -> [Int] {
            let result = try Evt.run(arguments, environment: environment)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            return Self.numbers(result.stdoutLines)
        }
        #expect(try read(["tail", "topic:events", "-n", "100", "--match", "key=user-3"]) == [3, 13, 23])
        #expect(try read(["replay-from-offset", "topic:events", "beginning", "--match", "value.type=signup"]) == [3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 31])
        #expect(try read(["replay-from-offset", "topic:events", "beginning", "--match", "value.type=signup", "--match", "header.src=w*"])
                == [3, 6, 9, 12, 15, 18, 21, 24, 27, 30])
        #expect(try read(["tail", "topic:events", "-n", "100", "--match", "value.user.id=user-2"]) == [2, 12, 22])
        #expect(try read(["tail", "topic:events", "-n", "100", "--match", "value.user.id=user-*"]) == [], "a value is compared exactly, not as a pattern")
        let bad = try Evt.run(["tail", "topic:events", "--match", "offset=3"], environment: environment)
        #expect(bad.status == 2 && bad.stderr.contains("key=GLOB"), "\(bad.stderr)")
    }

    @Test("a stream group read: filtered-out entries are acknowledged as consumed; with --no-ack-filtered they stay pending")
    func streamGroup() throws {
        let redis = try RedisServer()
        let environment = ["EVT_REDIS_URL": redis.url]
        #expect(try Evt.run(["publish", "stream:s"], stdin: Self.input, environment: environment).status == 0)
        let tail = try Evt.run(["tail", "stream:s", "-n", "100", "--match", "value.user.id=user-5"], environment: environment)
        #expect(Self.numbers(tail.stdoutLines) == [5, 15, 25], "\(tail.stderr)")

        // -c counts what is printed: the first 4 signups, and everything read up to them is consumed.
        let read = try Evt.run(["subscribe", "stream:s", "--group", "g", "--create", "--from", "beginning", "-c", "4",
                                "--ack-batch", "12", "--match", "value.type=signup"], environment: environment)
        #expect(read.status == 0, "\(read.stderr)")
        #expect(Self.numbers(read.stdoutLines) == [3, 6, 9, 12])
        #expect(try redis.cli(["XPENDING", "s", "g"]).hasPrefix("0"), "filtered entries were left pending")

        let keep = try Evt.run(["subscribe", "stream:s", "--group", "h", "--create", "--from", "beginning", "--idle-exit", "1s",
                                "--match", "value.type=signup", "--no-ack-filtered"], environment: environment)
        #expect(keep.status == 0, "\(keep.stderr)")
        #expect(Self.numbers(keep.stdoutLines) == [3, 6, 9, 12, 15, 18, 21, 24, 27, 30])
        #expect(try redis.cli(["XPENDING", "s", "h"]).hasPrefix("20"), "the 20 orders should stay pending")

        let kafkaKeep = try Evt.run(["subscribe", "topic:t", "--group", "g", "--match", "key=x", "--no-ack-filtered"], environment: environment)
        #expect(kafkaKeep.status == 2 && kafkaKeep.stderr.contains("commits positions"), "\(kafkaKeep.stderr)")
    }

    @Test("replay -c N counts the records --match lets through, as subscribe -c does; on a topic and a followed stream")
    func countPrinted() throws {
        let cluster = try mockCluster(topics: [("keyed", 1)])
        let redis = try RedisServer()
        let environment = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        // 1…40 keyed k(n % 4): k3 holds 3, 7, 11, …, 39.
        let keyed = (1...40).map { #"{"n":\#($0),"k":"k\#($0 % 4)"}"# }.joined(separator: "\n") + "\n"
        #expect(try Evt.run(["publish", "topic:keyed", "--key", "k"], stdin: keyed, environment: environment).status == 0)
        let replay = try Evt.run(["replay-from-offset", "topic:keyed", "beginning", "-c", "5", "--match", "key=k3"], environment: environment)
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(Self.numbers(replay.stdoutLines) == [3, 7, 11, 15, 19])

        #expect(try Evt.run(["publish", "stream:s"], stdin: Self.input, environment: environment).status == 0)
        let history = try Evt.run(["replay-from-offset", "stream:s", "beginning", "-f", "-c", "3", "--match", "value.type=signup"],
                                  environment: environment)
        #expect(history.status == 0, "\(history.stderr)")
        #expect(Self.numbers(history.stdoutLines) == [3, 6, 9])
        // Following: 10 signups in the history, the last 2 of 12 among new entries.
        let follower = try Evt.start(["replay-from-offset", "stream:s", "beginning", "-f", "-c", "12", "--match", "value.type=signup"],
                                     environment: environment)
        #expect(waitUntil { follower.stdoutLinesSoFar.count == 10 }, "\(follower.stderrSoFar)")
        let more = (31...40).map { #"{"n":\#($0),"type":"\#($0 % 3 == 0 ? "signup" : "order")"}"# }.joined(separator: "\n") + "\n"
        #expect(try Evt.run(["publish", "stream:s"], stdin: more, environment: environment).status == 0)
        let followed = follower.wait(timeout: 30)
        #expect(followed.status == 0, "\(followed.stderr)")
        #expect(Self.numbers(followed.stdoutLines) == [3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36])
    }

    @Test("replay --to with --match writes only the records that pass, into a stream and a topic")
    func replayInto() throws {
        let cluster = try mockCluster(topics: [("keyed", 1), ("copy", 1)])
        let redis = try RedisServer()
        let environment = ["EVT_KAFKA_BROKERS": cluster.bootstrapServers, "EVT_REDIS_URL": redis.url]
        let keyed = (1...40).map { #"{"n":\#($0),"k":"k\#($0 % 4)"}"# }.joined(separator: "\n") + "\n"
        #expect(try Evt.run(["publish", "topic:keyed", "--key", "k"], stdin: keyed, environment: environment).status == 0)

        let toStream = try Evt.run(["replay-from-offset", "topic:keyed", "beginning", "--to", "stream:x", "--match", "key=k3"],
                                   environment: environment)
        #expect(toStream.status == 0, "\(toStream.stderr)")
        #expect(toStream.stderr.contains("replayed 10 events"), "\(toStream.stderr)")
        let entries = try redis.streamEntries("x")
        #expect(entries.count == 10)
        #expect(entries.allSatisfy { $0.fields.count >= 4 && $0.fields[2] == "key" && $0.fields[3] == "k3" }, "\(entries.prefix(2))")
        #expect(entries.map { $0.fields.last! } == stride(from: 2, to: 40, by: 4).map { "keyed/0/\($0)" })

        // -c counts what is written; a stream entry's fields are its value's paths.
        let limited = try Evt.run(["replay-from-offset", "stream:x", "beginning", "--to", "topic:copy", "-c", "2",
                                   "--match", "value.value.n=11"], environment: environment)
        #expect(limited.status == 0 && limited.stderr.contains("replayed 1 event"), "\(limited.stderr)")
        let copied = try kcatConsume(brokers: cluster.bootstrapServers, topic: "copy")
        #expect(copied.map(\.key) == ["k3"] && copied.first?.payload == #"{"n":11,"k":"k3"}"#, "\(copied)")
    }

    @Test("tail -n with --match: the matches among the last N records read, on a stream")
    func tailWindow() throws {
        let redis = try RedisServer()
        let environment = ["EVT_REDIS_URL": redis.url]
        #expect(try Evt.run(["publish", "stream:s"], stdin: Self.input, environment: environment).status == 0)
        let tail = try Evt.run(["tail", "stream:s", "-n", "10", "--match", "value.type=signup"], environment: environment)
        #expect(tail.status == 0, "\(tail.stderr)")
        #expect(Self.numbers(tail.stdoutLines) == [21, 24, 27, 30])
        let follower = try Evt.start(["tail", "stream:s", "-n", "3", "-f", "--match", "value.type=signup"], environment: environment)
        #expect(waitUntil { follower.stdoutLinesSoFar.count == 1 }, "\(follower.stderrSoFar)")
        let more = (31...36).map { #"{"n":\#($0),"type":"\#($0 % 3 == 0 ? "signup" : "order")"}"# }.joined(separator: "\n") + "\n"
        #expect(try Evt.run(["publish", "stream:s"], stdin: more, environment: environment).status == 0)
        #expect(waitUntil { follower.stdoutLinesSoFar.count == 3 }, "\(follower.stderrSoFar)")
        let (result, _) = follower.stop()
        #expect(Self.numbers(result.stdoutLines) == [30, 33, 36])
    }
}
