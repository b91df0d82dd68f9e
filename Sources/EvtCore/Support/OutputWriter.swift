#if canImport(Glibc)
import Glibc
#endif

/// stdout went away (`| head` exited): a clean stop, not an error.
struct StdoutClosed: Error {}

/// The one buffered writer over write(2) that every record goes through. Records are appended
/// to `buffer` by the codec; the buffer is written out when it passes `flushThreshold` and
/// whenever a command has handed over a batch (so followers see events promptly).
final class OutputWriter {
    var buffer: [UInt8] = []
    let fd: Int32
    let flushThreshold: Int

    init(fd: Int32 = 1, flushThreshold: Int = 256 << 10) {
        self.fd = fd
        self.flushThreshold = flushThreshold
        buffer.reserveCapacity(flushThreshold + (64 << 10))
    }

    /// Called after each record a reader appends (replay's --rate and progress line).
    var afterRecord: (() throws -> Void)?

    /// Readers call this after each record they append.
    @inline(__always)
    func flushIfFull() throws {
        if let afterRecord { try afterRecord() }
        if buffer.count >= flushThreshold { try flush() }
    }

    /// When set, records go here instead of to `fd` (`replay-from-offset --to`).
    var handOff: ((UnsafeRawBufferPointer) throws -> Void)?

    /// Writes everything buffered; throws StdoutClosed on EPIPE.
    func flush() throws {
        guard !buffer.isEmpty else { return }
        if let handOff {
            try buffer.withUnsafeBytes { try handOff($0) }
            buffer.removeAll(keepingCapacity: true)
            return
        }
        try buffer.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    if errno == EPIPE { throw StdoutClosed() }
                    if errno == EAGAIN {
                        var pollFD = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                        _ = poll(&pollFD, 1, 100)
                        continue
                    }
                    throw EvtError.failure("could not write to stdout: \(String(cString: strerror(errno))).")
                }
                offset += written
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// True when the reader of a pipe on stdout has gone (POLLERR on the write end), so a
    /// follower that has nothing to write still notices `| head` exiting.
    static func stdoutIsClosed(fd: Int32 = 1) -> Bool {
        var pollFD = pollfd(fd: fd, events: 0, revents: 0)
        return poll(&pollFD, 1, 0) > 0 && (pollFD.revents & Int16(POLLERR | POLLHUP)) != 0
    }
}

/// Lines for stderr: `evt: …`. Unbuffered, one write per message.
public enum Diagnostics {
    public static func print(_ message: String) {
        var line = Array("evt: \(message)\n".utf8)
        line.withUnsafeMutableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { if errno == EINTR { continue } else { return } }
                offset += written
            }
        }
    }
}
