/// One consumer of a stream group, as XINFO CONSUMERS reports it.
struct StreamConsumer {
    var name: String
    var pending: Int64
    var idleMs: Int64
}

/// `evt consumers STREAM GROUP`: a stream group's consumers (XINFO CONSUMERS), and
/// `--prune-idle`: the idle ones deleted once their pending entries belong to another.
final class RedisConsumers {
    private let connection: RedisConnection
    let stream: String
    let group: String
    private static let pageSize = 100

    init(server: RedisServerAddress, stream: String, group: String) throws {
        connection = try RedisConnection.open(server, key: stream)
        self.stream = stream
        self.group = group
    }

    private func failure(_ command: String, _ message: String) -> EvtError {
        RedisClaimer.failure(command, message, stream: stream, group: group)
    }

    func list() throws -> [StreamConsumer] {
        let reply = try connection.call(["XINFO", "CONSUMERS", stream, group])
        if case .error(let message) = reply {
            if RedisErrorReply.cause(message) != .refused(code: "NOGROUP"),
               case .status(let type) = try connection.call(["TYPE", stream]), type != "stream" {
                let server = connection.address.description
                if type == "none" {
                    throw EvtError(.refused(code: "NO_SUCH_KEY"), "stream \(stream) does not exist on \(server), so it has no group \(group). Check the name and the server (EVT_REDIS_URL or a redis:// endpoint).")
                }
                throw EvtError(.refused(code: "WRONGTYPE"), "\(stream) on \(server) is a Redis \(type), not a stream, so it has no groups.")
            }
            throw failure("XINFO CONSUMERS", message)
        }
        guard case .array(let rows) = reply else { return [] }
        return rows.compactMap { row in
            guard case .array(let fields) = row else { return nil }
            var consumer = StreamConsumer(name: "", pending: 0, idleMs: 0)
            var index = 0
            while index + 1 < fields.count {
                switch (fields[index].text, fields[index + 1]) {
                case ("name", let value): consumer.name = value.text ?? ""
                case ("pending", .integer(let count)): consumer.pending = Int64(count)
                case ("idle", .integer(let ms)): consumer.idleMs = Int64(ms)
                default: break
                }
                index += 2
            }
            return consumer
        }
    }

    /// Hands every entry pending for `consumer` to `heir` (XCLAIM … JUSTID: delivery counts
    /// unchanged), a page of XPENDING at a time; how many it handed over.
    func handOver(from consumer: String, to heir: String) throws -> Int {
        var handed = 0
        while !Signals.stopRequested {
            let page = try connection.call(["XPENDING", stream, group, "-", "+", String(Self.pageSize), consumer])
            if case .error(let message) = page { throw failure("XPENDING", message) }
            guard case .array(let rows) = page, !rows.isEmpty else { return handed }
            let ids = rows.compactMap { row -> String? in
                guard case .array(let fields) = row else { return nil }
                return fields.first?.text
            }
            let claim = try connection.call(["XCLAIM", stream, group, heir, "0"] + ids + ["JUSTID"])
            if case .error(let message) = claim { throw failure("XCLAIM", message) }
            guard case .array(let claimed) = claim, !claimed.isEmpty else {
                // An id that XPENDING lists but XCLAIM does not take was deleted from the
                // stream: Redis 7 drops such ids from the PEL as XCLAIM meets them, so the
                // next page moves on; only a page where nothing moved would loop.
                let again = try connection.call(["XPENDING", stream, group, "-", "+", String(Self.pageSize), consumer])
                if again == page {
                    throw EvtError(.refused(code: ""), "XCLAIM would not take the pending entries of consumer \(consumer) of group \(group) on stream \(stream) (the first is \(ids.first ?? "?")); it was kept.")
                }
                continue
            }
            handed += claimed.count
        }
        throw EvtError(.stopped, "stopped while handing the pending entries of consumer \(consumer) to \(heir); \(handed) were handed over, the consumer was kept.")
    }

    /// Deletes `consumer` if nothing is pending for it (RedisClaimer's one-script check).
    func deleteIfNothingPending(_ consumer: String) throws -> RedisClaimer.ConsumerDeletion {
        try RedisClaimer.deleteConsumerIfNothingPending(connection: connection, stream: stream, group: group,
                                                        consumer: consumer)
    }
}
