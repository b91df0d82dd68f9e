import Synchronization

/// What a Redis address is: one server, or a Redis Cluster, and then which master serves each
/// slot. Found out once per address and run (`CLUSTER SLOTS`), and again
/// when a MOVED answer or a lost master shows the map is old. Every Redis connection of a
/// command is made here, for the key it works on, so commands know their key, not the
/// server's shape.
final class RedisTopology: @unchecked Sendable {
    let server: RedisServerAddress
    /// nil: a standalone server (or not asked yet).
    private(set) var slots: ClusterSlotMap?
    private var discovered = false

    /// By the whole address: credentials and TLS settings are the topology's connections' too.
    private static let known = Mutex<[RedisServerAddress: RedisTopology]>([:])

    private init(_ server: RedisServerAddress) { self.server = server }

    /// The topology of `server`, shared by every connection to it in this run.
    static func of(_ server: RedisServerAddress) -> RedisTopology {
        known.withLock { topologies in
            if let known = topologies[server] { return known }
            let made = RedisTopology(server)
            topologies[server] = made
            return made
        }
    }

    var isCluster: Bool { slots != nil }

    /// A connection to the server that serves `key`: on a cluster the master of its slot,
    /// else the server itself. `key` nil: any node (pub/sub reaches every node of a cluster).
    /// The first connection for a key asks what the server is (`learn`), so that commands
    /// go to the slot's master from the first one on.
    func connect(key: String?, connectTimeoutMs: Int = 5000, answerWaitMs: Int = 10_000, mayRefresh: Bool = true) throws -> RedisConnection {
        if isStale {
            isStale = false
            try? refresh()
        }
        if !discovered, key != nil {
            let seed = try connectToSeed(connectTimeoutMs: connectTimeoutMs)
            seed.writeStallLimitMs = answerWaitMs
            try learn(on: seed)
            let owner = slots?.master(forSlot: ClusterSlot.of(key!))
            if owner == nil || (owner!.host == seed.address.host && owner!.port == seed.address.port) {
                seed.topology = self
                return seed
            }
        }
        guard let slots, let key else {
            let connection = try connectToSeed(connectTimeoutMs: connectTimeoutMs)
            connection.topology = self
            return connection
        }
        let slot = ClusterSlot.of(key)
        guard let owner = slots.master(forSlot: slot) else {
            throw EvtError(.transient(code: "CLUSTERDOWN"), "no master of \(server.description) serves slot \(slot) (key \(key)) now; the cluster may be failing over or not fully set up (redis-cli --cluster check).")
        }
        let connection: RedisConnection
        do {
            connection = try RedisConnection(server.at(RedisNode(host: owner.host, port: owner.port)), connectTimeoutMs: connectTimeoutMs)
        } catch let error as EvtError where error.cause == .connectionLost && mayRefresh {
            // The master known for the slot is gone (failed over?): read the map again, once.
            try refresh()
            return try connect(key: key, connectTimeoutMs: connectTimeoutMs, answerWaitMs: answerWaitMs, mayRefresh: false)
        }
        connection.topology = self
        return connection
    }

    /// Reads the slot map again (after MOVED, or when a master is gone), from any node that
    /// answers: the seeds first, then the masters last known.
    func refresh(connectTimeoutMs: Int = 2000) throws {
        var candidates = server.seeds
        for master in slots?.masters ?? [] {
            let node = RedisNode(host: master.host, port: master.port)
            if !candidates.contains(node) { candidates.append(node) }
        }
        var lastError: Error?
        for node in candidates {
            do {
                let connection = try RedisConnection(server.at(node), connectTimeoutMs: connectTimeoutMs)
                let reply = try connection.call(["CLUSTER", "SLOTS"])
                slots = try ClusterSlotMap(slotsReply: reply, seedHost: node.host)
                discovered = true
                return
            } catch {
                lastError = error
            }
        }
        throw lastError ?? EvtError(.connectionLost, "no node of \(server.description) answered")
    }

    /// Learns on `connection` (to a node of this server) whether it is a Redis Cluster, and
    /// then its slot map: one `CLUSTER SLOTS`, once per run. A standalone server answers it
    /// with an error, and so does a cluster whose user may not ask (ACL): its MOVED answers
    /// then show it, and the map is read again by `refresh`.
    func learn(on connection: RedisConnection) throws {
        guard !discovered else { return }
        let reply = try connection.call(["CLUSTER", "SLOTS"])
        discovered = true
        if case .error = reply { return }
        slots = try ClusterSlotMap(slotsReply: reply, seedHost: connection.address.host)
    }

    /// `learn` on the first seed that answers, for what must be known before the first
    /// command (the names of derived keys).
    private func discover(connectTimeoutMs: Int = 5000) throws {
        try learn(on: connectToSeed(connectTimeoutMs: connectTimeoutMs))
    }

    private func connectToSeed(connectTimeoutMs: Int) throws -> RedisConnection {
        var firstError: Error?
        for node in server.seeds {
            do {
                return try RedisConnection(server.at(node), connectTimeoutMs: connectTimeoutMs)
            } catch let error as EvtError where error.cause == .connectionLost {
                firstError = firstError ?? error
            }
        }
        throw firstError!
    }

    /// Set when a connection saw a MOVED answer: the next connection made reads the map
    /// (again) first — the first MOVED is how a cluster shows itself; a slot seldom moves alone.
    var isStale = false

    /// The name of a key evt derives from `key` (a copy's checkpoint, a processing list):
    /// `derived` itself on a standalone server; on a cluster `derived{TAG}`, TAG being
    /// `key`'s hash tag or else `key` itself, so that both share a slot and one MULTI/EXEC
    /// or LMOVE may touch both.
    func derivedKey(_ derived: String, sharing key: String) throws -> String {
        if !discovered { try discover() }
        guard isCluster, ClusterSlot.of(derived) != ClusterSlot.of(key) else { return derived }
        guard let tagged = ClusterSlot.keyWithTag(derived, sharing: key) else {
            throw EvtError.usage("\(derived) contains a {, so on the Redis Cluster \(server.description) evt cannot give it the hash tag of \(key) (it must share that key's slot); choose a name without braces.")
        }
        return tagged
    }

    /// On a cluster, refuses `keys` that one command or transaction must touch together but
    /// that fall in different slots (Redis would answer CROSSSLOT); `why` says what needs them.
    func requireOneSlot(_ keys: [String], for why: String) throws {
        if !discovered { try discover() }
        guard isCluster, let first = keys.first else { return }
        let slot = ClusterSlot.of(first)
        guard let other = keys.first(where: { ClusterSlot.of($0) != slot }) else { return }
        let tag = ClusterSlot.hashTag(of: first) ?? first
        throw EvtError.usage("\(why) on the Redis Cluster \(server.description): \(first) (slot \(slot)) and \(other) (slot \(ClusterSlot.of(other))) are in different slots. Give them one hash tag, e.g. {\(tag)}, so they share a slot.")
    }
}
