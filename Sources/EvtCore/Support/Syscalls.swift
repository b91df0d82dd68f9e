#if canImport(Glibc)
import Glibc
#endif

/// Writes every byte of `bytes` to `fd`, retrying EINTR: 0 once all are out, else the errno of
/// the write that failed (EPIPE, EAGAIN, …), for the caller to decide what it means.
/// With `waitingWhenFull`, EAGAIN on a non-blocking fd waits (up to 100 ms at a time) for
/// room and goes on instead of being returned.
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, waitingWhenFull: Bool = false) -> Int32 {
    var offset = 0
    while offset < bytes.count {
        let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if written >= 0 {
            offset += written
        } else if errno == EAGAIN && waitingWhenFull {
            var pollFD = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&pollFD, 1, 100)
        } else if errno != EINTR {
            return errno
        }
    }
    return 0
}

/// `text` as UTF-8, all of it, to `fd`; as `writeAll(_:_:)`.
func writeAll(_ fd: Int32, _ text: String) -> Int32 {
    var text = text
    return text.withUTF8 { writeAll(fd, UnsafeRawBufferPointer($0)) }
}

/// Whether `host:port` refuses TCP connections now: every address the name resolves to
/// answers a connect with ECONNREFUSED within `timeoutMs`. False when one accepts, does not
/// answer in time, fails otherwise, or the name does not resolve: nothing is known then.
func refusesConnections(host: String, port: String, timeoutMs: Int32 = 1000) -> Bool {
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var found: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(host, port, &hints, &found) == 0, let found else { return false }
    defer { freeaddrinfo(found) }
    var next: UnsafeMutablePointer<addrinfo>? = found
    while let address = next {
        guard refusesConnection(address.pointee, timeoutMs: timeoutMs) else { return false }
        next = address.pointee.ai_next
    }
    return true
}

private func refusesConnection(_ address: addrinfo, timeoutMs: Int32) -> Bool {
    let fd = socket(address.ai_family, address.ai_socktype | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
                    address.ai_protocol)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    if connect(fd, address.ai_addr, address.ai_addrlen) == 0 { return false }
    if errno == ECONNREFUSED { return true }
    guard errno == EINPROGRESS else { return false }
    var waiting = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
    guard poll(&waiting, 1, timeoutMs) == 1 else { return false }
    var error: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return false }
    return error == ECONNREFUSED
}

/// True when stdout is a terminal (a person reads it): lag's table, progress lines only when not.
func stdoutIsATerminal() -> Bool { isatty(1) == 1 }

/// True when the reader of a pipe on stdout has gone (POLLERR on the write end), so a
/// follower that has nothing to write still notices `| head` exiting.
func stdoutReaderIsGone(fd: Int32 = 1) -> Bool {
    var pollFD = pollfd(fd: fd, events: 0, revents: 0)
    return poll(&pollFD, 1, 0) > 0 && (pollFD.revents & Int16(POLLERR | POLLHUP)) != 0
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
