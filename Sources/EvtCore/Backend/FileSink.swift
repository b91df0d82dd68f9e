#if canImport(Glibc)
import Glibc
#endif

/// A file as a target: each event is a line appended to it. Used where an option takes
/// "an evt endpoint or, if it is not one, a file path" (--dead-letter). An event counts as
/// delivered once its line was written.
final class FileSink: EventSink {
    let tally = DeliveryTally()
    private let path: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var lines: [Int] = []

    init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw EvtError.usage("cannot open \(path) for appending: \(String(cString: strerror(errno))).")
        }
    }

    deinit { close(fd) }

    func send(_ event: borrowing OutgoingEvent) throws {
        buffer.append(contentsOf: event.value)
        buffer.append(UInt8(ascii: "\n"))
        lines.append(event.line)
        if buffer.count >= 64 << 10 { writeOut() }
    }

    func inputStalled() throws { writeOut() }

    func finish() { writeOut() }

    private func writeOut() {
        guard !buffer.isEmpty else { return }
        let error = buffer.withUnsafeBytes { writeAll(fd, $0) }
        let failure = error == 0 ? nil : "cannot write to \(path): \(String(cString: strerror(error)))"
        for line in lines {
            if let failure { tally.failed(line: line, reason: failure, cause: .refused(code: "")) } else { tally.delivered() }
        }
        buffer.removeAll(keepingCapacity: true)
        lines.removeAll(keepingCapacity: true)
    }
}
