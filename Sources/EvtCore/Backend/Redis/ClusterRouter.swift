import Synchronization

/// Where a Redis key's commands go, and what to do when a Redis Cluster answers "not here" or
/// "not now": the one place every Redis path asks (publish's lanes, set-up calls, a copy's
/// target, the readers). One per server address and run, shared by its connections, which
/// know nothing of slots themselves.
///
/// It owns the slot map as a value (ClusterSlotMap): read once per run (`CLUSTER SLOTS`),
/// changed slot by slot by MOVED answers, and read again whole when a MOVED answer showed it
/// old (a slot seldom moves alone) or a master is gone. The map is guarded: every read and
/// change is one step under a lock, and network calls are made outside it.
final class ClusterRouter: Sendable {
    let server: RedisServerAddress

    private struct State {
        /// nil: a standalone server (or not asked yet).
        var slots: ClusterSlotMap?
        var discovered = false
        /// A MOVED answer came since the map was read: read it again at the next chance.
        var refreshDue = false
    }
    private let state: Mutex<State>

    /// By the whole address: credentials and TLS settings are the router's connections' too.
    private static let known = Mutex<[RedisServerAddress: ClusterRouter]>([:])

    /// A router of its own (tests); commands share one per server through `of`.
    init(_ server: RedisServerAddress, slots: ClusterSlotMap? = nil) {
        self.server = server
        state = Mutex(State(slots: slots, discovered: slots != nil))
    }

    /// The router of `server`, shared by every connection to it in this run.
    static func of(_ server: RedisServerAddress) -> ClusterRouter {
        known.withLock { routers in
            if let known = routers[server] { return known }
            let made = ClusterRouter(server)
            routers[server] = made
            return made
        }
    }

    /// The slot map as it is now (a copy: a caller that must not see it change under its
    /// commands in flight keeps its own, as publish's sink does).
    var slots: ClusterSlotMap? { state.withLock { $0.slots } }
    var isCluster: Bool { slots != nil }
    private var discovered: Bool { state.withLock { $0.discovered } }

    /// The node that serves `key` as far as known: nil on a standalone server, for a slot no
    /// master serves now, or before the map was read.
    func node(forKey key: String) -> RedisNode? {
        state.withLock { $0.slots?.master(forSlot: ClusterSlot.of(key)) }.map { RedisNode(host: $0.host, port: $0.port) }
    }

    // MARK: Connections

    /// A connection to the server that serves `key`: on a cluster the master of its slot,
    /// else the server itself. `key` nil: any node (pub/sub reaches every node of a cluster).
    /// The first connection for a key asks what the server is (`learn`), so that commands
    /// go to the slot's master from the first one on.
    func connect(key: String?, connectTimeoutMs: Int = 5000, answerWaitMs: Int = 10_000, mayRefresh: Bool = true) throws -> RedisConnection {
        try refreshIfDue()
        if !discovered, let key {
            let seed = try connectToSeed(connectTimeoutMs: connectTimeoutMs)
            seed.writeStallLimitMs = answerWaitMs
            try learn(on: seed)
            let owner = node(forKey: key)
            if owner == nil || (owner!.host == seed.address.host && owner!.port == seed.address.port) {
                seed.router = self
                return seed
            }
        }
        guard let slots, let key else {
            let connection = try connectToSeed(connectTimeoutMs: connectTimeoutMs)
            connection.router = self
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
        connection.router = self
        return connection
    }

    /// A connection to `node` (one a redirect named), with this server's credentials.
    func connect(to node: RedisNode, connectTimeoutMs: Int = 5000) throws -> RedisConnection {
        let connection = try RedisConnection(server.at(node), connectTimeoutMs: connectTimeoutMs)
        connection.router = self
        return connection
    }

    // MARK: The slot map

    /// Reads the slot map again, from any node that answers: the seeds first, then the
    /// masters last known.
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
                let map = try ClusterSlotMap(slotsReply: try connection.call(["CLUSTER", "SLOTS"]), seedHost: node.host)
                state.withLock { $0.slots = map; $0.discovered = true; $0.refreshDue = false }
                return
            } catch {
                lastError = error
            }
        }
        throw lastError ?? EvtError(.connectionLost, "no node of \(server.description) answered")
    }

    /// Reads the map again if a MOVED answer showed it old; a failure leaves it as it is (the
    /// next MOVED answer points the way anyway).
    func refreshIfDue() throws {
        guard state.withLock({ $0.refreshDue }) else { return }
        state.withLock { $0.refreshDue = false }
        try? refresh()
    }

    /// Learns on `connection` (to a node of this server) whether it is a Redis Cluster, and
    /// then its slot map: one `CLUSTER SLOTS`, once per run. A standalone server answers it
    /// with an error, and so does a cluster whose user may not ask (ACL): its MOVED answers
    /// then show it, and the map is read again by `refresh`.
    func learn(on connection: RedisConnection) throws {
        guard !discovered else { return }
        let reply = try connection.call(["CLUSTER", "SLOTS"])
        if case .error = reply {
            state.withLock { $0.discovered = true }
            return
        }
        let map = try ClusterSlotMap(slotsReply: reply, seedHost: connection.address.host)
        state.withLock { $0.slots = map; $0.discovered = true }
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

    // MARK: Error answers

    /// What to do about an error answer `errorText` from `node` to a command on its way
    /// through `course`: its own answer, a redirect, a retry after a pause, or give up. A MOVED
    /// answer moves its slot in the map at once (and the whole map is read again at the next
    /// `refreshIfDue`); the first one is also how a cluster whose map evt could not read shows itself.
    func decide(_ errorText: String, answeredBy node: RedisNode, course: inout ClusterRedirects,
                now: Int = monotonicMilliseconds()) -> ClusterAction {
        let answer = ClusterAnswer(errorText: errorText, answeredBy: node)
        note(answer)
        return course.next(answer, now: now)
    }

    /// What `errorText` from `node` says, limits aside, the map updated for a MOVED answer:
    /// for a pipeline, which decides per answer where a command goes and per round whether to
    /// go on (`ClusterRedirects.next`).
    func classify(_ errorText: String, answeredBy node: RedisNode) -> ClusterAnswer {
        let answer = ClusterAnswer(errorText: errorText, answeredBy: node)
        note(answer)
        return answer
    }

    /// Takes in what `errorText` from `node` says about the map (a MOVED answer moves its
    /// slot), for a caller that retries on its own terms (the copy loop, after a batch).
    func learn(from errorText: String, answeredBy node: RedisNode) {
        note(ClusterAnswer(errorText: errorText, answeredBy: node))
    }

    private func note(_ answer: ClusterAnswer) {
        guard case .elsewhere(let slot, let target, asking: false) = answer else { return }
        state.withLock { state in
            state.refreshDue = true
            if state.slots == nil {
                state.discovered = true   // a MOVED answer: a cluster after all; its map is read at the next chance
            } else {
                state.slots!.assign(slot: slot, to: target)
            }
        }
    }

    // MARK: Keys that share a slot

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

/// What a Redis error answer says about where and when a command can go, limits aside.
enum ClusterAnswer: Equatable, Sendable {
    /// Not a cluster's "elsewhere" or "not now": the command's own answer (WRONGTYPE, …).
    case own
    /// MOVED (`asking` false: the slot is served by `node` now) or ASK (`asking`: it is being
    /// moved there; this one command goes there after ASKING).
    case elsewhere(slot: Int, node: RedisNode, asking: Bool)
    /// TRYAGAIN (a multi-key command while its keys move) or CLUSTERDOWN (no master for some
    /// slot yet, during a failover): the same node again, later. `code` is the answer's word.
    case notNow(code: String)

    /// `node`: the one that answered (Redis 7 may leave a redirect's host out).
    init(errorText: String, answeredBy node: RedisNode) {
        if let redirect = ClusterRedirect(errorText: errorText) {
            self = .elsewhere(slot: redirect.slot, node: RedisNode(host: redirect.host.isEmpty ? node.host : redirect.host, port: redirect.port),
                              asking: redirect.isAsk)
        } else if RedisErrorReply.isClusterNotNow(errorText) {
            self = .notNow(code: String(errorText.prefix { $0 != " " }))
        } else {
            self = .own
        }
    }
}

/// What to do next with a command a cluster answered.
enum ClusterAction: Equatable, Sendable {
    /// The answer is the command's own.
    case answer
    /// Send it again to `node`, after ASKING when `asking`.
    case redirect(RedisNode, asking: Bool)
    /// Send it again to the same node after `afterMs`.
    case retry(afterMs: Int)
    /// Give up: nothing of it was applied. `reason` says why and what to do.
    case fail(FailureCause, reason: String)
}

/// One command's (or one pipeline's) way through a cluster's redirects, under the limits
/// every Redis path of evt keeps:
/// - MOVED and ASK are followed at once, at most `maxRedirects` (16) in a row with nothing
///   applied in between: a slot map that keeps contradicting itself fails, not loops;
/// - TRYAGAIN and CLUSTERDOWN are waited out: the same command again after 50 ms, the pause
///   doubled up to 1 s, until `timeoutMs` (--timeout; --retry-for for a group read) has passed
///   since the first such answer.
/// `applied()` (a command went through) starts both limits again.
struct ClusterRedirects: Sendable {
    static let maxRedirects = 16
    static let firstPauseMs = 50
    static let longestPauseMs = 1000

    let timeoutMs: Int
    private(set) var redirectsInARow = 0
    private var notNowSince: Int?
    private var pauseMs = ClusterRedirects.firstPauseMs

    init(timeoutMs: Int) { self.timeoutMs = timeoutMs }

    mutating func applied() {
        redirectsInARow = 0
        notNowSince = nil
        pauseMs = ClusterRedirects.firstPauseMs
    }

    /// The next step after `answer`, at `now` (monotonic ms).
    mutating func next(_ answer: ClusterAnswer, now: Int) -> ClusterAction {
        switch answer {
        case .own:
            return .answer
        case .elsewhere(_, let node, let asking):
            redirectsInARow += 1
            guard redirectsInARow <= ClusterRedirects.maxRedirects else {
                return .fail(.transient(code: "CLUSTERDOWN"),
                             reason: "the cluster kept redirecting it (MOVED/ASK \(ClusterRedirects.maxRedirects) times in a row); its slots keep moving. Try again later; check the cluster with redis-cli --cluster check")
            }
            return .redirect(node, asking: asking)
        case .notNow(let code):
            let since = notNowSince ?? now
            notNowSince = since
            let pause = pauseMs
            guard now - since + pause <= timeoutMs else {
                return .fail(.transient(code: code),
                             reason: "the cluster kept answering \(code) for --timeout (\(timeoutMs / 1000)s); it is failing over or resharding. Try again later; check it with redis-cli --cluster check")
            }
            pauseMs = min(pauseMs * 2, ClusterRedirects.longestPauseMs)
            return .retry(afterMs: pause)
        }
    }

    /// The step after an error of `cause`, for a caller that cannot send the one command
    /// again itself and starts over where the router now points (a copy, from its confirmed
    /// position): `.retry(afterMs: 0)` after MOVED (at once), a pause after ASK, TRYAGAIN
    /// and CLUSTERDOWN (the slot is still moving, and the map still names its old master),
    /// `.fail` past the limits, `.answer` for any other cause.
    mutating func next(after cause: FailureCause, now: Int) -> ClusterAction {
        let answer: ClusterAnswer
        switch cause {
        case .moved(let code) where code == "ASK": answer = .notNow(code: code)
        case .moved: answer = .elsewhere(slot: -1, node: RedisNode(host: "", port: 0), asking: false)
        case .transient(let code) where code == "TRYAGAIN" || code == "CLUSTERDOWN": answer = .notNow(code: code)
        default: answer = .own
        }
        let action = next(answer, now: now)
        if case .redirect = action { return .retry(afterMs: 0) }
        return action
    }
}
