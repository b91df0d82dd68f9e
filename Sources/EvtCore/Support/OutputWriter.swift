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

    /// Readers call this after each record they append.
    @inline(__always)
    func flushIfFull() throws {
        if buffer.count >= flushThreshold { try flush() }
    }

    /// Writes everything buffered; throws StdoutClosed on EPIPE.
    func flush() throws {
        guard !buffer.isEmpty else { return }
        // A non-blocking stdout (inherited from the shell) is waited on, not given up on.
        let error = buffer.withUnsafeBytes { writeAll(fd, $0, waitingWhenFull: true) }
        if error == EPIPE { throw StdoutClosed() }
        if error != 0 {
            throw EvtError(.refused(code: ""), "could not write to stdout: \(String(cString: strerror(error))).")
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Lines for stderr: `evt: …`. Unbuffered, one write per message.
public enum Diagnostics {
    public static func print(_ message: String) {
        ProgressLine.visible?.clear()   // a message never shares a line with the progress
        _ = writeAll(2, "evt: \(message)\n")   // nowhere left to say that stderr failed
    }
}
