import Foundation
import Testing
import EvtTestSupport

/// Messages a user read and tripped on: each says what went wrong and what to do, in
/// well-formed sentences, about the server and the names that were used.
@Suite("message wording")
struct MessageWordingTests {
    @Test("a server's message that ends with a period is not followed by a second one (user is disabled. Check)")
    func noDoublePeriod() throws {
        let redis = try RedisServer()
        try redis.cli(["ACL", "SETUSER", "alice", "on", ">right-pw", "~*", "&*", "+@all"])
        let refused = try Evt.run(["tail", "redis://alice:wrong-pw@127.0.0.1:\(redis.port)/stream/s"])
        #expect(refused.status == 1)
        // Redis says "WRONGPASS invalid username-password pair or user is disabled."
        #expect(refused.stderr.contains("user is disabled. Check the endpoint"), "\(refused.stderr)")
        #expect(!refused.stderr.contains(".."), "\(refused.stderr)")
        #expect(!refused.stderr.contains("wrong-pw"))
    }

    @Test("stream:* with a record that names no stream says what it needs, with no column")
    func keyFromRecordWithoutColumn() throws {
        let result = try Evt.run(["publish", "stream:*", "--envelope", "--dry-run"], stdin: #"{"value":1}"# + "\n")
        #expect(result.status == 3)
        #expect(result.stderr.contains(#"line 1: the record names no stream (a non-empty "stream" member), which stream:* needs"# + "\n"),
                "\(result.stderr)")
        #expect(!result.stderr.contains("at column"), "\(result.stderr)")
    }

    @Test("subscribe -f says subscribe always follows, instead of suggesting --from; another command's letter is named")
    func unknownShortOption() throws {
        for spelled in ["-f", "--follow"] {
            let result = try Evt.run(["subscribe", "stream:s", spelled])
            #expect(result.status == 2)
            #expect(result.stderr.contains("evt subscribe always follows: it runs until -c N, --idle-exit or a signal stops it."),
                    "\(result.stderr)")
            #expect(!result.stderr.contains("--from"), "\(result.stderr)")
        }
        let lines = try Evt.run(["publish", "topic:t", "-n", "5"])
        #expect(lines.status == 2 && lines.stderr.contains("-n is --lines of evt tail."), "\(lines.stderr)")
        #expect(!lines.stderr.contains("Did you mean"), "\(lines.stderr)")
    }

    @Test("subscribe's hint to create a missing group names the server that was used, and following it works")
    func groupCreateHintNamesTheServer() throws {
        let usual = try RedisServer()
        let other = try RedisServer()
        let environment = ["EVT_REDIS_URL": usual.url]
        try other.cli(["XADD", "s", "*", "n", "1"])
        let missing = try Evt.run(["subscribe", "redis://127.0.0.1:\(other.port)/stream/s", "--group", "g", "-c", "1"],
                                  environment: environment)
        #expect(missing.status == 1)
        let hint = try #require(missing.stderr.range(of: "Create it with evt group-create "), "\(missing.stderr)")
        let words = missing.stderr[hint.upperBound...].prefix { $0 != "[" }.split(separator: " ").map(String.init)
        #expect(words == ["redis://127.0.0.1:\(other.port)/stream/s", "g"], "\(missing.stderr)")
        // The hint as written creates the group there, whatever EVT_REDIS_URL says.
        #expect(try Evt.run(["group-create"] + words + ["--from", "beginning"], environment: environment).status == 0)
        #expect(try other.cli(["XINFO", "GROUPS", "s"]).contains("g"))
        #expect(try usual.cli(["EXISTS", "s"]) == "0\n")
        let consumed = try Evt.run(["subscribe", words[0], "--group", "g", "-c", "1"], environment: environment)
        #expect(consumed.status == 0 && consumed.stdoutLines.count == 1, "\(consumed.stderr)")
    }

    @Test("lag of a stream that does not exist, or of a list named as a stream, says so and exits 1")
    func lagOfMissingStream() throws {
        let redis = try RedisServer()
        try redis.cli(["RPUSH", "jobs", "a"])
        let missing = try Evt.run(["lag", "stream:nonexist", "--format", "json"], environment: ["EVT_REDIS_URL": redis.url])
        #expect(missing.status == 1 && missing.stdout.isEmpty)
        #expect(missing.stderr.contains("stream nonexist does not exist on redis://127.0.0.1:\(redis.port), so it has no lag."),
                "\(missing.stderr)")
        #expect(!missing.stderr.contains("ERR no such key"), "\(missing.stderr)")
        let list = try Evt.run(["lag", "stream:jobs", "--format", "json"], environment: ["EVT_REDIS_URL": redis.url])
        #expect(list.status == 1)
        #expect(list.stderr.contains("jobs on redis://127.0.0.1:\(redis.port) is a Redis list, not a stream")
                && list.stderr.contains("name it redis://127.0.0.1:\(redis.port)/list/jobs."), "\(list.stderr)")
        #expect(!list.stderr.contains("WRONGTYPE"), "\(list.stderr)")
    }
}
