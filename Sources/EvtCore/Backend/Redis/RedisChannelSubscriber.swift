/// Channels read by `subscribe` and by `tail -f`: SUBSCRIBE, or PSUBSCRIBE for patterns. Pub/sub
/// keeps nothing: there is nothing to acknowledge, and a lost connection ends the subscription
/// (what was published meanwhile is gone).
final class RedisChannelSubscriber: EventConsumer {
    private let connection: RedisConnection
    private let names: [String]
    private let byPattern: Bool
    private var subscribed = false

    init(server: RedisServerAddress, names: [String], byPattern: Bool) throws {
        connection = try RedisConnection.open(server, key: nil)
        self.names = names
        self.byPattern = byPattern
    }

    /// Whether a channel name is a pattern (`*`, `?`, `[`), when nothing says otherwise.
    static func looksLikePattern(_ names: [String]) -> Bool {
        names.contains { $0.contains { "*?[".contains($0) } }
    }

    /// Hands over what arrived, at most `limit`: waits up to `waitMs` for the first message
    /// (-1: until one comes, a stop signal, or a closed stdout — StdoutClosed), then takes the
    /// rest of the burst that is already there without waiting (one hand-over per burst).
    func receive(limit: Int, waitMs: Int, into record: Record, _ body: (Record) -> Void) throws -> Int {
        do {
            return try receiveMessages(limit: limit, waitMs: waitMs, into: record, body)
        } catch let lost as EvtError where lost.cause == .connectionLost {
            // Not retriable: a new subscription would hide the messages lost meanwhile.
            throw EvtError(.refused(code: ""),
                "\(clause(lost.message)): the subscription to \(names.joined(separator: ", ")) ended. "
                + "Messages published meanwhile were lost: Redis disconnects a subscriber that falls behind "
                + "(client-output-buffer-limit pubsub) or when it restarts.")
        }
    }

    private func receiveMessages(limit: Int, waitMs: Int, into record: Record, _ body: (Record) -> Void) throws -> Int {
        let command = byPattern ? "PSUBSCRIBE" : "SUBSCRIBE"
        if !subscribed {
            connection.outgoing.command([command] + names)
            try connection.flushWrites()
            subscribed = true
        }
        var count = 0
        var failure: String?
        func take(_ reply: RedisReplyView) {
            guard record.point(atChannelMessage: reply) else {
                if reply.kind == .error { failure = reply.text }
                return   // else a subscription's confirmation
            }
            body(record)
            count += 1
        }
        let deadline = waitMs < 0 ? Int.max : monotonicMilliseconds() + waitMs
        while count == 0 {
            let left = deadline == Int.max ? -1 : max(0, deadline - monotonicMilliseconds())
            let wait = try connection.nextReply(waitMs: Int32(clamping: left), watchStdout: true, take)
            if let failure { throw RedisErrorReply.error(failure, "\(command) \(names.joined(separator: " ")) failed") }
            if wait != .reply { return count }
        }
        // Take what already arrived: one hand-over per burst.
        while count < limit, try connection.nextReply(waitMs: 0, take) == .reply {}
        return count
    }

    /// Pub/sub has nothing to acknowledge.
    func acknowledge(_ indexes: [Int]) throws {}

    func close() throws {}
}
