import Foundation
import EvtCore

/// librdkafka's mock cluster behind a TLS or SASL listener, for the Kafka security tests.
///
/// The 2.0.2 mock has neither, and it advertises its own 127.0.0.1:PORT, so a front on another
/// port would be bypassed after bootstrap. So the client (evt, or a peer such as kcat) runs in
/// a network namespace of its own (`unshare -n`; the tests run as root), where 127.0.0.1:PORT
/// — the address the mock advertises — is the front, and the front reaches the real mock
/// outside through a Unix socket that socat bridges to the mock's TCP port (SWIFT-C-NOTES).
/// Outside the namespace the mock is plain Kafka: kcat reads there what evt wrote.
///
/// Fronts: socat's OPENSSL-LISTEN for `ssl` (optionally wanting a client certificate signed
/// by the test CA), and Tests/EvtEndToEndTests/Fixtures/kafka_sasl_front.py for
/// `sasl_plaintext` and `sasl_ssl` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512). A front dies with
/// the command it was started for (setpriv --pdeathsig: the shell that starts it execs the
/// command), so nothing outlives a test.
public final class KafkaSecureMock: @unchecked Sendable {
    public enum Listener: Sendable {
        /// TLS with the test CA's server certificate for IP:127.0.0.1; `clientCertificate`:
        /// only clients with a certificate signed by the test CA get through.
        case tls(clientCertificate: Bool)
        /// SASL for `users` (name → password), over TLS when `tls`; `mechanisms` empty: all
        /// three the front knows.
        case sasl(tls: Bool, users: [String: String], mechanisms: [String] = [])
    }

    public let cluster: KafkaMockCluster
    public let scratch = Scratch()
    /// `127.0.0.1:PORT`: the mock's own address outside, the front's inside the namespace.
    public let brokers: String
    private let port: String
    private let bridge: ChildProcess

    public var socketPath: String { scratch.file("mock.sock") }
    /// The SASL front's account of each authentication: `ok USER MECHANISM` or `refused USER MECHANISM`.
    public var saslLog: String { (try? String(contentsOfFile: scratch.file("sasl.log"), encoding: .utf8)) ?? "" }
    /// What the fronts said on stderr (for a test's failure message).
    public var frontLog: String { (try? String(contentsOfFile: scratch.file("front.log"), encoding: .utf8)) ?? "" }

    static let saslFront = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../EvtEndToEndTests/Fixtures/kafka_sasl_front.py").standardizedFileURL.path

    public init(topics: [(String, Int)] = []) throws {
        cluster = try mockCluster(brokers: 1, topics: topics)
        brokers = cluster.bootstrapServers
        guard let colon = brokers.lastIndex(of: ":"), !brokers.contains(",") else {
            throw EvtError(.refused(code: ""), "expected one mock broker, got \(brokers)")
        }
        port = String(brokers[brokers.index(after: colon)...])
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devNull) }
        let socketPath = scratch.file("mock.sock")
        bridge = try ChildProcess.spawn(["socat", "UNIX-LISTEN:\(socketPath),fork", "TCP:\(brokers)"],
                                        stdin: devNull, stdout: devNull, stderr: devNull)
        guard waitUntil(timeout: 20, { FileManager.default.fileExists(atPath: socketPath) }) else {
            bridge.send(SIGKILL)
            _ = bridge.wait()
            throw EvtError(.refused(code: ""), "socat did not make \(socketPath)")
        }
    }

    deinit {
        bridge.send(SIGTERM)
        _ = bridge.wait()
    }

    /// The front's command line.
    private func frontCommand(_ listener: Listener) -> [String] {
        let certificates = TestCertificates.shared
        switch listener {
        case .tls(let clientCertificate):
            return ["socat", "OPENSSL-LISTEN:\(port),bind=127.0.0.1,fork,reuseaddr,cert=\(certificates.serverCertificate),"
                        + "key=\(certificates.serverKey),cafile=\(certificates.ca),verify=\(clientCertificate ? 1 : 0)",
                    "UNIX-CONNECT:\(socketPath)"]
        case .sasl(let tls, let users, let mechanisms):
            var command = ["python3", Self.saslFront, "--port", port, "--upstream-unix", socketPath,
                           "--log", scratch.file("sasl.log")]
            for (name, password) in users.sorted(by: { $0.key < $1.key }) { command += ["--user", "\(name):\(password)"] }
            for mechanism in mechanisms { command += ["--mechanism", mechanism] }
            if tls { command += ["--cert", certificates.serverCertificate, "--key", certificates.serverKey] }
            return command
        }
    }

    /// `unshare -n sh -c SCRIPT`: loopback up, the front started (and listening) in the
    /// namespace, then the command exec'd, so that it is the process a test signals.
    private func inNamespace(_ listener: Listener, _ command: [String]) -> [String] {
        let front = frontCommand(listener).map(Self.quoted).joined(separator: " ")
        let script = """
            ip link set lo up || exit 97
            setpriv --pdeathsig KILL \(front) </dev/null >>\(Self.quoted(scratch.file("front.log"))) 2>&1 &
            n=0
            until ss -Hltn 'sport = :\(port)' | grep -q .; do
                n=$((n + 1)); [ $n -gt 400 ] && { echo 'the front did not listen within 20 s' >&2; exit 98; }
                sleep 0.05
            done
            date +%s.%N >\(Self.quoted(scratch.file("command-started")))
            exec "$@"
            """
        return ["unshare", "-n", "sh", "-c", script, "evt-netns"] + command
    }

    private static func quoted(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// Seconds since the last command run in a namespace started, once its front listened:
    /// how long evt took, without the namespace's and the front's start (seconds on a loaded
    /// machine, for a Python front).
    public func secondsSinceCommandStarted() -> Double {
        let text = (try? String(contentsOfFile: scratch.file("command-started"), encoding: .utf8)) ?? ""
        guard let started = Double(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return .infinity }
        return Date().timeIntervalSince1970 - started
    }

    /// Runs evt with `arguments` in a namespace whose 127.0.0.1:PORT is `listener`.
    public func evt(_ listener: Listener, _ arguments: [String], stdin: Data = Data(),
                    timeout: Double = 60) throws -> ProcessResult {
        try runProcess(inNamespace(listener, [Evt.binary] + arguments), stdin: stdin,
                       environment: Evt.environment([:]), timeout: timeout)
    }

    /// Starts evt there with stdin a pipe (RunningProcess.write feeds it); its pid is evt's.
    public func startEvt(_ listener: Listener, _ arguments: [String]) throws -> RunningProcess {
        try RunningProcess(inNamespace(listener, [Evt.binary] + arguments), stdinData: nil, environment: Evt.environment([:]))
    }

    /// Runs another client (kcat, …) there.
    public func peer(_ listener: Listener, _ command: [String], timeout: Double = 60) throws -> ProcessResult {
        try runProcess(inNamespace(listener, command), timeout: timeout)
    }
}
