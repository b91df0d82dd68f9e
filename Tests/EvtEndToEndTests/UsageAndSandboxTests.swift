import Foundation
import Testing
import EvtTestSupport

@Suite("usage errors and the sandbox")
struct UsageAndSandboxTests {
    @Test("usage errors exit 2 with a message that says what to do", arguments: [
        (["pubish", "topic:t"], "Did you mean publish?"),
        (["publish", "topic:t", "--kee", "a"], "Did you mean --key?"),
        (["publish", "rediss://h:1/stream/s?ca=x"], "cacert="),
        (["publish", "stream:s", "--key", "a"], "--key is for Kafka"),
        (["publish", "topic:t", "--maxlen", "5"], "--maxlen"),
        (["publish", "topic:t", "--timeout", "5"], "5s"),
        (["tail", "channel:c"], "-f"),
        (["tail", "list:l", "-f"], "subscribe"),
        (["tail"], "SOURCE"),
    ])
    func usageErrors(arguments: [String], hint: String) throws {
        let result = try Evt.run(arguments)
        #expect(result.status == 2)
        #expect(result.stderr.contains(hint), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    @Test("a password is never printed, whether the endpoint is bad or the server is unreachable")
    func passwordNeverPrinted() throws {
        let bad = try Evt.run(["publish", "redis://bob:hunter2@127.0.0.1:1/queue/x"])
        #expect(bad.status == 2)
        let unreachable = try Evt.run(["publish", "redis://bob:hunter2@127.0.0.1:1/stream/x"], stdin: "1\n")
        #expect(unreachable.status == 1)
        let viaEnvironment = try Evt.run(["tail", "stream:x"], environment: ["EVT_REDIS_URL": "redis://:hunter2@127.0.0.1:1"])
        #expect(viaEnvironment.status == 1)
        for result in [bad, unreachable, viaEnvironment] {
            #expect(!result.stderr.contains("hunter2") && !result.stdoutText.contains("hunter2"), "\(result.stderr)")
        }
    }

    @Test("evt help, evt CMD --help and --version print on stdout and exit 0")
    func help() throws {
        let overview = try Evt.run(["help"])
        #expect(overview.status == 0 && overview.stdoutText.contains("publish"))
        let publish = try Evt.run(["publish", "--help"])
        #expect(publish.status == 0 && publish.stdoutText.contains("--dead-letter"))
        #expect(try Evt.run(["--version"]).stdoutText.hasPrefix("evt "))
    }

    @Test("sandbox --run runs the command against fresh brokers with evt on PATH and exits with its status")
    func sandboxRun() throws {
        let result = try Evt.run(["sandbox", "--topic", "demo:2", "--run",
                                  #"echo '{"a":1}' | evt publish topic:demo && evt tail topic:demo -n 1 && echo '{"b":2}' | evt publish stream:s && evt tail stream:s"#],
                                 timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutLines.count == 2)
        #expect(result.stdoutLines[0].hasPrefix(#"{"topic":"demo","partition":"#) && result.stdoutLines[0].hasSuffix(#""value":{"a":1}}"#))
        #expect(result.stdoutLines[1].contains(#""value":{"b":"2"}"#))
        #expect(try Evt.run(["sandbox", "--run", "exit 7"]).status == 7)
    }

    @Test("sandbox without --run prints export lines, runs until SIGTERM (143), then its redis-server is gone")
    func sandboxServes() throws {
        let sandbox = try RunningProcess([Evt.binary, "sandbox"], stdinData: Data())
        var exports = ""
        _ = waitUntil {
            exports = (try? String(contentsOfFile: sandbox.scratchStdout, encoding: .utf8)) ?? ""
            return exports.contains("EVT_REDIS_URL") && exports.contains("EVT_KAFKA_BROKERS")
        }
        #expect(exports.contains("export EVT_KAFKA_BROKERS=127.0.0.1:"))
        let url = exports.split(separator: "\n").first { $0.contains("EVT_REDIS_URL") }!.split(separator: "=")[1]
        let port = String(url.split(separator: ":").last!)
        #expect(try runProcess(["redis-cli", "-p", port, "PING"]).stdoutText == "PONG\n")
        sandbox.signal(SIGTERM)
        #expect(sandbox.wait(timeout: 15).status == 143)
        #expect(try runProcess(["redis-cli", "-p", port, "PING"]).status != 0)
    }

    /// The children of `parent` by /proc: (pid, command name, state).
    static func children(of parent: Int32) -> [(pid: Int32, name: String, state: String)] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry in
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { return nil }
            // "PID (NAME) STATE PPID ...": the name may hold spaces and parentheses.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == parent else { return nil }
            return (pid, String(stat[stat.index(after: open)..<close]), String(fields[0]))
        }
    }

    /// True once `pid` has ended (gone, or a zombie nobody reaped yet).
    static func hasEnded(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }

    @Test("a sandbox killed with SIGKILL takes its redis-server with it")
    func sandboxKilledTakesRedisServer() throws {
        let sandbox = try Evt.start(["sandbox", "--run", "sleep 60"])
        var redis: Int32?
        var command: Int32?
        let started = Date()
        while (redis == nil || command == nil) && Date().timeIntervalSince(started) < 30 && !sandbox.hasExited() {
            let children = Self.children(of: sandbox.pid)
            redis = children.first { $0.name == "redis-server" }?.pid
            command = children.first { $0.name == "sh" || $0.name == "sleep" }?.pid
            usleep(50_000)
        }
        let server = try #require(redis, "the sandbox started redis-server: \(sandbox.stderrSoFar)")
        defer { if let command { kill(command, SIGKILL) } }
        // redis-server works in the sandbox's directory, which a killed evt cannot remove.
        let directory = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(server)/cwd")
        #expect(directory.contains("/evt-sandbox."))
        defer { if directory.contains("/evt-sandbox.") { try? FileManager.default.removeItem(atPath: directory) } }
        sandbox.signal(SIGKILL)
        #expect(sandbox.wait(timeout: 15).status == 128 + SIGKILL)
        let killed = Date()
        while !Self.hasEnded(server) && Date().timeIntervalSince(killed) < 30 { usleep(50_000) }
        #expect(Self.hasEnded(server), "redis-server \(server) outlived the sandbox")
        if !Self.hasEnded(server) { kill(server, SIGKILL) }
    }

    @Test("README's first command runs end to end: its --run script succeeds and prints what README says")
    func readmeQuickStart() throws {
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        let command = try #require(readme.split(separator: "\n").first { $0.hasPrefix("apt-get update && ") })
        let sandbox = try #require(command.range(of: "evt sandbox "))
        // "… evt sandbox --topic orders:4 --run '…'": the same words, with the evt under test.
        let words = String(command[sandbox.upperBound...])
        let run = try #require(words.range(of: "--run '"))
        let topics = words[..<run.lowerBound].split(separator: " ").map(String.init)
        let script = String(words[run.upperBound...].dropLast())   // the closing quote
        let result = try Evt.run(["sandbox"] + topics + ["--run", script], timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdoutLines
        #expect(lines.count == 11, "8 topic records (2 per partition), then 3 stream entries: \(result.stdoutText)")
        #expect(lines.prefix(8).allSatisfy { $0.hasPrefix(#"{"partition":"#) })
        #expect(lines.suffix(3).allSatisfy { $0.hasPrefix(#"{"stream":"orders","id":"#) })
    }

    /// The sh blocks of README's Examples section, as one script.
    static func readmeExamples() throws -> String {
        let script = try readmeShellBlocks("## Examples")
        #expect(script.contains("evt claim-pending"), "the examples were found")
        return script
    }

    @Test("every README example runs as written, in a sandbox, and ends with status 0")
    func readmeExamples() throws {
        let script = try Self.readmeExamples()
        let scratch = Scratch()
        let path = scratch.write("examples.sh", Data(script.utf8))
        let result = try Evt.run(["sandbox", "--topic", "orders:4", "--run", "cd \(scratch.path) && sh -e \(path)"],
                                 timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutText.contains(#""pattern":"news.*""#))
        #expect(result.stdoutText.contains(#""deliveries":1}"#), "claim-pending --dry-run listed the stuck entries")
        #expect(try String(contentsOfFile: scratch.file("handled.ndjson"), encoding: .utf8).split(separator: "\n").count == 3)
    }

    @Test("README's Metrics section runs as written, and its scrape configuration and alert rules pass promtool")
    func readmeMetrics() throws {
        var script = try readmeShellBlocks("## Metrics for Prometheus")
        #expect(script.contains("--listen 127.0.0.1:9464") && script.contains("--metrics 127.0.0.1:9465"))
        // The ports as README writes them may be taken here (tests run side by side).
        for (port, free) in zip(["9464", "9465"], try TestPorts.pick(2)) { script = script.replacingOccurrences(of: port, with: String(free)) }
        let scratch = Scratch()
        let path = scratch.write("metrics.sh", Data(script.utf8))
        let result = try Evt.run(["sandbox", "--run", "cd \(scratch.path) && sh -e \(path)"], timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdoutLines
        #expect(lines.contains(#"evt_up{system="redis",kind="stream",source="payments-log"} 1"#), "\(result.stdoutText)")
        #expect(lines.contains { $0.hasPrefix(#"evt_lag_events{system="redis",kind="stream",source="payments-log",group="billing"} "#) }, "\(result.stdoutText)")
        #expect(lines.last.flatMap { Int($0) }.map { $0 > 10 } == true, "the worker's series were counted: \(result.stdoutText)")

        let blocks = try readmeBlocks("## Metrics for Prometheus", language: "yaml")
        #expect(blocks.count == 2)
        let config = scratch.write("prometheus.yml", Data(blocks[0].utf8))
        _ = scratch.write("evt-rules.yml", Data(blocks[1].utf8))
        let checked = try runProcess(["promtool", "check", "config", config], timeout: 60)
        #expect(checked.status == 0 && checked.stdoutText.contains("SUCCESS: 5 rules found"), "\(checked.stdoutText)\(checked.stderr)")
    }
}
