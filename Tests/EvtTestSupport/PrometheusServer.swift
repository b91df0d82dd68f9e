import Foundation
import EvtCore

/// One series of an instant query's answer.
public struct PrometheusSample: Sendable, CustomStringConvertible {
    public let labels: [String: String]
    public let value: Double

    public var description: String {
        "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",") + "} \(value)"
    }
}

/// Debian's `prometheus` on a free 127.0.0.1 port, scraping the given targets every
/// `intervalSeconds` (job "evt"), with its data in a scratch directory; stopped on deinit,
/// and killed with the test process (setpriv --pdeathsig) if that dies first.
public final class PrometheusServer: @unchecked Sendable {
    public let port: Int
    private let child: ChildProcess
    /// Its configuration, data and log.
    private let scratch: Scratch

    private init(port: Int, child: ChildProcess, scratch: Scratch) {
        self.port = port
        self.child = child
        self.scratch = scratch
    }

    /// Starts it and waits until it answers /-/ready.
    public static func start(scraping targets: [String], intervalSeconds: Int = 1) throws -> PrometheusServer {
        let scratch = Scratch()
        let config = """
            global:
              scrape_interval: \(intervalSeconds)s
              scrape_timeout: \(intervalSeconds)s
            scrape_configs:
              - job_name: evt
                static_configs:
                  - targets: [\(targets.map { "'\($0)'" }.joined(separator: ", "))]

            """
        let configFile = scratch.write("prometheus.yml", Data(config.utf8))
        var lastLog = ""
        // The port is free when picked; another process may take it before prometheus binds.
        for _ in 0..<5 {
            let port = try freeLoopbackPort()
            let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
            let log = open(scratch.file("prometheus.log"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            let child = try ChildProcess.spawn(
                ["setpriv", "--pdeathsig", "KILL", "prometheus", "--config.file=\(configFile)",
                 "--storage.tsdb.path=\(scratch.file("data"))", "--web.listen-address=127.0.0.1:\(port)",
                 "--log.level=warn"],
                stdin: devNull, stdout: log, stderr: log)
            close(devNull)
            close(log)
            let server = PrometheusServer(port: port, child: child, scratch: scratch)
            if waitUntil(timeout: 60, { server.isReady() || child.tryWait() != nil }), server.isReady() {
                return server
            }
            lastLog = (try? String(contentsOfFile: scratch.file("prometheus.log"), encoding: .utf8)) ?? ""
            server.stop()
        }
        throw EvtError(.refused(code: ""), "prometheus did not start: \(lastLog.suffix(800))")
    }

    deinit { stop() }

    private var stopped = false
    public func stop() {
        guard !stopped else { return }
        stopped = true
        child.send(SIGTERM)
        _ = child.wait()
    }

    private func isReady() -> Bool {
        (try? curl(["-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/-/ready"])) == "200"
    }

    /// An instant query through /api/v1/query: one sample per series (an empty list when
    /// nothing matches yet).
    public func query(_ promql: String) throws -> [PrometheusSample] {
        let answer = try curl(["--get", "--data-urlencode", "query=\(promql)", "http://127.0.0.1:\(port)/api/v1/query"])
        guard let object = try? JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any],
              object["status"] as? String == "success",
              let data = object["data"] as? [String: Any] else {
            throw EvtError(.refused(code: ""), "prometheus did not answer \(promql): \(answer.prefix(500))")
        }
        if data["resultType"] as? String == "scalar", let pair = data["result"] as? [Any],
           pair.count == 2, let text = pair[1] as? String, let value = Double(text) {
            return [PrometheusSample(labels: [:], value: value)]
        }
        let series = data["result"] as? [[String: Any]] ?? []
        return series.compactMap { entry in
            guard let pair = entry["value"] as? [Any], pair.count == 2, let text = pair[1] as? String,
                  let value = Double(text) else { return nil }
            return PrometheusSample(labels: entry["metric"] as? [String: String] ?? [:], value: value)
        }
    }

    /// Queries until `condition` holds of the answer or `timeoutSeconds` pass: the last
    /// answer, or an error that shows it.
    @discardableResult
    public func waitFor(_ promql: String, timeoutSeconds: Double = 30,
                        _ condition: ([PrometheusSample]) -> Bool) throws -> [PrometheusSample] {
        var last: [PrometheusSample] = []
        let met = try waitUntil(timeout: timeoutSeconds) {
            last = try query(promql)
            return condition(last)
        }
        guard met else {
            throw EvtError(.refused(code: ""), "within \(timeoutSeconds) s prometheus never answered \(promql) as the test expects; last answer: \(last)")
        }
        return last
    }

    /// What prometheus says of its scrape targets: (scrape URL, health, last error).
    public func targets() throws -> [(url: String, health: String, lastError: String)] {
        let answer = try curl(["http://127.0.0.1:\(port)/api/v1/targets"])
        let object = try JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any]
        let active = (object?["data"] as? [String: Any])?["activeTargets"] as? [[String: Any]] ?? []
        return active.map { ($0["scrapeUrl"] as? String ?? "", $0["health"] as? String ?? "", $0["lastError"] as? String ?? "") }
    }

    private func curl(_ arguments: [String]) throws -> String {
        let result = try runProcess(["curl", "-sS", "--max-time", "10"] + arguments)
        guard result.status == 0 else {
            throw EvtError(.refused(code: ""), "curl \(arguments.last ?? ""): \(result.stderr)")
        }
        return result.stdoutText
    }
}
