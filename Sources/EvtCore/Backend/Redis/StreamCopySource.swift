/// A Redis stream as a record source (copy-between, replay, tail): XRANGE pages after a position up to an end id, then
/// (following) XREAD BLOCK; each entry handed over as a `Record` borrowing the reply.
final class StreamCopySource {
    let connection: RedisConnection
    let name: String

    init(server: RedisServerAddress, name: String) throws {
        connection = try RedisConnection.open(server, key: name)
        self.name = name
    }

    /// The id of the newest entry (nil: the stream is empty or absent).
    func newestID() throws -> StreamID? {
        let reply = try connection.call(["XREVRANGE", name, "+", "-", "COUNT", "1"])
        if case .error(let message) = reply {
            throw RedisErrorReply.error(message, "XREVRANGE on stream \(name) failed")
        }
        guard case .array(let entries) = reply, case .array(let entry)? = entries.first, let id = entry.first?.text else { return nil }
        return StreamID(id)
    }

    /// Entries after `after` (nil: from the first) up to `until` (inclusive; nil: on and on,
    /// waiting for new ones), `pageSize` per request.
    func copy(after: StreamID?, until: StreamID?, pageSize: Int, into record: Record,
              idle: () throws -> Void, _ body: (Record) throws -> Void, batchEnded: () throws -> Void) throws {
        record.quotedSource = Record.quoted(name)
        var position = after
        func handOver(_ entries: RedisReplyView) throws -> Int {
            handingOver = true
            defer { handingOver = false }
            let count = try record.forEachStreamEntry(in: entries, body)
            if count > 0 { position = StreamID(record.id) }
            return count
        }
        if let until {
            if Signals.stopRequested { return }
            func page(after start: String) -> [String] { ["XRANGE", name, start, until.description, "COUNT", String(pageSize)] }
            try connection.pages(page(after: position.map { "(\($0)" } ?? "-"), next: { entries in
                entries.count < pageSize ? nil : page(after: "(" + entries[entries.count - 1][0].text)
            }) { entries in
                _ = try handOver(entries)
                try batchEnded()
            }
            return
        }
        while !Signals.stopRequested {
            connection.outgoing.command(["XREAD", "COUNT", String(pageSize), "BLOCK", "1000", "STREAMS", name,
                                         position?.description ?? "0-0"])
            try connection.flushWrites()
            var serverError: String?
            var got = 0
            let wait = try connection.nextReply(waitMs: -1) { reply in
                if reply.kind == .error { serverError = reply.text; return }
                guard reply.kind == .array, reply.count > 0 else { return }
                got = try handOver(reply[0][1])
            }
            if wait == .stopRequested { return }
            if let serverError {
                connection.router?.learn(from: serverError, answeredBy: connection.node)   // a MOVED moves the slot on the map
                throw RedisErrorReply.error(serverError, "XREAD on stream \(name) failed")
            }
            if got > 0 { try batchEnded() } else { try idle() }
        }
    }

    /// True while a reply is being handed over: the connection must not be used then.
    private var handingOver = false
    private var newestSeen: StreamID?

    /// The backlog as last measured: asked again only between replies (the connection is
    /// busy while a reply is handed over).
    private var lastBacklog: LagReport?

    /// How far the copy is behind `position`: entries left and the age of the first of them.
    func backlog(after position: StreamID?) -> LagReport? {
        if !handingOver, let measured = try? StreamBacklog.measure(stream: name, after: position ?? .zero,
                                                                   connection: connection, limit: 100_000) {
            lastBacklog = LagReport(kind: "stream", name: name, lag: measured.count, lagExact: measured.exact, lagMs: measured.oldestMs)
        }
        return lastBacklog
    }
}

extension StreamCopySource: RecordSource {
    var identity: String { "stream:" + name }

    func end() throws -> SourcePosition { SourcePosition(id: try newestID()) }

    func read(after start: SourcePosition, until end: SourcePosition?, into record: Record,
              idle: () throws -> Void, _ body: (Record) throws -> Void, batchEnded: () throws -> Void) throws {
        if let end, end.id == nil { return }   // an empty stream, and not following it
        try copy(after: start.id, until: end?.id, pageSize: 1000, into: record, idle: idle, body, batchEnded: batchEnded)
    }

    func positions(from: Position, until: Position?) throws -> (start: SourcePosition, end: SourcePosition) {
        let first = try StreamPositions.firstID(from, stream: name, connection: connection)
        let last = try StreamPositions.lastID(until, stream: name, connection: connection)
        var start = SourcePosition()
        switch first {
        case "-": break
        case "+": start.id = try newestID()   // only entries added from now on
        default: start.id = StreamID(StreamPositions.idBefore(first))
        }
        return (start, SourcePosition(id: last == "-" ? nil : StreamID(last)))
    }

    func lag(behind position: SourcePosition) -> String {
        backlog(after: position.id).map { ", " + $0.summary } ?? ""
    }
}
