import Foundation
import EvtCore

/// What a finished process left behind.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: Data
    public let stderr: String

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stdoutLines: [String] { stdoutText.split(separator: "\n").map(String.init) }
}

/// A temporary directory for one test, removed when the value goes away.
public final class Scratch: @unchecked Sendable {
    public let path: String

    public init(path: String = NSTemporaryDirectory() + "evt-test-" + UUID().uuidString) {
        self.path = path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    public func file(_ name: String) -> String { path + "/" + name }

    @discardableResult
    public func write(_ name: String, _ data: Data) -> String {
        let target = file(name)
        _ = FileManager.default.createFile(atPath: target, contents: data)
        return target
    }
}

/// Runs a program with posix_spawn (a clean signal mask, see SWIFT-C-NOTES), stdin from a
/// file, stdout and stderr to files, and kills it if it outlives `timeout`.
public func runProcess(_ arguments: [String], stdin: Data = Data(), environment: [String: String]? = nil,
                       timeout: Double = 60) throws -> ProcessResult {
    let running = try RunningProcess(arguments, stdinData: stdin, environment: environment)
    return running.wait(timeout: timeout)
}

/// A started process whose stdin the test can feed bit by bit (for faults mid-publish).
public final class RunningProcess: @unchecked Sendable {
    let child: ChildProcess
    let scratch = Scratch()
    private var stdinWriter: FileHandle?

    public var pid: Int32 { child.pid }

    /// Feeding a child that already exited must fail the write (EPIPE), not kill the test run.
    private static let ignoreBrokenPipes: Void = { _ = Glibc.signal(SIGPIPE, SIG_IGN) }()

    /// With `stdinData` nil, stdin is a pipe: `write(_:)` feeds it, `closeStdin()` ends it.
    public init(_ arguments: [String], stdinData: Data? = nil, environment: [String: String]? = nil) throws {
        _ = RunningProcess.ignoreBrokenPipes
        let stdinFD: Int32
        if let stdinData {
            let path = scratch.write("stdin", stdinData)
            stdinFD = open(path, O_RDONLY)
        } else {
            var fds: [Int32] = [0, 0]
            _ = pipe(&fds)
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
            stdinFD = fds[0]
            stdinWriter = FileHandle(fileDescriptor: fds[1], closeOnDealloc: true)
        }
        let out = open(scratch.file("stdout"), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let err = open(scratch.file("stderr"), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(stdinFD); close(out); close(err) }
        child = try ChildProcess.spawn(arguments, environment: environment, stdin: stdinFD, stdout: out, stderr: err)
    }

    public func write(_ data: Data) { try? stdinWriter?.write(contentsOf: data) }
    public func closeStdin() { try? stdinWriter?.close(); stdinWriter = nil }

    /// Set once a `feed` thread holds the pipe: `wait()` closes stdin only then.
    private var feeding: DispatchSemaphore?

    /// Writes `data` to stdin from a thread of its own, then closes stdin: for more input
    /// than a pipe holds while the test goes on. (A write blocked in the kernel keeps the pipe
    /// open until it ends, when `wait()` closes stdin meanwhile.)
    public func feed(_ data: Data) {
        let started = DispatchSemaphore(value: 0)
        feeding = started
        let writer = stdinWriter
        Thread {
            started.signal()
            try? writer?.write(contentsOf: data)
            self.closeStdin()
        }.start()
    }
    public func signal(_ number: Int32) { child.send(number) }
    public func hasExited() -> Bool { child.tryWait() != nil }

    public var scratchStdout: String { scratch.file("stdout") }

    /// The complete lines the process has written to its stdout so far.
    public var stdoutLinesSoFar: [String] {
        guard let data = FileManager.default.contents(atPath: scratchStdout),
              let end = data.lastIndex(of: UInt8(ascii: "\n")) else { return [] }
        return String(decoding: data[...end], as: UTF8.self).split(separator: "\n").map(String.init)
    }

    public var stderrSoFar: String {
        (try? String(contentsOfFile: scratch.file("stderr"), encoding: .utf8)) ?? ""
    }

    /// Polls stderr until it contains `text` (true) or `timeout` seconds passed, or the
    /// process exited first (false).
    public func waitForStderr(containing text: String, timeout: Double = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if stderrSoFar.contains(text) { return true }
            if hasExited() { return stderrSoFar.contains(text) }
            usleep(20_000)
        }
        return false
    }

    /// Sends `signal` and waits for the exit (as `wait`): the result, and how many seconds the
    /// process took to end after the signal.
    public func stop(_ signal: Int32 = SIGTERM, timeout: Double = 30) -> (result: ProcessResult, seconds: Double) {
        let signalled = Date()
        child.send(signal)
        let result = wait(timeout: timeout)
        return (result, Date().timeIntervalSince(signalled))
    }

    /// Waits for the exit; past `timeout` seconds kills it and reports status -9.
    public func wait(timeout: Double = 60) -> ProcessResult {
        feeding?.wait()
        feeding = nil
        closeStdin()
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32? = child.tryWait()
        while status == nil {
            if Date() > deadline {
                child.send(SIGKILL)
                _ = child.wait()
                status = -9
                break
            }
            usleep(10_000)
            status = child.tryWait()
        }
        let stdout = (try? Data(contentsOf: URL(fileURLWithPath: scratch.file("stdout")))) ?? Data()
        return ProcessResult(status: status!, stdout: stdout, stderr: stderrSoFar)
    }
}

/// The `evt` binary under test: $EVT_BIN, or the one built beside the test bundle.
public enum Evt {
    public static let binary: String = {
        if let path = ProcessInfo.processInfo.environment["EVT_BIN"] { return path }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return executable.deletingLastPathComponent().appendingPathComponent("evt").path
    }()

    /// The environment evt runs with: ours, less anything EVT_ that could leak in, plus `extra`.
    public static func environment(_ extra: [String: String]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("EVT_") && $0.key != "REDISCLI_AUTH"
        }
        for (key, value) in extra { environment[key] = value }
        return environment
    }

    public static func run(_ arguments: [String], stdin: Data = Data(), environment: [String: String] = [:],
                           timeout: Double = 60) throws -> ProcessResult {
        try runProcess([binary] + arguments, stdin: stdin, environment: Evt.environment(environment), timeout: timeout)
    }

    public static func run(_ arguments: [String], stdin: String, environment: [String: String] = [:],
                           timeout: Double = 60) throws -> ProcessResult {
        try run(arguments, stdin: Data(stdin.utf8), environment: environment, timeout: timeout)
    }

    public static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> RunningProcess {
        try RunningProcess([binary] + arguments, stdinData: nil, environment: Evt.environment(environment))
    }
}

/// Deterministic NDJSON: `count` lines of about 200 bytes, keyed by `user.id` (`keys` distinct),
/// each with its own sequence number `n` (1-based, = its line number).
public func sampleLines(_ count: Int, keys: Int = 50) -> [String] {
    (1...count).map { n in
        #"{"n":\#(n),"user":{"id":"u\#(n % keys)","name":"user \#(n % keys)"},"type":"order.created","amount":\#(n % 997).5,"note":"\#(String(repeating: "x", count: 90))"}"#
    }
}

public func ndjson(_ lines: [String]) -> Data { Data((lines.joined(separator: "\n") + "\n").utf8) }

/// An `--exec` command that appends each record to a file and, on record number `stallAt`,
/// records its PID and sleeps: then that record is the one in flight, and every earlier one
/// was handled (its command exited 0). For killing a worker at a known point.
public final class StallingHandler: @unchecked Sendable {
    let scratch = Scratch()
    public let stallAt: Int
    public var handledFile: String { scratch.file("handled") }
    private var pidFile: String { scratch.file("pid") }
    private var stalledPID: Int32?

    public init(stallAt: Int) { self.stallAt = stallAt }

    public var command: String {
        "cat >> '\(handledFile)'; [ \"$(wc -l < '\(handledFile)')\" -lt \(stallAt) ] || "
            + "{ echo $$ > '\(pidFile).new'; mv '\(pidFile).new' '\(pidFile)'; exec sleep 120; }"
    }

    /// Waits until the command runs record `stallAt` (true), or `timeout` seconds passed.
    public func waitUntilStalled(timeout: Double = 60) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
               let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                stalledPID = pid
                return true
            }
            usleep(20_000)
        }
        return false
    }

    /// The records the command was given, in order.
    public var handledLines: [String] {
        ((try? String(contentsOfFile: handledFile, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Ends the sleeping command (it outlives a worker killed with SIGKILL).
    public func killStalled() {
        if let stalledPID { kill(stalledPID, SIGKILL) }
        stalledPID = nil
    }

    deinit { killStalled() }
}

/// What the kernel says of a process and of loopback connections, for a test that must know
/// where a client and a server are without waiting a fixed time (Linux /proc).
public enum KernelView {
    /// The state letter of process `pid` (of its main thread): `R` running, `S` sleeping in a
    /// wait (poll, read), … nil once it is gone.
    public static func processState(_ pid: Int32) -> Character? {
        guard let stat = read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(close, offsetBy: 2)...].first
    }

    /// Bytes received and not read yet on the established IPv4 connections to or from `port`:
    /// `toServer` waits on the side listening on `port` (sent to it, not read by it),
    /// `fromServer` on the clients' side (its answers, not read by them).
    public static func unreadBytes(port: Int) -> (toServer: Int, fromServer: Int) {
        guard let table = read("/proc/net/tcp") else { return (0, 0) }
        var toServer = 0
        var fromServer = 0
        for line in table.split(separator: "\n").dropFirst() {
            // sl local_address rem_address st tx_queue:rx_queue …, addresses as HEXIP:HEXPORT.
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 4, fields[3] == "01",
                  let local = fields[1].split(separator: ":").last.flatMap({ Int($0, radix: 16) }),
                  let remote = fields[2].split(separator: ":").last.flatMap({ Int($0, radix: 16) }),
                  let unread = fields[4].split(separator: ":").last.flatMap({ Int($0, radix: 16) }) else { continue }
            if local == port { toServer += unread }
            if remote == port { fromServer += unread }
        }
        return (toServer, fromServer)
    }

    /// The ports that process `pid`'s established IPv4 connections are connected to.
    public static func connectedPorts(_ pid: Int32) -> Set<Int> {
        let fdDirectory = "/proc/\(pid)/fd"
        let sockets = Set(((try? FileManager.default.contentsOfDirectory(atPath: fdDirectory)) ?? []).compactMap { fd -> Substring? in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fdDirectory)/\(fd)"),
                  target.hasPrefix("socket:[") else { return nil }
            return target.dropFirst(8).dropLast()
        })
        guard let table = read("/proc/net/tcp") else { return [] }
        var ports = Set<Int>()
        for line in table.split(separator: "\n").dropFirst() {
            // sl local_address rem_address st tx_queue:rx_queue tr:when retrnsmt uid timeout inode …
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 9, fields[3] == "01", sockets.contains(fields[9]),
                  let remote = fields[2].split(separator: ":").last.flatMap({ Int($0, radix: 16) }) else { continue }
            ports.insert(remote)
        }
        return ports
    }

    /// A /proc file to its end (it says its size is 0, and gives a page or less per read).
    private static func read(_ path: String) -> String? {
        guard let file = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? file.close() }
        return String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
    }
}
