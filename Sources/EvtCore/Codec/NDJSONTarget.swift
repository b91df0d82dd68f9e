/// stdout as the target of a read (`tail`, `replay-from-offset` without --to): each record
/// as its NDJSON line (CONTRACT, "Records") through the one buffered writer, flushed after
/// every batch the source read. A reader that went away (`| head`) ends the read cleanly:
/// StdoutClosed, noticed on the next write or, while a follower waits, within a second.
final class NDJSONTarget: RecordTarget {
    let output: OutputWriter
    private(set) var delivered = 0
    private(set) var confirmed: SourcePosition?
    private var position = SourcePosition()

    init(output: OutputWriter) { self.output = output }

    var keepsCheckpoint: Bool { false }
    var confirmsAsItGoes: Bool { true }

    func write(_ record: Record) throws -> Bool {
        output.appendRecord(record)
        delivered += 1
        try output.flushIfFull()
        return true
    }

    func reached(_ position: SourcePosition, batchEnded: Bool) throws {
        guard batchEnded else { return }
        self.position = position
        try output.flush()
    }

    func drain() throws {
        try output.flush()
        confirmed = position
        if OutputWriter.stdoutIsClosed() { throw StdoutClosed() }
    }
}
