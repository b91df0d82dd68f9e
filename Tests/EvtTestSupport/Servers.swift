import Foundation
import EvtCore

/// How a test server speaks: plain text, TLS, or TLS that wants a client certificate
/// (redis-server's default once a TLS port is set).
public enum RedisTransport: Sendable {
    case plain
    case tls(certificate: String)
    case mutualTLS

    /// `redis` or `rediss`.
    public var scheme: String {
        if case .plain = self { return "redis" }
        return "rediss"
    }

    /// EVT_REDIS_URL (`url`) and, for TLS, the test CA and client certificate.
    public func environment(url: String) -> [String: String] {
        var variables = ["EVT_REDIS_URL": url]
        if case .plain = self { return variables }
        let certificates = TestCertificates.shared
        variables["EVT_REDIS_CACERT"] = certificates.ca
        variables["EVT_REDIS_CERT"] = certificates.clientCertificate
        variables["EVT_REDIS_KEY"] = certificates.clientKey
        return variables
    }
}

/// A real redis-server on a free 127.0.0.1 port, in its own directory, stopped on deinit.
public final class RedisServer: @unchecked Sendable {
    public private(set) var port = 0
    public let scratch = Scratch()
    private var child: ChildProcess?
    private let persistent: Bool
    public let transport: RedisTransport

    public var url: String { "\(transport.scheme)://127.0.0.1:\(port)" }

    /// The environment that lets evt reach this server through `stream:`/`list:`/`channel:`
    /// (the test CA and client certificate for TLS).
    public var environment: [String: String] { transport.environment(url: url) }

    /// redis-cli's connection options for this server.
    private var cliConnection: [String] {
        if case .plain = transport { return ["-p", String(port)] }
        let certificates = TestCertificates.shared
        return ["-p", String(port), "--tls", "--insecure", "--cacert", certificates.ca,
                "--cert", certificates.clientCertificate, "--key", certificates.clientKey]
    }

    /// `persistent`: appendonly with fsync always, so a restart keeps every acknowledged write.
    public init(persistent: Bool = false, transport: RedisTransport = .plain) throws {
        self.persistent = persistent
        self.transport = transport
        // A port below the ephemeral range, so that a restart finds it free (TestPorts). If
        // another process grabbed it between the probe and redis-server's bind, try another.
        var lastError: Error?
        for _ in 0..<5 {
            port = try TestPorts.pick()
            do { try start(); return } catch { lastError = error }
        }
        throw lastError!
    }

    /// Starts (or restarts, on the same port and data directory) the server.
    public func start() throws {
        var arguments = ["redis-server", "--bind", "127.0.0.1", "--save", "",
                         "--dir", scratch.path, "--logfile", scratch.file("redis.log"), "--daemonize", "no"]
        arguments += persistent ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]
        let certificates = TestCertificates.shared
        switch transport {
        case .plain:
            arguments += ["--port", String(port)]
        case .tls(let certificate):
            arguments += ["--port", "0", "--tls-port", String(port), "--tls-cert-file", certificate,
                          "--tls-key-file", certificates.serverKey, "--tls-ca-cert-file", certificates.ca,
                          "--tls-auth-clients", "no"]
        case .mutualTLS:
            arguments += ["--port", "0", "--tls-port", String(port), "--tls-cert-file", certificates.serverCertificate,
                          "--tls-key-file", certificates.serverKey, "--tls-ca-cert-file", certificates.ca]
        }
        // stdio on /dev/null: a server that outlives a crashed test run must not hold the
        // runner's stdout open (swift test would wait for its EOF forever).
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devNull) }
        let child = try ChildProcess.spawn(arguments, stdin: devNull, stdout: devNull, stderr: devNull)
        self.child = child
        for _ in 0..<400 {
            if (try? cli(["PING"]))?.contains("PONG") == true { return }
            if let status = child.tryWait() {
                self.child = nil
                let log = (try? String(contentsOfFile: scratch.file("redis.log"), encoding: .utf8)) ?? ""
                throw EvtError(.refused(code: ""), "redis-server exited with \(status) on port \(port): \(log.suffix(300))")
            }
            usleep(25_000)
        }
        stop()
        throw EvtError(.refused(code: ""), "redis-server did not answer PING on port \(port) within 10 s")
    }

    /// SIGTERM and wait.
    public func stop() {
        child?.send(SIGTERM)
        _ = child?.wait()
        child = nil
    }

    /// SIGKILL and wait: the server dies without a word.
    public func kill() {
        child?.send(SIGKILL)
        _ = child?.wait()
        child = nil
    }

    /// SIGSTOP: the server keeps its connections but answers nothing.
    public func pause() throws {
        guard let child else { throw EvtError(.refused(code: ""), "redis-server is not running") }
        child.send(SIGSTOP)
    }

    public func resume() { child?.send(SIGCONT) }

    deinit {
        resume()
        stop()
    }

    /// `redis-cli -p PORT ARGS…`'s stdout (raw replies, one per line).
    @discardableResult
    public func cli(_ arguments: [String]) throws -> String {
        try runProcess(["redis-cli"] + cliConnection + ["--raw"] + arguments, timeout: 20).stdoutText
    }

    /// How many clients wait in a blocking command (XREAD BLOCK, BRPOP, …): a following
    /// reader that is waiting for more.
    public func blockedClients() throws -> Int {
        let info = try cli(["INFO", "clients"])
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("blocked_clients:") }) else { return 0 }
        return Int(line.dropFirst("blocked_clients:".count).trimmingCharacters(in: .whitespaces)) ?? 0
    }

    /// XRANGE as [(id, [field, value, …])], read with redis-cli (no --raw: quoted strings).
    public func streamEntries(_ key: String) throws -> [(id: String, fields: [String])] {
        let output = try runProcess(["redis-cli"] + cliConnection + ["--json", "XRANGE", key, "-", "+"], timeout: 60)
        if output.status == 0, let parsed = try? JSONSerialization.jsonObject(with: output.stdout) as? [[Any]] {
            return parsed.map { ($0[0] as! String, ($0[1] as? [String]) ?? []) }
        }
        // redis-cli 7.0 has no --json: walk --raw output with XLEN-sized pages instead.
        return try rawStreamEntries(key)
    }

    private func rawStreamEntries(_ key: String) throws -> [(id: String, fields: [String])] {
        // Each entry via a small Lua script that returns "id\tf\tv..." lines, unambiguous for our data.
        let script = "local r = redis.call('XRANGE', KEYS[1], '-', '+') local out = {} for i, e in ipairs(r) do out[i] = e[1] .. '\\t' .. table.concat(e[2], '\\t') end return out"
        let text = try cli(["EVAL", script, "1", key])
        return text.split(separator: "\n", omittingEmptySubsequences: true).map { line in
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return (parts[0], Array(parts.dropFirst()))
        }
    }
}

/// librdkafka's mock cluster, in this test process, reached by evt and kcat over TCP.
public func mockCluster(brokers: Int = 1, topics: [(String, Int)] = []) throws -> KafkaMockCluster {
    let cluster = try KafkaMockCluster(brokers: brokers)
    for (name, partitions) in topics { try cluster.createTopic(name, partitions: partitions) }
    return cluster
}

/// One record as kcat -J shows it.
public struct KafkaRecord: Sendable {
    public let partition: Int
    public let offset: Int
    public let key: String?
    public let payload: String?
    public let headers: [(String, String)]
}

/// Everything in a topic, read by kcat (a peer client, not evt).
public func kcatConsume(brokers: String, topic: String) throws -> [KafkaRecord] {
    let result = try runProcess(["kcat", "-b", brokers, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q",
                                 "-X", "queued.min.messages=1000000"], timeout: 120)
    return result.stdoutLines.compactMap { line in
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        var headers: [(String, String)] = []
        if let list = object["headers"] as? [Any] {
            var index = 0
            while index + 1 < list.count {
                headers.append((list[index] as? String ?? "", list[index + 1] as? String ?? ""))
                index += 2
            }
        }
        return KafkaRecord(partition: object["partition"] as? Int ?? -1, offset: object["offset"] as? Int ?? -1,
                           key: object["key"] as? String, payload: object["payload"] as? String, headers: headers)
    }
}

/// A TCP port on 127.0.0.1 that accepts connections (the kernel completes them) and never
/// answers: a broker that is merely slow, as opposed to a closed port, which refuses at once.
/// Or, made by `refusingPort`, a port that refuses every connection.
public final class SilentListener: @unchecked Sendable {
    public let port: Int
    private let fd: Int32

    public convenience init() throws { try self.init(port: 0, listening: true) }

    /// With `listening` false the port is bound and nothing listens: every connection is
    /// refused, and no other socket (a mock broker binding port 0) can take the port meanwhile.
    init(port wanted: Int, listening: Bool) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        // A port just closed by a server has connections in TIME_WAIT; it may be bound again.
        var reuse: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(wanted).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ready = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && (!listening || listen(fd, 64) == 0) && getsockname(fd, pointer, &length) == 0
            }
        }
        guard fd >= 0, ready else {
            let reason = String(cString: strerror(errno))
            if fd >= 0 { close(fd) }
            throw EvtError(.refused(code: ""), "cannot bind 127.0.0.1:\(wanted): \(reason).")
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}

/// A TCP port on 127.0.0.1 (`port`, or any) that refuses every connection while this value
/// lives (bound, not listening), unlike a port that was free a moment ago, which another
/// socket may take.
public func refusingPort(_ port: Int = 0) throws -> SilentListener { try SilentListener(port: port, listening: false) }
