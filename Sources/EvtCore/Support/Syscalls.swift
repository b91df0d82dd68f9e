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
