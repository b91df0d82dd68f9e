/// A copy's checkpoint as the Redis hash `evt:checkpoint:NAME`:
/// - `source` and `target`: the copy it belongs to (`topic:orders`, `stream:orders`);
/// - `id` (a stream source's last copied entry) or `partition:N` (a topic's next offset);
/// - `owner`, `owner_process` and `owner_until`: the copy that holds it (its name, and the
///   process, so that a copy on the same machine can tell that it is gone) and when its
///   lease runs out, in milliseconds of Redis' own clock (CheckpointLease), so that no two
///   copies use it at once;
/// - `batch`: the token that the stream target's guard checks (StreamBatchWriter); each claim
///   sets a new one, so a copy that lost the checkpoint can no longer write a batch.
/// Claiming, saving and releasing are scripts: each decides and writes in one step.
///
/// A list source keeps no position (its processing list is `evt:checkpoint:NAME`): its copy
/// is recorded, with its lease, in the hash `evt:checkpoint:NAME:lease`.
/// On a Redis Cluster the hash carries the hash tag of the key it belongs to
/// (`evt:checkpoint:NAME{orders}`), so that it shares that key's slot.
final class RedisHashCheckpoint: CheckpointStore {
    let server: RedisServerAddress
    /// `evt:checkpoint:NAME` until the server was asked whether it is a cluster.
    private(set) var key: String
    private let baseKey: String
    /// The stream or list whose slot the checkpoint must share on a cluster.
    let companion: String
    /// The target of the copy, as the hash records it.
    private let target: String
    /// The `batch` token the last claim set: a stream target's first batch must find it.
    private(set) var claimToken = ""
    private var claims = 0
    /// When this run last renewed its lease (monotonic); nil while it holds none.
    private var renewedAt: Int?
    /// Opened on first use and dropped when it fails, so a bridge that rides out an outage
    /// reads and writes through a new one.
    private var connection: RedisConnection?

    init(server: RedisServerAddress, key: String, sharingSlotWith companion: String, target: String) {
        self.server = server
        self.key = key
        baseKey = key
        self.companion = companion
        self.target = target
    }

    var name: String { "checkpoint \(key)" }

    /// The hash's name on this server (asked once: a bridge may start before Redis does).
    func resolvedKey() throws -> String {
        if !resolved {
            key = try ClusterRouter.of(server).derivedKey(key, sharing: companion)
            resolved = true
        }
        return key
    }
    private var resolved = false

    /// This run's own key in the checkpoint's slot, which a stream target's batch watches
    /// with the checkpoint: its guard writes it to abort a batch it refuses (StreamBatchWriter).
    func fenceKey() throws -> String {
        try ClusterRouter.of(server).derivedKey("\(baseKey):fence:\(CheckpointLease.runID)", sharing: companion)
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

    func claim(source identity: String) throws -> SourcePosition? {
        claims += 1
        let token = "\(CheckpointLease.runID):\(claims)"
        var goneHolder = ""
        var words: [RedisValue] = []
        while true {
            let reply = try call(["EVAL", Self.claimScript, "1", resolvedKey(), identity, target, CheckpointLease.owner,
                                  String(CheckpointLease.durationMs), token, CheckpointLease.process, goneHolder], "read")
            guard case .array(let answer) = reply, let verdict = answer.first?.text else {
                throw EvtError(.refused(code: ""), "cannot read \(name): unexpected answer \(reply).")
            }
            words = answer
            let recorded = words.count > 1 ? words[1].text ?? "" : ""
            let remedy = "Choose another --checkpoint NAME, or delete it to start over: redis-cli DEL \(key)."
            switch verdict {
            case "source": throw EvtError.usage("\(name) belongs to a copy from \(recorded), not from \(identity). \(remedy)")
            case "target": throw EvtError.usage("\(name) belongs to a copy into \(recorded), not into \(target). \(remedy)")
            case "owner":
                // A holder killed on this machine is known gone: its lease need not run out.
                if goneHolder != recorded, words.count > 3, let process = words[3].text, CheckpointLease.isGone(process) {
                    Diagnostics.print("\(name) was held by \(recorded), which is no longer running: this copy takes it over.")
                    goneHolder = recorded
                    continue
                }
                throw CheckpointLease.inUse(name, holder: recorded, freeInMs: words.count > 2 ? words[2].text.flatMap { Int($0) } : nil)
            default: break
            }
            break
        }
        claimToken = token
        renewedAt = monotonicMilliseconds()
        var position = SourcePosition()
        var index = 1
        while index + 1 < words.count {
            let (field, value) = (words[index].text ?? "", words[index + 1].text ?? "")
            if field == "id" {
                position.id = StreamID(value)
            } else if field.hasPrefix("partition:"), let partition = Int32(field.dropFirst("partition:".count)), let next = Int64(value) {
                position.offsets[partition] = next
            }
            index += 2
        }
        return position.id == nil && position.offsets.isEmpty ? nil : position
    }

    func save(_ position: SourcePosition) throws {
        try renew(with: RedisHashCheckpoint.fields(position))
    }

    func keepAlive() throws {
        guard let renewedAt, monotonicMilliseconds() - renewedAt >= CheckpointLease.renewEveryMs else { return }
        try renew(with: [])
    }

    /// Writes `fields` and renews the lease, if this run still holds it.
    private func renew(with fields: [(String, String)]) throws {
        let reply = try call(["EVAL", Self.saveScript, "1", resolvedKey(), CheckpointLease.owner, String(CheckpointLease.durationMs)]
                             + fields.flatMap { [$0.0, $0.1] }, "write")
        guard case .array(let words) = reply, case .integer(1)? = words.first else {
            renewedAt = nil
            if case .array(let words) = reply, words.count > 1 { throw CheckpointLease.lost(name, holder: words[1].text) }
            throw CheckpointLease.lost(name, holder: nil)
        }
        renewedAt = monotonicMilliseconds()
    }

    func release() {
        guard renewedAt != nil else { return }
        renewedAt = nil
        _ = try? call(["EVAL", Self.releaseScript, "1", resolvedKey(), CheckpointLease.owner], "release")
    }

    /// The hash fields that record `position` (the stream target writes them in its batches).
    static func fields(_ position: SourcePosition) -> [(String, String)] {
        var fields: [(String, String)] = []
        if let id = position.id { fields.append(("id", id.description)) }
        for (partition, next) in position.offsets { fields.append(("partition:\(partition)", String(next))) }
        return fields
    }

    /// Redis' clock in milliseconds, in the scripts below (a lease outlives any one client's clock).
    static let now = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)"

    /// KEYS[1] the checkpoint; ARGV: source, target, owner, lease ms, the new batch token,
    /// this process, a holder known to be gone (or ""). {'source'|'target', recorded}:
    /// another copy's; {'owner', holder, ms left, holder's process}: held; {'ok', field,
    /// value, …}: taken.
    static let claimScript = """
        local f = redis.call('HMGET', KEYS[1], 'source', 'target', 'owner', 'owner_until', 'owner_process')
        if f[1] and f[1] ~= ARGV[1] then return {'source', f[1]} end
        if f[2] and f[2] ~= ARGV[2] then return {'target', f[2]} end
        \(now)
        local expires = tonumber(f[4]) or 0
        if f[3] and f[3] ~= ARGV[3] and f[3] ~= ARGV[7] and expires > now then
          return {'owner', f[3], string.format('%d', expires - now), f[5] or ''}
        end
        redis.call('HSET', KEYS[1], 'source', ARGV[1], 'target', ARGV[2], 'owner', ARGV[3], 'owner_process', ARGV[6],
          'owner_until', string.format('%d', now + tonumber(ARGV[4])), 'batch', ARGV[5])
        local all = redis.call('HGETALL', KEYS[1])
        table.insert(all, 1, 'ok')
        return all
        """

    /// KEYS[1] the checkpoint; ARGV: owner, lease ms, then field/value pairs to write.
    /// {1}: written, lease renewed; {0, holder}: this run no longer holds it.
    static let saveScript = """
        local owner = redis.call('HGET', KEYS[1], 'owner')
        if owner ~= ARGV[1] then return {0, owner or ''} end
        \(now)
        redis.call('HSET', KEYS[1], 'owner_until', string.format('%d', now + tonumber(ARGV[2])), unpack(ARGV, 3))
        return {1}
        """

    /// KEYS[1] the checkpoint; ARGV[1] owner: the lease ends now, if this run holds it.
    static let releaseScript = """
        if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then redis.call('HDEL', KEYS[1], 'owner', 'owner_process', 'owner_until') end
        return 1
        """
}
