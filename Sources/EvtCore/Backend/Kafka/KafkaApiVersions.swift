#if canImport(Glibc)
import Glibc
#endif

/// Which Kafka API keys a plaintext broker answers, asked with an ApiVersions v0 request of
/// evt's own (librdkafka keeps the versions it learns to itself).
///
/// Why: librdkafka 2.0.2 aborts the whole process (`rd_kafka_enq_once_del_source_return:
/// Assertion eonce->refcnt > 0`) when a coordinator-bound admin request such as DeleteGroups
/// cannot be sent, e.g. to a broker without that API, as librdkafka's mock cluster is (upstream
/// pull request confluentinc/librdkafka#5397, not released). Asking first turns that abort
/// into a refusal evt can explain.
enum KafkaApiVersions {
    static let deleteGroups: Int16 = 42

    /// The API keys of the first of `brokers` (`host:port,…`) that answers; nil when none does
    /// within 5 s each, or the answer cannot be read: nothing is known then.
    static func keys(of brokers: String) -> Set<Int16>? {
        for broker in brokers.split(separator: ",") {
            var text = broker.trimmingWhitespace()
            if let afterScheme = text.split(separator: "/").last { text = String(afterScheme) }
            guard let colon = text.lastIndex(of: ":") else { continue }
            var host = String(text[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            if let keys = ask(host: host, port: String(text[text.index(after: colon)...])) { return keys }
        }
        return nil
    }

    private static func ask(host: String, port: String) -> Set<Int16>? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, port, &hints, &found) == 0, let found else { return nil }
        defer { freeaddrinfo(found) }
        let address = found.pointee
        let fd = socket(address.ai_family, address.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), address.ai_protocol)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var limit = timeval(tv_sec: 5, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, address.ai_addr, address.ai_addrlen) == 0 else { return nil }

        // Size, then ApiVersions (18) v0, correlation id 1, client id "evt".
        let clientID = Array("evt".utf8)
        var body: [UInt8] = [0, 18, 0, 0, 0, 0, 0, 1, 0, UInt8(clientID.count)] + clientID
        body = bigEndian(UInt32(body.count)) + body
        guard body.withUnsafeBytes({ writeAll(fd, $0) }) == 0 else { return nil }
        guard let sizeBytes = read(fd, count: 4) else { return nil }
        let size = Int(sizeBytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        guard size >= 10, size < 1 << 20, let answer = read(fd, count: size) else { return nil }
        func int16(_ at: Int) -> Int16 { Int16(bitPattern: UInt16(answer[at]) << 8 | UInt16(answer[at + 1])) }
        // Correlation id (4), error code (2), then [api key, min, max] with an int32 count.
        guard int16(4) == 0 else { return nil }
        let count = Int(answer[6..<10].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        guard count >= 0, 10 + count * 6 <= answer.count else { return nil }
        return Set((0..<count).map { int16(10 + $0 * 6) })
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    private static func read(_ fd: Int32, count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, count - done) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { return nil }
            done += got
        }
        return bytes
    }
}
