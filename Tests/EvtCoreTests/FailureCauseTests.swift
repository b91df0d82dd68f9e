import Testing
@testable import EvtCore

@Suite("Failure causes: from a server's answer to the retry decision and the exit status")
struct FailureCauseTests {
    @Test("a Redis error answer's code word decides its cause, never the text after it")
    func redisErrorReplies() {
        let table: [(String, FailureCause)] = [
            ("LOADING Redis is loading the dataset in memory", .transient(code: "LOADING")),
            ("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.", .transient(code: "BUSY")),
            ("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", .transient(code: "MASTERDOWN")),
            ("TRYAGAIN Multiple keys request during rehashing of slot", .transient(code: "TRYAGAIN")),
            ("CLUSTERDOWN The cluster is down", .transient(code: "CLUSTERDOWN")),
            ("MOVED 3999 127.0.0.1:6381", .moved(code: "MOVED")),
            ("ASK 3999 127.0.0.1:6381", .moved(code: "ASK")),
            ("UNBLOCKED the stream key no longer exists", .moved(code: "UNBLOCKED")),
            ("NOGROUP No such key 'orders' or consumer group 'g' in XREADGROUP with GROUP option", .refused(code: "NOGROUP")),
            ("WRONGTYPE Operation against a key holding the wrong kind of value", .refused(code: "WRONGTYPE")),
            ("ERR no such key", .refused(code: "ERR")),
            // A message that merely mentions a code word is not that code.
            ("ERR the server is LOADING", .refused(code: "ERR")),
            ("", .refused(code: "")),
        ]
        for (message, cause) in table {
            #expect(RedisErrorReply.cause(message) == cause, "\(message)")
            let error = RedisErrorReply.error(message, "XADD on stream s failed")
            #expect(error.cause == cause && error.message == "XADD on stream s failed: \(message)")
        }
        #expect(RedisErrorReply.isClusterNotNow("TRYAGAIN Multiple keys") && RedisErrorReply.isClusterNotNow("CLUSTERDOWN down"))
        #expect(!RedisErrorReply.isClusterNotNow("LOADING Redis is loading") && !RedisErrorReply.isClusterNotNow("ERR TRYAGAIN"))
    }

    @Test("claim-pending: LOADING is not now (retriable), NOGROUP names the missing group by its code")
    func claimerAnswers() {
        let loading = RedisClaimer.failure("XAUTOCLAIM", "LOADING Redis is loading the dataset in memory", stream: "s", group: "g")
        #expect(loading.cause == .transient(code: "LOADING") && loading.isRetriable)
        #expect(loading.message == "XAUTOCLAIM on stream s failed: LOADING Redis is loading the dataset in memory")

        let noGroup = RedisClaimer.failure("XPENDING", "NOGROUP No such key 's' or consumer group 'g'", stream: "s", group: "g")
        #expect(noGroup.cause == .refused(code: "NOGROUP") && !noGroup.isRetriable)
        #expect(noGroup.message == "stream s has no group g (NOGROUP No such key 's' or consumer group 'g').")

        // The word alone, not the text, makes a missing group.
        let other = RedisClaimer.failure("XACK", "ERR NOGROUP mentioned in passing", stream: "s", group: "g")
        #expect(other.cause == .refused(code: "ERR") && other.message.hasPrefix("XACK on stream s failed: "))
    }

    @Test("each cause's exit status and whether a follower (-f) waits and tries again")
    func exitStatusAndRetry() {
        // Without a stop signal in this process, .stopped has no signal's status to take.
        #expect(Signals.exitStatusAfterSignal == nil)
        let table: [(FailureCause, EvtCore.ExitStatus, retriable: Bool)] = [
            (.connectionLost, .failure, true),
            (.transient(code: "LOADING"), .failure, true),
            (.transient(code: "CLUSTERDOWN"), .failure, true),
            (.moved(code: "MOVED"), .failure, true),
            (.moved(code: "ASK"), .failure, true),
            (.refused(code: "WRONGTYPE"), .failure, false),
            (.refused(code: ""), .failure, false),
            (.claimed, .failure, false),
            (.badInput, .badInput, false),
            (.usage, .usage, false),
            (.stopped, .failure, false),
        ]
        for (cause, status, retriable) in table {
            let error = EvtError(cause, "something")
            #expect(error.status == status, "\(cause)")
            #expect(cause.isRetriable == retriable && error.isRetriable == retriable, "\(cause)")
            #expect((error as Error).isRetriable == retriable, "\(cause)")
        }
        #expect(EvtCore.ExitStatus.failure.rawValue == 1 && ExitStatus.usage.rawValue == 2 && ExitStatus.badInput.rawValue == 3)
        struct Other: Error {}
        #expect(!(Other() as Error).isRetriable)
    }

    @Test("a delivery tally's cause: lost when every trouble may go right on a retry, else refused")
    func tallyCause() {
        let lost = DeliveryTally()
        lost.delivered()
        lost.failed(line: 2, reason: "not sent: the connection was lost first", cause: .connectionLost)
        lost.failed(line: 3, reason: "LOADING Redis is loading", cause: .transient(code: "LOADING"))
        lost.unconfirmed(line: 4)
        #expect(lost.onlyRetriableTrouble && lost.cause == .connectionLost)

        let refused = DeliveryTally()
        refused.failed(line: 1, reason: "LOADING Redis is loading", cause: .transient(code: "LOADING"))
        refused.failed(line: 2, reason: "WRONGTYPE Operation against a key", cause: .refused(code: "WRONGTYPE"))
        #expect(!refused.onlyRetriableTrouble && refused.cause == .refused(code: ""))

        let onlyUnconfirmed = DeliveryTally()
        onlyUnconfirmed.unconfirmed(line: 1)
        #expect(onlyUnconfirmed.cause == .connectionLost)
    }
}
