/// A redis-server child for the sandbox: a free 127.0.0.1 port, no persistence, its files in
/// the sandbox's temporary directory, started with a clean signal mask. It is started through
/// util-linux's `setpriv --pdeathsig KILL`, so the kernel kills it when evt ends in any way,
/// kill -9 included (posix_spawn cannot set PR_SET_PDEATHSIG itself; it is kept across exec).
/// The signal follows the thread that spawned it: evt's main thread, which ends with evt.
final class SandboxRedis {
    let port: Int
    private let child: ChildProcess
    private var stopped = false

    var pid: Int32 { child.pid }

    init(directory: String) throws {
        var lastError = ""
        for _ in 0..<5 {
            let port = try freeLoopbackPort()
            let child: ChildProcess
            do {
                child = try ChildProcess.spawn(
                    ["setpriv", "--pdeathsig", "KILL", "--",
                     "redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--dir", directory, "--logfile", "\(directory)/redis.log",
                     "--daemonize", "no"],
                    quiet: true)
            } catch {
                // ChildProcess's message is a sentence: "cannot run setpriv: No such file or directory."
                throw EvtError(.refused(code: ""), "cannot start redis-server: \(error) Install util-linux (apt-get install util-linux), whose setpriv ties redis-server's life to evt's, or put setpriv on PATH.")
            }
            let address = RedisServerAddress(host: "127.0.0.1", port: port, database: 0)
            for _ in 0..<100 {   // up to ~5 s
                if let _ = try? RedisConnection(address, connectTimeoutMs: 200) {
                    self.port = port
                    self.child = child
                    return
                }
                if let status = child.tryWait() {
                    if status == 127 {   // setpriv found no redis-server to run
                        throw EvtError(.refused(code: ""), "cannot start redis-server: it is not on PATH. Install it (apt-get install redis-server) or put it on PATH.")
                    }
                    lastError = "redis-server exited with status \(status) (port \(port) taken?)"
                    break
                }
                sleepMilliseconds(50)
            }
            if child.tryWait() == nil {
                child.killAndWait()
                lastError = "redis-server did not answer on port \(port) within 5 s"
            }
        }
        throw EvtError(.refused(code: ""), "cannot start redis-server: \(lastError). Its log said: \(SandboxRedis.logTail(directory))")
    }

    /// The end of redis.log, quoted in errors: the directory is gone by the time anyone reads them.
    static func logTail(_ directory: String) -> String {
        guard let log = readWholeFile("\(directory)/redis.log") else { return "(no log)" }
        let lines = log.split(separator: "\n").suffix(3).joined(separator: " | ")
        return lines.isEmpty ? "(empty log)" : lines
    }

    func exitStatus() -> Int32? { child.tryWait() }

    func stop() {
        guard !stopped else { return }
        stopped = true
        child.terminateAndWait()
    }

    deinit { stop() }
}
