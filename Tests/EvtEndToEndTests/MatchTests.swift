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
}
