import Foundation
import EvtCore

/// A Confluent-compatible Schema Registry on a free 127.0.0.1 port
/// (Tests/EvtEndToEndTests/Fixtures/schema_registry.py: no registry server is packaged for
/// Debian or on PyPI), stopped on deinit. It exits by itself if the test process dies.
public final class SchemaRegistryServer: @unchecked Sendable {
    /// How the registry is reached: plain HTTP, HTTPS with the test CA's server certificate
    /// for IP:127.0.0.1, or HTTPS that also wants a client certificate signed by the test CA.
    public enum Transport: Sendable {
        case http
        case https
        case mutualTLS

        var scheme: String { self == .http ? "http" : "https" }
    }

    public let port: Int
    public let transport: Transport
    /// Basic-auth credentials it asks for, if any.
    public let user: String?
    public let password: String?
    private let child: ChildProcess
    private let scratch = Scratch()

    /// `http://127.0.0.1:PORT` (or https), without credentials.
    public var url: String { "\(transport.scheme)://127.0.0.1:\(port)" }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../EvtEndToEndTests/Fixtures/schema_registry.py").standardizedFileURL.path

    /// The confluent-kafka client script that checks a registry (schema_registry_peer.py).
    public static let peerScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../EvtEndToEndTests/Fixtures/schema_registry_peer.py").standardizedFileURL.path

    /// `user` and `password` together: basic auth, 401 without them.
    public init(transport: Transport = .http, user: String? = nil, password: String? = nil) throws {
        self.transport = transport
        self.user = user
        self.password = password
        let portFile = scratch.file("port")
        var arguments = ["python3", Self.script, "--port-file", portFile]
        if let user, let password { arguments += ["--user", user, "--password", password] }
        if transport != .http {
            let certificates = TestCertificates.shared
            arguments += ["--tls-cert", certificates.serverCertificate, "--tls-key", certificates.serverKey]
            if transport == .mutualTLS { arguments += ["--client-ca", certificates.ca] }
        }
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devNull) }
        let errors = open(scratch.file("stderr"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer { close(errors) }
        let child = try ChildProcess.spawn(arguments, stdin: devNull, stdout: devNull, stderr: errors)
        self.child = child
        var found: Int?
        // Python's start takes seconds on a loaded machine; the port file appears once it listens.
        _ = waitUntil(timeout: 60) {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8) {
                found = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            return found != nil || child.tryWait() != nil
        }
        guard let found else {
            child.send(SIGKILL)
            _ = child.wait()
            let log = (try? String(contentsOfFile: scratch.file("stderr"), encoding: .utf8)) ?? ""
            throw EvtError(.refused(code: ""), "the schema registry fixture did not start: \(log.suffix(500))")
        }
        port = found
    }

    deinit {
        child.send(SIGTERM)
        _ = child.wait()
    }

    /// How many requests the registry answered (its own /_stats and /_fail left out), by
    /// `METHOD /path` without the query string, and over how many TCP connections.
    public func stats() throws -> (requests: Int, connections: Int, paths: [String: Int]) {
        let object = try JSONSerialization.jsonObject(with: Data(try control(["-sS", "\(url)/_stats"]).utf8)) as? [String: Any]
        return (object?["requests"] as? Int ?? -1, object?["connections"] as? Int ?? -1,
                object?["paths"] as? [String: Int] ?? [:])
    }

    /// The next `count` requests are answered with HTTP `status` (error_code status*100+1).
    public func failNext(_ count: Int, status: Int) throws {
        _ = try control(["-sS", "-X", "POST", "-d", #"{"status":\#(status),"count":\#(count)}"#, "\(url)/_fail"])
    }

    /// Registers `schema` under `subject` (with curl, not evt) and returns its id.
    @discardableResult
    public func register(subject: String, schema: String, type: String = "AVRO") throws -> Int {
        let body = try JSONSerialization.data(withJSONObject: ["schema": schema, "schemaType": type])
        var arguments = ["-sS", "-X", "POST", "-H", "Content-Type: application/vnd.schemaregistry.v1+json",
                         "--data-binary", String(decoding: body, as: UTF8.self),
                         "\(url)/subjects/\(subject.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? subject)/versions"]
        if let user, let password { arguments += ["-u", "\(user):\(password)"] }
        let answer = try control(arguments)
        guard let object = try? JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any],
              let id = object["id"] as? Int else {
            throw EvtError(.refused(code: ""), "the registry did not register \(subject): \(answer)")
        }
        return id
    }

    /// curl with the test certificates: its stdout.
    private func control(_ arguments: [String]) throws -> String {
        var command = ["curl", "--max-time", "30"]
        if transport != .http {
            let certificates = TestCertificates.shared
            command += ["--cacert", certificates.ca, "--cert", certificates.clientCertificate, "--key", certificates.clientKey]
        }
        let result = try runProcess(command + arguments, timeout: 40)
        guard result.status == 0 else {
            throw EvtError(.refused(code: ""), "curl \(arguments.last ?? "") failed: \(result.stderr)")
        }
        return result.stdoutText
    }
}
