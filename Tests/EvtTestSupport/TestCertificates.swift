import Foundation
import EvtCore

/// A throwaway PKI made with `openssl` for the TLS tests: a CA, a server certificate for
/// IP:127.0.0.1 only (so `localhost` must be refused), an expired one, a client certificate
/// signed by the CA, and one signed by nobody the server trusts. Made once per test process,
/// in `evt-test-ca-PID` under the temporary directory: removed when the process exits, and
/// the next test process removes those of processes that did not (killed, crashed).
public final class TestCertificates: @unchecked Sendable {
    public let scratch: Scratch
    public var ca: String { scratch.file("ca.pem") }
    public var serverCertificate: String { scratch.file("server.pem") }
    public var serverKey: String { scratch.file("server.key") }
    public var expiredServerCertificate: String { scratch.file("expired.pem") }
    public var clientCertificate: String { scratch.file("client.pem") }
    public var clientKey: String { scratch.file("client.key") }
    /// Self-signed: no CA the server knows vouches for it.
    public var strangerCertificate: String { scratch.file("stranger.pem") }
    public var strangerKey: String { scratch.file("stranger.key") }

    public static let shared: TestCertificates = {
        removeDirectoriesOfEndedProcesses()
        let certificates = try! TestCertificates()
        atexit { try? FileManager.default.removeItem(atPath: TestCertificates.directory(of: getpid())) }
        return certificates
    }()

    static let directoryPrefix = "evt-test-ca-"

    /// Where the test process `pid` keeps its certificates.
    public static func directory(of pid: pid_t) -> String { NSTemporaryDirectory() + directoryPrefix + String(pid) }

    /// Removes the certificate directories of test processes that are no longer running.
    public static func removeDirectoriesOfEndedProcesses() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? []
        for name in names where name.hasPrefix(directoryPrefix) {
            guard let pid = pid_t(name.dropFirst(directoryPrefix.count)), pid > 0,
                  kill(pid, 0) != 0 && errno == ESRCH else { continue }
            try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + name)
        }
    }

    private init() throws {
        // A directory left by an earlier process with this PID holds nothing of ours.
        try? FileManager.default.removeItem(atPath: Self.directory(of: getpid()))
        scratch = Scratch(path: Self.directory(of: getpid()))
        let dir = scratch.path
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3", "-subj", "/CN=evt test CA",
                     "-keyout", "\(dir)/ca.key", "-out", ca])
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=redis",
                     "-keyout", serverKey, "-out", "\(dir)/server.csr"])
        scratch.write("server.ext", Data("subjectAltName=IP:127.0.0.1\n".utf8))
        try openssl(["x509", "-req", "-in", "\(dir)/server.csr", "-CA", ca, "-CAkey", "\(dir)/ca.key",
                     "-CAcreateserial", "-days", "3", "-extfile", "\(dir)/server.ext", "-out", serverCertificate])
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=evt",
                     "-keyout", clientKey, "-out", "\(dir)/client.csr"])
        try openssl(["x509", "-req", "-in", "\(dir)/client.csr", "-CA", ca, "-CAkey", "\(dir)/ca.key",
                     "-CAcreateserial", "-days", "3", "-out", clientCertificate])
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3", "-subj", "/CN=stranger",
                     "-keyout", strangerKey, "-out", strangerCertificate])
        // `openssl x509` cannot date a certificate in the past; `openssl ca` can.
        try FileManager.default.createDirectory(atPath: "\(dir)/db", withIntermediateDirectories: true)
        scratch.write("db/index.txt", Data())
        scratch.write("db/serial", Data("01\n".utf8))
        scratch.write("ca.cnf", Data("""
            [ca]
            default_ca = test
            [test]
            database = \(dir)/db/index.txt
            serial = \(dir)/db/serial
            new_certs_dir = \(dir)/db
            default_md = sha256
            policy = any
            [any]
            commonName = supplied

            """.utf8))
        try openssl(["ca", "-batch", "-config", "\(dir)/ca.cnf", "-cert", ca, "-keyfile", "\(dir)/ca.key",
                     "-in", "\(dir)/server.csr", "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
                     "-extfile", "\(dir)/server.ext", "-out", expiredServerCertificate])
    }

    private func openssl(_ arguments: [String]) throws {
        let result = try runProcess(["openssl"] + arguments, timeout: 60)
        guard result.status == 0 else {
            throw EvtError(.refused(code: ""), "openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(result.stderr)")
        }
    }
}
