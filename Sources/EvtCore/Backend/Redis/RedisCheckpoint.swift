/// A copy's checkpoint as the Redis hash `evt:checkpoint:NAME`: `source` (what was copied),
/// `id` (a stream source's last copied entry) or `partition:N` (a topic's next offset), and
/// `batch`, the token that the stream target's guard script checks (StreamCopyTarget).
/// On a Redis Cluster the hash carries the hash tag of the key it belongs to
/// (`evt:checkpoint:NAME{orders}`), so that it shares that key's slot.
final class RedisHashCheckpoint: CheckpointStore {
    let server: RedisServerAddress
    /// `evt:checkpoint:NAME` until the server was asked whether it is a cluster.
    private(set) var key: String
    /// The stream or list whose slot the checkpoint must share on a cluster.
    private let companion: String
    private var resolved = false
    /// Opened on first use and dropped when it fails, so a bridge that rides out an outage
    /// reads and writes through a new one.
    private var connection: RedisConnection?

    init(server: RedisServerAddress, key: String, sharingSlotWith companion: String) {
        self.server = server
        self.key = key
        self.companion = companion
    }

    var name: String { "checkpoint \(key)" }

    /// The hash's name on this server (asked once: a bridge may start before Redis does).
    func resolvedKey() throws -> String {
        if !resolved {
            key = try RedisTopology.of(server).derivedKey(key, sharing: companion)
            resolved = true
        }
        return key
    }

    private func call(_ words: [String], _ what: String) throws -> RedisValue {
        do {
            let key = try resolvedKey()
            let connection = try self.connection ?? RedisConnection.open(server, key: key)
            self.connection = connection
            let reply = try connection.call(words)
            if case .error(let message) = reply { throw RedisErrorReply.error(message, "cannot \(what) \(name)") }
            return reply
        } catch let error as EvtError where error.isRetriable {
            connection = nil
            throw error
        }
    }

    func load(source identity: String) throws -> SourcePosition? {
        guard case .array(let words) = try call(["HGETALL", resolvedKey()], "read") else { return nil }
        var fields: [String: String] = [:]
        var index = 0
        while index + 1 < words.count {
            fields[words[index].text ?? ""] = words[index + 1].text ?? ""
            index += 2
        }
        guard !fields.isEmpty else { return nil }
        if let recorded = fields["source"], recorded != identity {
            throw EvtError.usage("\(name) belongs to a copy from \(recorded), not from \(identity). Choose another --checkpoint NAME, or delete it: redis-cli DEL \(key).")
        }
        var position = SourcePosition()
        position.id = fields["id"].flatMap(StreamID.init)
        for (field, value) in fields where field.hasPrefix("partition:") {
            if let partition = Int32(field.dropFirst("partition:".count)), let next = Int64(value) {
                position.offsets[partition] = next
            }
        }
        return position
    }

    func save(_ position: SourcePosition, source identity: String) throws {
        _ = try call(["HSET", resolvedKey()] + RedisHashCheckpoint.fields(position, source: identity).flatMap { [$0.0, $0.1] }, "write")
    }

    /// The hash fields that record `position` (the stream target writes them in its batches).
    static func fields(_ position: SourcePosition, source identity: String) -> [(String, String)] {
        var fields = [("source", identity)]
        if let id = position.id { fields.append(("id", id.description)) }
        for (partition, next) in position.offsets { fields.append(("partition:\(partition)", String(next))) }
        return fields
    }
}
