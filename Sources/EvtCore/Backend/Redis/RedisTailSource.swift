/// `tail` on a Redis list (LRANGE, never removing anything) or a channel (follow only, through
/// RedisChannelSubscriber). A stream is read as a record source (StreamCopySource).
final class RedisTailSource: EventSource {
    private let server: RedisServerAddress
    private let kind: RedisKind
    private let name: String

    init(server: RedisServerAddress, kind: RedisKind, name: String) throws {
        guard kind != .stream else { throw EvtError.usage("a stream is tailed as a record source.") }
        self.server = server
        self.kind = kind
        self.name = name
    }

    func tail(count: Int, follow: Bool, into record: Record, _ body: (Record) throws -> Void,
              batchEnded: () throws -> Void) throws {
        if kind == .list {
            try tailList(count: count, into: record, body, batchEnded: batchEnded)
            return
        }
        let subscriber = try RedisChannelSubscriber(server: server, names: [name],
                                                    byPattern: RedisChannelSubscriber.looksLikePattern([name]))
        var failure: Error?
        while !Signals.stopRequested {
            // Each burst that arrived together, handed over and then flushed: one write per burst.
            let received = try subscriber.receive(limit: Int.max, waitMs: -1, into: record) { record in
                guard failure == nil else { return }
                do { try body(record) } catch { failure = error }
            }
            if let failure { throw failure }
            if received == 0 { break }
            try batchEnded()
        }
    }

    /// publish LPUSHes, so the newest items are at the head (index 0). The last N are indexes
    /// N-1…0, handed over oldest first, a page at a time.
    private func tailList(count: Int, into record: Record, _ body: (Record) throws -> Void,
                          batchEnded: () throws -> Void) throws {
        let connection = try RedisConnection.open(server, key: name)
        record.beginListItems(of: Record.quoted(name))
        /// Sends one command and hands its reply to `body`; false on a stop signal.
        func request(_ words: [String], _ body: (RedisReplyView) throws -> Void) throws -> Bool {
            connection.outgoing.command(words)
            try connection.flushWrites()
            var serverError: String?
            let wait = try connection.nextReply(waitMs: -1) { reply in
                if reply.kind == .error { serverError = reply.text } else { try body(reply) }
            }
            if wait == .stopRequested { return false }
            if let serverError { throw RedisErrorReply.error(serverError, "\(words[0]) on list \(name) failed") }
            return true
        }
        var length = 0
        guard try request(["LLEN", name], { length = $0.integer }) else { return }
        var high = min(count, length) - 1
        while high >= 0 {
            let low = max(0, high - RedisStreamPages.pageSize + 1)
            guard try request(["LRANGE", name, String(low), String(high)], { reply in
                for index in stride(from: reply.count - 1, through: 0, by: -1) {
                    record.point(atListItem: reply[index].bytes)
                    try body(record)
                }
            }) else { return }
            try batchEnded()
            high = low - 1
        }
    }
}

enum RedisStreamPages {
    static let pageSize = 10_000
}
