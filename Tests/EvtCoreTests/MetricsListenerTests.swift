import Foundation
import Glibc
import Synchronization
import Testing
@testable import EvtCore
import EvtTestSupport

/// The /metrics endpoint, checked with curl, a raw socket and a real Prometheus scraping it.
@Suite("MetricsListener", .serialized)
struct MetricsListenerTests {
    /// Counts its renders, so a test sees each scrape.
    final class Exposition: Sendable {
        let renders = Atomic<Int>(0)
        func render() -> [UInt8] {
            let count = renders.add(1, ordering: .relaxed).newValue
            return Array("# HELP evt_test_renders_total Renders so far.\n# TYPE evt_test_renders_total counter\nevt_test_renders_total \(count)\n".utf8)
        }
    }

    private func curl(_ arguments: [String]) throws -> ProcessResult {
        try runProcess(["curl", "-sS", "--max-time", "20"] + arguments)
    }

    @Test("GET /metrics answers the text format; other paths 404, other methods 405")
    func answers() throws {
        let listener = try MetricsListener(address: "127.0.0.1:0", option: "--listen")
        defer { listener.close() }
        let exposition = Exposition()
        try listener.serveInBackground { exposition.render() }
        let url = "http://127.0.0.1:\(listener.port)"

        let got = try curl(["-D", "-", "\(url)/metrics"])
        #expect(got.status == 0, "\(got.stderr)")
        #expect(got.stdoutText.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(got.stdoutText.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))
        #expect(got.stdoutText.hasSuffix("\r\n\r\n# HELP evt_test_renders_total Renders so far.\n# TYPE evt_test_renders_total counter\nevt_test_renders_total 1\n"))

        #expect(try curl(["-o", "/dev/null", "-w", "%{http_code}", "\(url)/metrics?name=x"]).stdoutText == "200")
        #expect(try curl(["-o", "/dev/null", "-w", "%{http_code}", "\(url)/"]).stdoutText == "404")
        #expect(try curl(["-o", "/dev/null", "-w", "%{http_code}", "\(url)/metricsx"]).stdoutText == "404")
        let post = try curl(["-D", "-", "-o", "/dev/null", "-X", "POST", "\(url)/metrics"])
        #expect(post.stdoutText.hasPrefix("HTTP/1.1 405 "))
        #expect(post.stdoutText.contains("Allow: GET, HEAD\r\n"))
        let head = try curl(["-I", "\(url)/metrics"])
        #expect(head.stdoutText.hasPrefix("HTTP/1.1 200 OK\r\n"))
        // 404s, 405s and HEAD do not render: only the two GETs did.
        #expect(exposition.renders.load(ordering: .relaxed) == 3)
    }

    @Test("a client that connects and says nothing does not hold up the others")
    func silentClient() throws {
        let listener = try MetricsListener(address: "127.0.0.1:0", option: "--listen")
        defer { listener.close() }
        let exposition = Exposition()
        try listener.serveInBackground { exposition.render() }
        let silent = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(silent) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(listener.port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(silent, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
        _ = write(silent, "GET /metr", 9)   // half a request line, and then nothing
        // Answered while the silent one waits; curl's own limit is far below the 5 s drop.
        let got = try curl(["--max-time", "4", "http://127.0.0.1:\(listener.port)/metrics"])
        #expect(got.status == 0, "\(got.stderr)")
        #expect(got.stdoutText.contains("evt_test_renders_total 1\n"))
    }

    @Test("a request head over 8 KiB is refused")
    func oversizedRequest() throws {
        let listener = try MetricsListener(address: "127.0.0.1:0", option: "--listen")
        defer { listener.close() }
        let exposition = Exposition()
        try listener.serveInBackground { exposition.render() }
        let got = try curl(["-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Filler: " + String(repeating: "a", count: 9000),
                            "http://127.0.0.1:\(listener.port)/metrics"])
        // The answer goes out while curl may still be sending: it reads the 431, or the
        // reset of a socket closed with its request unread. Never a 200.
        #expect(got.stdoutText == "431" || got.status != 0, "\(got.stdoutText) \(got.stderr)")
        let next = try curl(["http://127.0.0.1:\(listener.port)/metrics"])
        #expect(next.stdoutText.contains("evt_test_renders_total 1\n"), "\(next.stderr)")
    }

    @Test("addresses: malformed ones are usage errors; a port in use says so")
    func addresses() throws {
        for bad in ["9464", ":9464", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:x", "[::1]9464"] {
            #expect(throws: EvtError.self, "\(bad)") { try MetricsListener(address: bad, option: "--listen") }
            do { _ = try MetricsListener(address: bad, option: "--listen") } catch let error as EvtError {
                #expect(error.cause == .usage, "\(bad): \(error.message)")
                #expect(error.message.hasPrefix("--listen \(bad): "), "\(error.message)")
            }
        }
        let taken = try MetricsListener(address: "127.0.0.1:0", option: "--metrics")
        defer { taken.close() }
        do {
            _ = try MetricsListener(address: "127.0.0.1:\(taken.port)", option: "--metrics")
            Issue.record("a second listener on \(taken.port) was allowed")
        } catch let error as EvtError {
            #expect(error.cause != .usage)
            #expect(error.message.contains("another process listens there"), "\(error.message)")
        }
    }

    @Test("serve(forMs:) answers on the calling thread and returns when the time is up")
    func foreground() throws {
        let listener = try MetricsListener(address: "127.0.0.1:0", option: "--listen")
        defer { listener.close() }
        let exposition = Exposition()
        let port = listener.port
        let answer = Mutex<ProcessResult?>(nil)
        let client = Thread {
            let result = try? runProcess(["curl", "-sS", "--max-time", "20", "http://127.0.0.1:\(port)/metrics"])
            answer.withLock { $0 = result }
        }
        client.start()
        let deadline = Date().addingTimeInterval(30)
        while answer.withLock({ $0 == nil }) && Date() < deadline {
            listener.serve(forMs: 100) { exposition.render() }
        }
        let got = answer.withLock { $0 }
        #expect(got?.stdoutText.contains("evt_test_renders_total 1\n") == true)
        let started = monotonicMilliseconds()
        listener.serve(forMs: 300) { exposition.render() }
        let took = monotonicMilliseconds() - started
        #expect(took >= 290 && took < 10_000, "\(took) ms")
    }

    @Test("a real Prometheus scrapes it")
    func scrapedByPrometheus() throws {
        let listener = try MetricsListener(address: "127.0.0.1:0", option: "--listen")
        defer { listener.close() }
        let exposition = Exposition()
        try listener.serveInBackground { exposition.render() }
        let prometheus = try PrometheusServer.start(scraping: ["127.0.0.1:\(listener.port)"])
        defer { prometheus.stop() }
        try prometheus.waitFor(#"up{job="evt"}"#) { $0.count == 1 && $0[0].value == 1 }
        // Each scrape renders once: the counter Prometheus holds keeps rising.
        let first = try prometheus.waitFor("evt_test_renders_total") { $0.count == 1 && $0[0].value >= 1 }[0].value
        try prometheus.waitFor("evt_test_renders_total") { $0.count == 1 && $0[0].value > first }
        let target = try prometheus.targets()
        #expect(target.count == 1 && target[0].health == "up" && target[0].lastError.isEmpty, "\(target)")
    }
}
