import Foundation
import Testing
import EvtTestSupport

/// The progress line of long runs: on a terminal only (a pseudo-terminal from `script`),
/// redrawn in place, and cleared before the final message.
@Suite("progress on a terminal")
struct ProgressTests {
    /// Runs `command` (a shell line) with stdout and stderr on a pseudo-terminal: what the
    /// terminal got.
    static func onTerminal(_ command: String, environment: [String: String]) throws -> String {
        let result = try runProcess(["script", "-qec", command, "/dev/null"], environment: Evt.environment(environment), timeout: 120)
        #expect(result.status == 0, "\(command): \(result.stdoutText)")
        return result.stdoutText
    }

    static let clearLine = "\r\u{1b}[K"

    @Test("publish, replay --to, copy-between and tail -n of 300 000 show a progress line on a terminal, cleared before the summary; none when stderr is not one")
    func progressLines() throws {
        let redis = try RedisServer()
        let environment = ["EVT_REDIS_URL": redis.url]
        let scratch = Scratch()
        let count = 300_000
        let file = scratch.write("in.ndjson", Data((1...count).map { #"{"n":\#($0),"pad":"xxxxxxxxxxxxxxxxxxxxxxxx"}"# }.joined(separator: "\n").utf8 + [10]))
        let evt = Evt.binary

        let published = try Self.onTerminal("\(evt) publish stream:p \(file)", environment: environment)
        #expect(published.contains("evt: sent ") && published.contains("% of the input"), "\(published.debugDescription.prefix(300))")
        #expect(published.hasSuffix(Self.clearLine), "the line stays behind: \(published.debugDescription.suffix(200))")

        let replayed = try Self.onTerminal("\(evt) replay-from-offset stream:p beginning --to stream:q", environment: environment)
        #expect(replayed.contains("evt: replayed "), "\(replayed.debugDescription.prefix(300))")
        #expect(replayed.contains(Self.clearLine + "evt: replayed \(count) events into stream:q"), "the summary shares the progress line: \(replayed.debugDescription.suffix(300))")

        let copied = try Self.onTerminal("\(evt) copy-between stream:p stream:r", environment: environment)
        #expect(copied.contains(Self.clearLine + "evt: copied \(count) events from stream:p to stream:r"), "\(copied.debugDescription.suffix(300))")

        let tailed = try Self.onTerminal("\(evt) tail stream:p -n \(count) > \(scratch.file("tail.ndjson"))", environment: environment)
        #expect(tailed.contains("evt: read "), "\(tailed.debugDescription.prefix(300))")
        #expect(try String(contentsOfFile: scratch.file("tail.ndjson"), encoding: .utf8).split(separator: "\n").count == count)

        // Not a terminal: nothing of it.
        let quiet = try Evt.run(["publish", "stream:s", file], environment: environment)
        #expect(quiet.status == 0 && quiet.stderr.isEmpty, "\(quiet.stderr.prefix(300))")
        let quietReplay = try Evt.run(["replay-from-offset", "stream:p", "beginning", "--to", "stream:t"], environment: environment)
        #expect(quietReplay.stderr == "evt: replayed \(count) events into stream:t\n", "\(quietReplay.stderr.prefix(300))")
    }
}
