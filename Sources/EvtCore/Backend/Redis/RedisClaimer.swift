/// `claim-pending` on a Redis stream group: XAUTOCLAIM pages from 0-0 until the cursor comes
/// back to 0-0, delivery counts from XPENDING, XACK after the hand-over.
final class RedisClaimer {
    private let connection: RedisConnection
    let stream: String
    let group: String
    let consumer: String
    private let member: RedisStreamGroup
    private let minIdleMs: Int
    private var cursor = "0-0"
    private(set) var finished = false

    init(server: RedisServerAddress, stream: String, group: String, consumer: String, minIdleMs: Int) throws {
        connection = try RedisConnection.open(server, key: stream)
        self.stream = stream
        self.group = group
        self.consumer = consumer
        member = RedisStreamGroup(stream: stream, group: group, consumer: consumer)
        self.minIdleMs = minIdleMs
        let info = try connection.call(["XINFO", "STREAM", stream])
        if case .error(let message) = info, RedisErrorReply.cause(message) != .refused(code: "ERR") {
            throw RedisErrorReply.error(message, "XINFO STREAM on stream \(stream) failed")
        }
        guard case .array = info else {
            throw EvtError(.refused(code: "ERR"), "stream \(stream) does not exist on \(server.description).")
        }
    }

    private func failure(_ command: String, _ message: String) -> EvtError {
        RedisClaimer.failure(command, message, stream: stream, group: group)
    }

    /// `command`'s error answer `message` as an error with the answer's cause (LOADING is
    /// "not now", not a refusal), naming a missing group as such.
    static func failure(_ command: String, _ message: String, stream: String, group: String) -> EvtError {
        if RedisErrorReply.cause(message) == .refused(code: "NOGROUP") {
            return EvtError(.refused(code: "NOGROUP"), "stream \(stream) has no group \(group) (\(message)).")
        }
        return RedisErrorReply.error(message, "\(command) on stream \(stream) failed")
    }

    /// The next page of entries idle for at least --min-idle, now owned by `consumer`, with
    /// their delivery counts, and the ids of pending entries that were deleted from the
    /// stream meanwhile.
    func claim(limit: Int) throws -> (entries: [PendingEntry], deleted: [String]) {
        guard !finished else { return ([], []) }
        var serverError: String?
        var next: String?
        var listed = 0
        var entries: [PendingEntry] = []
        var deleted: [String] = []
        try connection.exchange(["XAUTOCLAIM", stream, group, consumer, String(minIdleMs), cursor, "COUNT", String(limit)]) { reply in
            if reply.kind == .error { serverError = reply.text; return }
            guard reply.kind == .array, reply.count >= 2, reply[0].kind == .string || reply[0].kind == .status,
                  reply[1].kind == .array else { return }
            next = reply[0].text
            listed = reply[1].count
            // Redis < 7 reports a deleted entry with nil fields; 7 lists them on their own.
            (entries, deleted) = RedisStreamGroup.entries(reply[1])
            if reply.count >= 3 {
                let ids = reply[2]
                deleted = (0..<ids.count).filter { ids[$0].kind == .string }.map { ids[$0].text } + deleted
            }
        }
        if let serverError { throw failure("XAUTOCLAIM", serverError) }
        guard let next else {
            throw EvtError(.refused(code: ""), "XAUTOCLAIM on stream \(stream) gave an unexpected answer.")
        }
        cursor = next
        if next == "0-0" { finished = true }
        try member.countDeliveries(of: &entries, listed: listed, on: connection) { failure("XPENDING", $0) }
        return (entries, deleted)
    }

    /// XACK; how many were still pending.
    @discardableResult
    func acknowledge(_ ids: [String]) throws -> Int {
        guard !ids.isEmpty else { return 0 }
        let reply = try connection.call(member.acknowledgement(ids))
        if case .error(let message) = reply { throw failure("XACK", message) }
        if case .integer(let count) = reply { return count }
        return 0
    }

    /// Deletes `consumer` from the group unless entries are pending for it.
    func deleteConsumerIfNothingPending() throws {
        _ = try Self.deleteConsumerIfNothingPending(connection: connection, stream: stream, group: group, consumer: consumer)
    }

    /// What became of a consumer that `deleteConsumerIfNothingPending` was asked to delete.
    enum ConsumerDeletion: Equatable {
        /// Entries were pending for it: it was kept.
        case kept
        /// XGROUP DELCONSUMER ran; its answer is how many pending entries it dropped.
        case deleted(dropped: Int)
    }

    /// XGROUP DELCONSUMER drops the consumer's pending entries with it, so the check and the
    /// delete run as one script: nothing claimed in between can be lost.
    static func deleteConsumerIfNothingPending(connection: RedisConnection, stream: String, group: String,
                                               consumer: String) throws -> ConsumerDeletion {
        let script = """
            if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return -1 end
            return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
            """
        let reply = try connection.call(["EVAL", script, "1", stream, group, consumer])
        if case .error(let message) = reply { throw failure("XGROUP DELCONSUMER", message, stream: stream, group: group) }
        if case .integer(let dropped) = reply, dropped >= 0 { return .deleted(dropped: dropped) }
        return .kept
    }

    /// `--dry-run`: XPENDING with IDLE, a page at a time: (id, consumer, idle ms, deliveries).
    func pending(after: String?, limit: Int) throws -> [(id: String, consumer: String, idleMs: Int, deliveries: Int)] {
        let start = after.map { "(" + $0 } ?? "-"
        let reply = try connection.call(["XPENDING", stream, group, "IDLE", String(minIdleMs), start, "+", String(limit)])
        if case .error(let message) = reply { throw failure("XPENDING", message) }
        guard case .array(let rows) = reply else { return [] }
        return rows.compactMap { row in
            guard case .array(let fields) = row, fields.count >= 4, let id = fields[0].text, let owner = fields[1].text,
                  case .integer(let idle) = fields[2], case .integer(let deliveries) = fields[3] else { return nil }
            return (id, owner, idle, deliveries)
        }
    }
}
