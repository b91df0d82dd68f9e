/// stdout as the target of a read (`tail`, `replay-from-offset` without --to): each record
/// as its NDJSON line (CONTRACT, "Records") through the one buffered writer, flushed after
/// every batch the source read. A reader that went away (`| head`) ends the read cleanly:
/// StdoutClosed, noticed on the next write or, while a follower waits, within a second.
final class NDJSONTarget: RecordTarget {
    let output: OutputWriter
    private(set) var delivered = 0
    private(set) var confirmed: SourcePosition?

    init(output: OutputWriter) { self.output = output }

    var keepsCheckpoint: Bool { false }
    var confirmsAsItGoes: Bool { true }

    func write(_ record: Record, after cursor: SourceCursor) throws -> Bool {
        output.appendRecord(record)
        delivered += 1
        try output.flushIfFull()
        return true
    }

    func reached(_ cursor: SourceCursor, batchEnded: Bool) throws {
        if batchEnded { try output.flush() }
    }

    func drain(at cursor: SourceCursor) throws {
        try output.flush()
        confirmed = cursor.position
        if stdoutReaderIsGone() { throw StdoutClosed() }
    }
}
