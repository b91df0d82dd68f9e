/// `tail` on a Redis list (LRANGE, never removing anything) or a channel (SUBSCRIBE /
/// PSUBSCRIBE, follow only). A stream is read as a record source (StreamCopySource).
final class RedisTailSource: EventSource {
    private let connection: RedisConnection
    private let kind: RedisKind
    private let name: String
    private let quotedName: [UInt8]

    init(server: RedisServerAddress, kind: RedisKind, name: String) throws {
        connection = try RedisConnection.open(server, key: kind == .channel ? nil : name)
        self.kind = kind
        self.name = name
        self.quotedName = OutputWriter.quoted(name)
    }

    func tail(count: Int, follow: Bool, output: OutputWriter) throws {
        do {
            switch kind {
            case .stream: throw EvtError.usage("a stream is tailed as a record source.")
            case .list: try tailList(count: count, output: output)
            case .channel: try followChannel(output: output)
            }
        } catch let lost as EvtError where lost.cause == .connectionLost && kind == .channel {
            // Not retriable: a new subscription would hide the messages lost meanwhile.
            throw EvtError(.refused(code: ""),
                "\(clause(lost.message)): the subscription to \(name) ended. "
                + "Messages published meanwhile were lost: Redis disconnects a subscriber that falls behind "
                + "(client-output-buffer-limit pubsub) or when it restarts.")
        }
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
            throw RedisErrorReply.error(serverError, "\(words[0]) on \(kind.rawValue) \(name) failed")
        }
    }

    private struct Stop: Error {}

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
            if reply.kind == .error { throw RedisErrorReply.error(reply.text, "SUBSCRIBE \(name) failed") }
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
