/// `tail` on Redis: a stream (XREVRANGE/XRANGE pages, then XREAD BLOCK), a list (LRANGE,
/// never removing anything) or a channel (SUBSCRIBE / PSUBSCRIBE, follow only).
final class RedisTailSource: EventSource {
    private let connection: RedisConnection
    private let kind: RedisKind
    private let name: String
    private let quotedName: [UInt8]

    init(server: RedisServerAddress, kind: RedisKind, name: String) throws {
        connection = try RedisConnection(server)
        self.kind = kind
        self.name = name
        self.quotedName = OutputWriter.quoted(name)
    }

    func tail(count: Int, follow: Bool, output: OutputWriter) throws {
        do {
            switch kind {
            case .stream: try tailStream(count: count, follow: follow, output: output)
            case .list: try tailList(count: count, output: output)
            case .channel: try followChannel(output: output)
            }
        } catch let lost as EvtError where lost.cause == .connectionLost && kind == .channel {
            throw EvtError.failure(
                "\(lost.message): the subscription to \(name) ended. "
                + "Messages published meanwhile were lost: Redis disconnects a subscriber that falls behind "
                + "(client-output-buffer-limit pubsub) or when it restarts.")
        }
    }

    func read(from: Position, until: Position?, follow: Bool, limit: Int, output: OutputWriter) throws {
        guard kind == .stream else {
            throw EvtError.usage("a \(kind.rawValue) keeps no positions to replay from; replay reads streams and topics.")
        }
        try readStream(from: from, until: until, follow: follow, limit: limit, output: output)
    }

    /// Sends one command and hands its reply to `body`; a Redis error becomes an EvtError.
    private func request(_ words: [String], _ body: (RedisReplyView) throws -> Void) throws {
        connection.outgoing.command(words)
        try connection.flushWrites()
        var serverError: String?
        let wait = try connection.nextReply(waitMs: -1) { reply in
            if reply.kind == .error { serverError = reply.text } else { try body(reply) }
        }
        if wait == .stopRequested { throw Stop() }
        if let serverError {
            throw EvtError.failure("\(words[0]) on \(kind.rawValue) \(name) failed: \(serverError)")
        }
    }

    private struct Stop: Error {}

    // MARK: Streams

    /// Writes the entries of an XRANGE/XREVRANGE page (`reversed` for XREVRANGE) and returns
    /// the id of the newest one written.
    private func writeEntries(_ entries: RedisReplyView, reversed: Bool, output: OutputWriter) throws -> [UInt8]? {
        var newest: [UInt8]?
        let count = entries.count
        for position in 0..<count {
            let entry = entries[reversed ? count - 1 - position : position]
            let id = entry[0].bytes
            output.beginStreamEntry(quotedName: quotedName, id: id)
            entry[1].forEachField { output.appendStreamField($0, $1, first: $2) }
            output.endStreamEntry()
            try output.flushIfFull()
            if position == count - 1 { newest = Array(id) }
        }
        return newest
    }

    private func tailStream(count: Int, follow: Bool, output: OutputWriter) throws {
        try readStream(from: .fromEnd(Int64(count)), until: nil, follow: follow, limit: Int.max, output: output)
    }

    /// Entries from `from` to `until` (inclusive; nil: the newest as of the start), a page
    /// at a time, oldest first; then with `follow`, XREAD BLOCK for new ones. At most `limit`.
    func readStream(from: Position, until: Position?, follow: Bool, limit: Int, output: OutputWriter) throws {
        let start = try StreamPositions.firstID(from, stream: name, connection: connection)
        // The newest entry as of now bounds a read without --until; a follower goes on.
        let end = try StreamPositions.lastID(until, stream: name, connection: connection)
        do {
            var newest: [UInt8]?
            var left = limit
            if start != "+" && end != "-" {
                var from = start
                while left > 0 {
                    var got = 0
                    try request(["XRANGE", name, from, end, "COUNT", String(min(left, RedisStreamPages.pageSize))]) { reply in
                        got = reply.count
                        if let id = try writeEntries(reply, reversed: false, output: output) { newest = id }
                    }
                    left -= got
                    if got == 0 { break }
                    from = "(" + String(decoding: newest!, as: UTF8.self)
                }
            }
            try output.flush()
            guard follow, left > 0 else { return }
            var after: String
            if let newest {
                after = String(decoding: newest, as: UTF8.self)
            } else if start == "+" || end == "-" {
                after = "$"   // nothing read before: only what is added from now on
            } else {
                after = end
            }
            while left > 0 {
                connection.outgoing.command(["XREAD", "COUNT", String(min(left, 1000)), "BLOCK", "0", "STREAMS", name, after])
                try connection.flushWrites()
                var serverError: String?
                var got = 0
                let wait = try connection.nextReply(waitMs: -1, watchStdout: true) { reply in
                    if reply.kind == .error { serverError = reply.text; return }
                    guard reply.kind == .array, reply.count > 0 else { return }
                    got = reply[0][1].count
                    if let newest = try writeEntries(reply[0][1], reversed: false, output: output) {
                        after = String(decoding: newest, as: UTF8.self)
                    }
                }
                if wait == .stopRequested { return }
                if let serverError { throw EvtError.failure("XREAD on stream \(name) failed: \(serverError)") }
                left -= got
                try output.flush()
            }
        } catch is Stop {
            return
        }
    }

    // MARK: Lists

    /// publish LPUSHes, so the newest items are at the head (index 0). The last N are indexes
    /// N-1…0, printed oldest first, a page at a time.
    private func tailList(count: Int, output: OutputWriter) throws {
        do {
            var length = 0
            try request(["LLEN", name]) { length = $0.integer }
            var high = min(count, length) - 1
            while high >= 0 {
                let low = max(0, high - RedisStreamPages.pageSize + 1)
                try request(["LRANGE", name, String(low), String(high)]) { reply in
                    for index in stride(from: reply.count - 1, through: 0, by: -1) {
                        output.appendSimpleRecord(kind: .list, quotedName: quotedName, value: reply[index].bytes)
                        try output.flushIfFull()
                    }
                }
                high = low - 1
            }
            try output.flush()
        } catch is Stop {
            return
        }
    }

    // MARK: Channels

    private func followChannel(output: OutputWriter) throws {
        let byPattern = name.contains { "*?[".contains($0) }
        connection.outgoing.command([byPattern ? "PSUBSCRIBE" : "SUBSCRIBE", name])
        try connection.flushWrites()
        while true {
            var pending: Bool
            let wait = try connection.nextReply(waitMs: -1, watchStdout: true) { reply in
                try writeMessage(reply, output: output)
            }
            if wait == .stopRequested { break }
            // Drain what already arrived before flushing: one write per burst, not per message.
            repeat {
                pending = try connection.nextReply(waitMs: 0) { try writeMessage($0, output: output) } == .reply
            } while pending
            try output.flush()
        }
        try output.flush()
    }

    private func writeMessage(_ reply: RedisReplyView, output: OutputWriter) throws {
        guard reply.kind == .array, reply.count >= 3 else {
            if reply.kind == .error { throw EvtError.failure("SUBSCRIBE \(name) failed: \(reply.text)") }
            return
        }
        let type = reply[0].bytes
        if type.elementsEqual("message".utf8) {
            output.appendSimpleRecord(kind: .channel, name: reply[1].bytes, value: reply[2].bytes)
        } else if type.elementsEqual("pmessage".utf8), reply.count >= 4 {
            output.appendSimpleRecord(kind: .channel, name: reply[2].bytes, pattern: reply[1].bytes,
                                      value: reply[3].bytes)
        }
        try output.flushIfFull()
    }
}

enum RedisStreamPages {
    static let pageSize = 10_000
}
