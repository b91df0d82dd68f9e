#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The `/metrics` endpoint that Prometheus scrapes: HTTP/1.x on the one address given, GET
/// and HEAD of `/metrics` only (404 for another path, 405 for another method), every
/// connection closed after its answer. It is written here rather than taken from an HTTP
/// server package: those of the offline set (hummingbird, swift-nio) would bring an event
/// loop, a dozen modules and minutes of build for what is one request line and one answer,
/// and Prometheus needs nothing more. A client that is slow, idle or sends more than 8 KiB
/// of request is dropped, so no client can hold the loop that serves the others.
final class MetricsListener: @unchecked Sendable {
    let port: Int
    private let socketFD: Int32
    private let shownAddress: String
    /// Wakes a serving thread for `close()`: [read end, write end].
    private let wakeFDs: (Int32, Int32)
    private var connections: [Connection] = []
    private var thread: BackgroundThread?
    private let closing = Atomic<Bool>(false)

    /// Most connections served at once; a new one beyond them closes the oldest.
    static let maximumConnections = 32
    /// How long a connection may take to send its request and take its answer.
    static let connectionTimeoutMs = 5000
    static let maximumRequestBytes = 8192

    /// Listens on `address`, `HOST:PORT` (`[IPv6]:PORT` too; port 0: any free port);
    /// `option` names it in messages. Says on stderr where it serves.
    init(address: String, option: String) throws {
        let (host, service) = try MetricsListener.split(address, option: option)
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var found: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, service, &hints, &found)
        guard resolved == 0, let found else {
            throw EvtError.usage("\(option) \(address): cannot resolve \(host) (\(String(cString: gai_strerror(resolved)))); give an address of this machine, e.g. 127.0.0.1:9464.")
        }
        defer { freeaddrinfo(found) }
        let candidate = found.pointee
        let fd = socket(candidate.ai_family, candidate.ai_socktype | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
                        candidate.ai_protocol)
        guard fd >= 0 else {
            throw EvtError(.refused(code: ""), "\(option) \(address): cannot create a socket: \(String(cString: strerror(errno))).")
        }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, candidate.ai_addr, candidate.ai_addrlen) == 0, listen(fd, 64) == 0 else {
            let cause = errno
            Glibc.close(fd)
            let advice = cause == EADDRINUSE ? "another process listens there; pick another port"
                : cause == EADDRNOTAVAIL ? "that address is not one of this machine's" : "pick another address or port"
            throw EvtError(.refused(code: ""), "\(option) \(address): cannot listen: \(String(cString: strerror(cause))); \(advice).")
        }
        var bound = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let family = bound.ss_family
        port = withUnsafePointer(to: &bound) { pointer in
            Int(UInt16(bigEndian: family == sa_family_t(AF_INET6)
                ? pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port }
                : pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port }))
        }
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else {
            Glibc.close(fd)
            throw EvtError(.refused(code: ""), "\(option): cannot create a pipe: \(String(cString: strerror(errno))).")
        }
        for pipeFD in pipeFDs { MetricsListener.makeNonBlocking(pipeFD) }
        socketFD = fd
        wakeFDs = (pipeFDs[0], pipeFDs[1])
        shownAddress = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        Diagnostics.print("serving metrics at http://\(shownAddress)/metrics")
    }

    deinit { close() }

    /// Serves on the calling thread for about `forMs` milliseconds, less once a stop signal
    /// has come: each GET of `/metrics` is answered with what `render` gives then.
    func serve(forMs duration: Int, render: () -> [UInt8]) {
        let deadline = monotonicMilliseconds() + duration
        while !Signals.stopRequested && !closing.load(ordering: .relaxed) {
            let left = deadline - monotonicMilliseconds()
            if left <= 0 { break }
            step(waitMs: left, alsoWatching: Signals.wakeFD, render: render)
        }
    }

    /// Serves on a thread of its own, calling `render` there, until `close()`. A stop
    /// signal does not end it: the command goes on answering while it winds down.
    func serveInBackground(render: @escaping @Sendable () -> [UInt8]) throws {
        thread = try BackgroundThread("to serve metrics") { [self] in
            while !closing.load(ordering: .relaxed) {
                step(waitMs: 1000, alsoWatching: -1, render: render)
            }
        }
    }

    /// Stops serving and listening: the background thread, if any, is joined first.
    func close() {
        guard !closing.exchange(true, ordering: .relaxed) else { return }
        var byte: UInt8 = 1
        _ = write(wakeFDs.1, &byte, 1)
        thread?.join()
        thread = nil
        for connection in connections { Glibc.close(connection.fd) }
        connections.removeAll()
        for fd in [socketFD, wakeFDs.0, wakeFDs.1] { Glibc.close(fd) }
    }

    // MARK: - One round of poll(2)

    private final class Connection {
        let fd: Int32
        let openedAtMs = monotonicMilliseconds()
        var request: [UInt8] = []
        var answer: [UInt8] = []
        var sent = 0
        var finished = false
        init(fd: Int32) { self.fd = fd }
    }

    private func step(waitMs: Int, alsoWatching extraFD: Int32, render: () -> [UInt8]) {
        var polled = [pollfd(fd: socketFD, events: Int16(POLLIN), revents: 0),
                      pollfd(fd: wakeFDs.0, events: Int16(POLLIN), revents: 0),
                      pollfd(fd: extraFD, events: Int16(POLLIN), revents: 0)]
        for connection in connections {
            polled.append(pollfd(fd: connection.fd, events: Int16(connection.answer.isEmpty ? POLLIN : POLLOUT), revents: 0))
        }
        let now = monotonicMilliseconds()
        let nextTimeout = connections.map { $0.openedAtMs + MetricsListener.connectionTimeoutMs - now }.min() ?? waitMs
        let ready = poll(&polled, nfds_t(polled.count), Int32(clamping: max(0, min(waitMs, nextTimeout))))
        if ready > 0 {
            for (index, connection) in connections.enumerated() {
                let events = polled[3 + index].revents
                guard events != 0 else { continue }
                if connection.answer.isEmpty { receive(connection, render: render) } else { send(connection) }
            }
            if polled[0].revents & Int16(POLLIN) != 0 { acceptWaiting() }
        }
        let checkedAt = monotonicMilliseconds()
        connections.removeAll { connection in
            let expired = checkedAt - connection.openedAtMs >= MetricsListener.connectionTimeoutMs
            if connection.finished || expired { Glibc.close(connection.fd) }
            return connection.finished || expired
        }
    }

    private func acceptWaiting() {
        while true {
            let fd = accept(socketFD, nil, nil)
            if fd < 0 { return }   // EAGAIN: all taken; another error: the client has gone
            MetricsListener.makeNonBlocking(fd)
            if connections.count >= MetricsListener.maximumConnections {
                Glibc.close(connections.removeFirst().fd)
            }
            connections.append(Connection(fd: fd))
        }
    }

    private func receive(_ connection: Connection, render: () -> [UInt8]) {
        var chunk = [UInt8](repeating: 0, count: 2048)
        let count = chunk.withUnsafeMutableBytes { read(connection.fd, $0.baseAddress, $0.count) }
        if count < 0 && (errno == EAGAIN || errno == EINTR) { return }
        guard count > 0 else {
            connection.finished = true   // closed before asking, or failed
            return
        }
        connection.request += chunk[0..<count]
        if connection.request.count > MetricsListener.maximumRequestBytes {
            connection.answer = MetricsListener.answer(status: "431 Request Header Fields Too Large", body: Array("request too large\n".utf8))
            send(connection)
            return
        }
        guard let head = MetricsListener.requestHead(connection.request) else { return }
        connection.answer = MetricsListener.answer(to: head, render: render)
        send(connection)
    }

    private func send(_ connection: Connection) {
        while connection.sent < connection.answer.count {
            let written = connection.answer.withUnsafeBytes {
                Glibc.send(connection.fd, $0.baseAddress! + connection.sent, $0.count - connection.sent, Int32(MSG_NOSIGNAL))
            }
            if written > 0 {
                connection.sent += written
            } else if written < 0 && errno == EINTR {
                continue
            } else if written < 0 && errno == EAGAIN {
                return   // the rest when the socket has room
            } else {
                break
            }
        }
        connection.finished = true
    }

    private static func makeNonBlocking(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    // MARK: - HTTP, the little of it that is needed

    /// The request line, once the whole head (up to the blank line) has arrived.
    static func requestHead(_ request: [UInt8]) -> (method: Substring, target: Substring)? {
        guard let end = request.indices.first(where: { index in
            request[index] == UInt8(ascii: "\n")
                && (index >= 1 && request[index - 1] == UInt8(ascii: "\n")
                    || index >= 3 && request[index - 1] == UInt8(ascii: "\r") && request[index - 2] == UInt8(ascii: "\n"))
        }) else { return nil }
        let text = String(decoding: request[..<end], as: UTF8.self)
        let line = text.prefix { $0 != "\r" && $0 != "\n" }
        let words = line.split(separator: " ", omittingEmptySubsequences: true)
        return (words.first ?? "", words.count > 1 ? words[1] : "")
    }

    static func answer(to head: (method: Substring, target: Substring), render: () -> [UInt8]) -> [UInt8] {
        let path = head.target.prefix { $0 != "?" }
        guard path == "/metrics" else {
            return answer(status: "404 Not Found", body: Array("only /metrics is served here\n".utf8))
        }
        guard head.method == "GET" || head.method == "HEAD" else {
            return answer(status: "405 Method Not Allowed", extraHeaders: "Allow: GET, HEAD\r\n", body: Array("only GET /metrics is served here\n".utf8))
        }
        let body = render()
        return answer(status: "200 OK", contentType: "text/plain; version=0.0.4; charset=utf-8",
                      body: body, withBody: head.method == "GET")
    }

    static func answer(status: String, contentType: String = "text/plain; charset=utf-8", extraHeaders: String = "",
                       body: [UInt8], withBody: Bool = true) -> [UInt8] {
        var answer = Array("HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\(extraHeaders)Connection: close\r\n\r\n".utf8)
        if withBody { answer += body }
        return answer
    }

    /// `HOST:PORT` or `[IPv6]:PORT` as host and port.
    static func split(_ address: String, option: String) throws -> (String, String) {
        let example = "e.g. \(option) 127.0.0.1:9464 (0.0.0.0:9464 for every interface)"
        var host: Substring
        var port: Substring
        if address.hasPrefix("["), let close = address.firstIndex(of: "]") {
            host = address[address.index(after: address.startIndex)..<close]
            let rest = address[address.index(after: close)...]
            guard rest.hasPrefix(":") else { throw EvtError.usage("\(option) \(address): expected [IPv6]:PORT, \(example).") }
            port = rest.dropFirst()
        } else if let colon = address.lastIndex(of: ":") {
            host = address[..<colon]
            port = address[address.index(after: colon)...]
        } else {
            throw EvtError.usage("\(option) \(address): expected HOST:PORT, \(example).")
        }
        guard !host.isEmpty else { throw EvtError.usage("\(option) \(address): give the address to listen on, \(example).") }
        guard let number = Int(port), (0...65535).contains(number) else {
            throw EvtError.usage("\(option) \(address): the port must be a number from 0 to 65535, \(example).")
        }
        return (String(host), String(number))
    }
}
