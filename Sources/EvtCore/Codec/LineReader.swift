#if canImport(Glibc)
import Glibc
#endif

/// A line longer than the reader accepts.
struct LineTooLong: Error {
    let line: Int
    let limit: Int
}

/// read(2) failed.
struct ReadError: Error, CustomStringConvertible {
    let code: Int32
    var description: String { String(cString: strerror(code)) }
}

/// Reads a file descriptor in 1 MiB blocks into one buffer and hands out lines as views into
/// it — no allocation per line. The buffer grows only for a line longer than it.
final class LineReader {
    private let fd: Int32
    private let maxLineLength: Int
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    /// Unconsumed bytes are buffer[start..<end].
    private var start = 0
    private var end = 0
    private var atEOF = false
    private var lineNumber = 0

    private static let blockSize = 1 << 20

    /// Called before a read that would wait for more input (a pipe with nothing in it), so a
    /// sink can send what it holds instead of sitting on it while input trickles, and again
    /// every 200 ms while nothing comes, so that it can serve answers and give up (throw) on a
    /// target that refused it even while stdin stays open.
    var whenInputStalls: (() throws -> Void)?

    init(fd: Int32, maxLineLength: Int = 64 << 20) {
        self.fd = fd
        self.maxLineLength = maxLineLength
        capacity = LineReader.blockSize
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// The next line without "\n" (a "\r" before it is the caller's to strip), with its
    /// 1-based number; nil at end of input, or when a stop signal interrupted the read.
    func next() throws -> (bytes: UnsafeRawBufferPointer, number: Int)? {
        var searchFrom = start
        while true {
            if let newline = memchr(buffer + searchFrom, 0x0A, end - searchFrom) {
                let lineEnd = buffer.distance(to: newline)
                let line = UnsafeRawBufferPointer(start: buffer + start, count: lineEnd - start)
                start = lineEnd + 1
                lineNumber += 1
                if line.count > maxLineLength { throw LineTooLong(line: lineNumber, limit: maxLineLength) }
                return (line, lineNumber)
            }
            if end - start > maxLineLength { throw LineTooLong(line: lineNumber + 1, limit: maxLineLength) }
            if atEOF {
                guard end > start else { return nil }
                let line = UnsafeRawBufferPointer(start: buffer + start, count: end - start)
                start = end
                lineNumber += 1
                return (line, lineNumber)
            }
            searchFrom = end - start
            makeRoom()
            searchFrom += start
            guard try fill() else { return nil }
        }
    }

    /// Moves the partial line to the front; doubles the buffer when it is full of one line.
    private func makeRoom() {
        let pending = end - start
        if start > 0 {
            if pending > 0 { memmove(buffer, buffer + start, pending) }
            start = 0
            end = pending
        }
        if capacity - end < LineReader.blockSize / 2 {
            let newCapacity = capacity * 2
            let newBuffer = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
            newBuffer.copyMemory(from: buffer, byteCount: end)
            buffer.deallocate()
            buffer = newBuffer
            capacity = newCapacity
        }
    }

    /// Reads more; false when a stop signal interrupted it (treated as end of input).
    private func fill() throws -> Bool {
        if let whenInputStalls {
            var input = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            while poll(&input, 1, 0) == 0 {
                try whenInputStalls()
                if Signals.stopRequested { return false }
                let ready = poll(&input, 1, 200)
                // A signal during the wait interrupts it, not the read after it.
                if Signals.stopRequested { return false }
                // Readable, hung up or failed: the read tells which.
                if ready != 0 { break }
            }
        }
        while true {
            let count = read(fd, buffer + end, capacity - end)
            if count > 0 { end += count; return true }
            if count == 0 { atEOF = true; return true }
            if errno == EINTR {
                if Signals.stopRequested { return false }
                continue
            }
            throw ReadError(code: errno)
        }
    }
}
