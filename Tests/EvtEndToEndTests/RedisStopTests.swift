import Foundation
import Testing
import EvtCore
import EvtTestSupport

/// SIGTERM ends every Redis command within a few seconds (Signals.graceMs, 2 s, for answers
/// still due, then 143; the tests allow 5 s on a loaded machine) while the server answers nothing: stopped with SIGSTOP (it keeps accepting
/// connections), behind a TLS port, or not running at all.
@Suite("stop signals while Redis does not answer")
struct RedisStopTests {
    static func stopsPromptly(_ arguments: [String], environment: [String: String], stdin: String? = nil,
                              expecting status: Int32 = 143) throws -> ProcessResult {
        let process = try Evt.start(arguments, environment: environment)
        if let stdin { process.write(Data(stdin.utf8)) }
        usleep(1_000_000)
        #expect(!process.hasExited(), "\(arguments) ended before the signal: \(process.stderrSoFar)")
        let (result, took) = process.stop()
        #expect(took < 5, "\(arguments) took \(took) s after SIGTERM")
        #expect(result.status == status, "\(arguments): \(result.stderr)")
        return result
    }

    @Test("a stopped (SIGSTOP) server: every reading command and group command exits 143 within ~2 s", arguments: [
        ["tail", "stream:s"], ["tail", "stream:s", "-f"], ["subscribe", "stream:s", "--group", "g"],
        ["subscribe", "list:l"], ["subscribe", "channel:c"], ["group-create", "stream:s", "g2"],
        ["claim-pending", "stream:s", "g", "--min-idle", "1s"], ["replay-from-offset", "stream:s", "beginning"],
        ["replay-from-offset", "stream:s", "beginning", "--to", "stream:t"],
        ["copy-between", "stream:s", "topic:t", "--checkpoint", "c", "-f"],
    ])
    func pausedServer(arguments: [String]) throws {
        let redis = try RedisServer()
        try redis.cli(["XADD", "s", "*", "a", "1"])
        try redis.cli(["XGROUP", "CREATE", "s", "g", "0"])
        try redis.pause()
        defer { redis.resume() }
        let result = try Self.stopsPromptly(arguments, environment: ["EVT_REDIS_URL": redis.url,
                                                                     "EVT_KAFKA_BROKERS": "127.0.0.1:\(try freeLoopbackPort())"])
        #expect(result.stdout.isEmpty, "nothing half-read is printed")
    }

    @Test("a stopped server behind TLS: the handshake wait ends at once with 143")
    func pausedTLSServer() throws {
        let redis = try RedisServer(transport: .mutualTLS)
        try redis.pause()
        defer { redis.resume() }
        _ = try Self.stopsPromptly(["tail", "stream:s", "-f"], environment: redis.environment)
    }

    @Test("a server that is not running: a -f bridge that waits for it stops with 143 at once")
    func unreachableServer() throws {
        let port = try freeLoopbackPort()
        let result = try Self.stopsPromptly(["copy-between", "stream:s", "topic:t", "--checkpoint", "c", "-f"],
                                            environment: ["EVT_REDIS_URL": "redis://127.0.0.1:\(port)",
                                                          "EVT_KAFKA_BROKERS": "127.0.0.1:\(try freeLoopbackPort())"])
        #expect(result.stderr.contains("retrying every second"), "\(result.stderr)")
    }

    @Test("a stop while subscribe waits to reconnect to a killed server is a stop: 143 / 130, within a few seconds", arguments: [
        (["subscribe", "stream:s", "--group", "g"], SIGTERM, Int32(143)), (["subscribe", "list:l"], SIGTERM, Int32(143)),
        (["subscribe", "stream:s", "--group", "g"], SIGINT, Int32(130)),
    ])
    func stopWhileReconnecting(arguments: [String], signal: Int32, status: Int32) throws {
        let redis = try RedisServer()
        try redis.cli(["XADD", "s", "*", "a", "1"])
        try redis.cli(["XGROUP", "CREATE", "s", "g", "$"])
        let process = try Evt.start(arguments + ["--retry-for", "60s"], environment: ["EVT_REDIS_URL": redis.url])
        defer { if !process.hasExited() { process.signal(SIGKILL) } }
        // evt is connected and waiting for entries (a blocked read in CLIENT LIST); then the
        // server goes away without a word.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !process.hasExited(),
              !(try redis.cli(["CLIENT", "LIST"])).contains("flags=b") { usleep(20_000) }
        #expect(try redis.cli(["CLIENT", "LIST"]).contains("flags=b"), "\(process.stderrSoFar)")
        redis.kill()
        #expect(process.waitForStderr(containing: "retrying for up to", timeout: 30), "\(process.stderrSoFar)")
        let (result, took) = process.stop(signal)
        #expect(took < 5, "\(arguments) took \(took) s after the signal")
        #expect(result.status == status, "\(arguments): \(result.stderr)")
        #expect(result.stderr.contains("stopped while reconnecting"), "\(result.stderr)")
    }

    @Test("publish to a stopped server: 143 within ~2 s, unanswered lines named unconfirmed, unread input not delivered", arguments: [5_000, 300_000])
    func pausedPublish(lines: Int) throws {
        let redis = try RedisServer()
        let process = try Evt.start(["publish", "stream:s"], environment: ["EVT_REDIS_URL": redis.url])
        defer { if !process.hasExited() { process.signal(SIGKILL) } }
        // evt has asked what the server is (CLUSTER SLOTS) and waits for input; then the server
        // stops answering, and evt is given few lines (all sent: it waits for their answers at
        // the end of its input) or more than it keeps in flight (input left unread).
        #expect(waitUntil {
            KernelView.connectedPorts(process.pid).contains(redis.port) && KernelView.unreadBytes(port: redis.port) == (0, 0)
                && KernelView.processState(process.pid) == "S"
        }, "\(process.stderrSoFar)")
        try redis.pause()
        defer { redis.resume() }
        process.feed(Data(Self.lines(lines).utf8))
        #expect(waitUntil { KernelView.unreadBytes(port: redis.port).toServer > 0 && KernelView.processState(process.pid) == "S" },
                "evt never sent the lines")
        let (result, took) = process.stop()
        #expect(took < 5, "took \(took) s after SIGTERM")
        #expect(result.status == 143, "\(result.stderr)")
        if lines > 100_000 { #expect(result.stderr.contains("any input after it was not read"), "\(result.stderr)") }
        #expect(result.stderr.contains("stopped waiting for the answer at the stop signal"), "\(result.stderr)")
        #expect(!reportedLines(in: result.stderr, marker: "unconfirmed").isEmpty, "\(result.stderr)")
    }

    static func lines(_ count: Int) -> String { (1...count).map { "{\"n\":\($0)}" }.joined(separator: "\n") + "\n" }
}
