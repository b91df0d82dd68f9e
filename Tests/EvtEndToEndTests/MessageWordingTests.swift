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
}
