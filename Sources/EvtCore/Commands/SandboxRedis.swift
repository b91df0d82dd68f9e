#if canImport(Glibc)
import Glibc
#endif

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
            let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
            defer { close(devNull) }
            let child: ChildProcess
            do {
                child = try ChildProcess.spawn(
                    ["setpriv", "--pdeathsig", "KILL", "--",
                     "redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--dir", directory, "--logfile", "\(directory)/redis.log",
                     "--daemonize", "no"],
                    stdin: devNull, stdout: devNull, stderr: devNull)
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
                usleep(50_000)
            }
            if child.tryWait() == nil {
                child.send(SIGKILL)
                _ = child.wait()
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
        if child.tryWait() == nil {
            child.send(SIGTERM)
            _ = child.wait()
        }
    }

    deinit { stop() }
}

/// A port the kernel just handed out on 127.0.0.1 (the socket is closed again).
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw EvtError(.refused(code: ""), "cannot create a socket: \(String(cString: strerror(errno))).") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else { throw EvtError(.refused(code: ""), "cannot find a free port on 127.0.0.1: \(String(cString: strerror(errno))).") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A directory under $TMPDIR (or /tmp) removed with everything in it on deinit.
final class TemporaryDirectory {
    let path: String

    init(prefix: String) throws {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw EvtError(.refused(code: ""), "cannot create a temporary directory in \(base): \(String(cString: strerror(errno))).")
        }
        path = String(cString: made)
    }

    deinit {
        // The sandbox writes plain files only (redis.log, dump/aof files).
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                    String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name != "." && name != ".." { unlink("\(path)/\(name)") }
            }
            closedir(directory)
        }
        rmdir(path)
    }
}
