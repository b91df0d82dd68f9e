/// The connection a stream reader or a list queue reads on. Acknowledgements (XACK, LREM, a
/// list's push back) are queued and go out in one write with the next read; their answers are
/// read before that read's, and checked then. A lost connection is reopened with backoff for
/// `retryForMs`; XACKs whose answer was lost are sent again (XACK is idempotent). On a
/// cluster, a stream read that meets ASK (its slot is being moved) goes on on the importing
/// node the answer named, every command after ASKING, until the move is done (there ASKING
/// changes nothing) or a MOVED answer sends it where the router points.
final class RedisConsumerConnection {
    /// An acknowledgement sent and not yet answered.
    enum Acknowledgement {
        /// XACK, kept for a resend.
        case xack(XAckCommand)
        /// LREM of a handled item from the processing list (named for messages).
        case lrem(processingList: String)
        /// Items a plain list gives back (LPUSH / RPUSH).
        case pushBack
        /// ASKING before the acknowledgement after it.
        case asking
    }

    private(set) var connection: RedisConnection
    let server: RedisServerAddress
    /// The stream or list read (on a cluster, the connection goes to its master).
    let key: String
    let retryForMs: Int
    private var inFlight: [Acknowledgement] = []
    /// Whether an ASK answer moves the reads to the importing node (a stream's).
    private let followsAsk: Bool
    /// The importing node the last ASK answer named, where `reconnect` goes on.
    private var importingNode: RedisNode?
    /// True while reading on an importing node: every command goes after ASKING.
    private(set) var asking = false

    init(server: RedisServerAddress, key: String, retryForMs: Int, followsAsk: Bool) throws {
        self.server = server
        self.key = key
        self.retryForMs = retryForMs
        self.followsAsk = followsAsk
        connection = try RedisConnection.open(server, key: key)
    }

    /// Queues an XACK (RedisStreamGroup.acknowledgement): it goes out with the next command.
    func queueXAck(_ xack: XAckCommand) {
        if asking {
            connection.outgoing.command(["ASKING"])
            inFlight.append(.asking)
        }
        connection.outgoing.appendCommand(xack.resp[...])
        inFlight.append(.xack(xack))
    }

    /// Notes an acknowledgement the caller wrote into `connection.outgoing` itself.
    func queued(_ acknowledgement: Acknowledgement) { inFlight.append(acknowledgement) }

    /// Sends what is queued (acknowledgements, then `words`) and reads the acknowledgements'
    /// replies; the caller reads the reply to `words`.
    func send(_ words: [String]) throws {
        if asking { connection.outgoing.command(["ASKING"]) }
        connection.outgoing.command(words)
        try connection.flushWrites()
        try readAcknowledgementReplies()
        if asking { try skipAskingReply() }
    }

    /// ASKING's +OK (an error would be repeated by the command after it).
    private func skipAskingReply() throws {
        if try connection.nextReply(waitMs: 10_000, stopOnSignal: false, { _ in }) != .reply {
            throw connection.lost("no answer to ASKING within 10 s")
        }
    }

    /// Tells the router of a cluster's answer (a MOVED moves the slot on its map) and keeps
    /// the node an ASK named, where `reconnect` goes on with ASKING.
    func noteRedirect(_ message: String) {
        let answer = ClusterRouter.of(server).classify(message, answeredBy: connection.node)
        if case .elsewhere(_, let node, asking: true) = answer, followsAsk { importingNode = node }
    }

    private func readAcknowledgementReplies() throws {
        while let acknowledgement = inFlight.first {
            var problem: String?
            var notApplied: EvtError?
            let command: String
            switch acknowledgement {
            case .xack: command = "XACK"
            case .lrem: command = "LREM"
            case .pushBack: command = "PUSH"
            case .asking: command = "ASKING"
            }
            let wait = try connection.nextReply(waitMs: 10_000, stopOnSignal: false) { reply in
                if reply.kind == .error {
                    problem = reply.text
                    // Moved elsewhere or "not now": kept in flight, sent again after reconnecting.
                    if RedisErrorReply.cause(reply.text).isRetriable {
                        noteRedirect(reply.text)
                        notApplied = RedisErrorReply.error(reply.text, "\(command) on \(key)")
                    }
                }
                guard reply.kind == .integer else { return }
                switch acknowledgement {
                case .xack(let xack) where reply.integer < xack.ids:
                    problem = "\(xack.ids - reply.integer) of \(xack.ids) entries were no longer pending (claimed by another consumer?)"
                case .lrem(let processingList) where reply.integer == 0:
                    problem = "a handled item was no longer in \(processingList) (removed by another client?)"
                default:
                    break
                }
            }
            if wait != .reply { throw connection.lost("no answer to \(command) within 10 s") }
            if case .asking = acknowledgement {
                inFlight.removeFirst()
                continue
            }
            if let notApplied { throw notApplied }
            inFlight.removeFirst()
            if let problem { Diagnostics.print("\(command) on \(key): \(problem)") }
        }
    }

    /// Sends what is queued and waits for the answers (the end of a run); a lost connection
    /// is reopened once for it.
    func finish() throws {
        do {
            try connection.flushWrites()
            try readAcknowledgementReplies()
        } catch let lost as EvtError where lost.cause == .connectionLost {
            try reconnect(after: lost)
            try connection.flushWrites()
            try readAcknowledgementReplies()
        }
    }

    /// Reopens the connection after `lost` (a lost connection, or a "not now" / "elsewhere"
    /// answer: LOADING, a cluster's MOVED, CLUSTERDOWN during a failover), to the key's master
    /// now, retrying with backoff for `retryForMs`; then sends again the XACKs whose answer was
    /// lost. The reader then reads again what the lost connection had delivered.
    func reconnect(after lost: EvtError) throws {
        let deadline = monotonicMilliseconds() + retryForMs
        // A cluster slot that moved is no outage: go on where it is now, quietly; while it is
        // moving (ASK), a stream's group read goes on on the importing node.
        let moved = lost.cause.isMoved
        let importing = moved ? importingNode : nil
        importingNode = nil
        asking = false
        if !moved {
            Diagnostics.print("\(clause(lost.message)); retrying for up to \(retryForMs / 1000)s (--retry-for).")
        }
        var delay = 100
        while true {
            if Signals.stopRequested { throw EvtError(.stopped, "stopped while reconnecting to \(server.description).") }
            // A restarted server answers -LOADING until its data is back: not ready yet.
            let router = ClusterRouter.of(server)
            if let importing, let fresh = try? router.connect(to: importing, connectTimeoutMs: 1000),
               let pong = try? fresh.call(["PING"]), pong.text == "PONG" {
                connection = fresh
                asking = true
                break
            }
            if let fresh = try? router.connect(key: key, connectTimeoutMs: 1000),
               let pong = try? fresh.call(["PING"]), pong.text == "PONG" {
                connection = fresh
                break
            }
            if monotonicMilliseconds() + delay > deadline {
                throw EvtError(.connectionLost, "could not reconnect to \(server.description) within \(retryForMs / 1000)s; giving up. Anything handed over but not acknowledged stays pending and is delivered again next time.")
            }
            Signals.sleep(milliseconds: delay)
            delay = min(delay * 2, 2000)
        }
        if !moved { Diagnostics.print("reconnected to \(connection.address.description).") }
        // Acknowledgements whose answer was lost: send again (harmless if they were applied).
        let resend = inFlight
        inFlight.removeAll()
        for case .xack(let xack) in resend { queueXAck(xack) }
        try connection.flushWrites()
    }

    /// A fresh connection in place of this one (a blocked pop no one can unblock from outside).
    func reopen() throws { connection = try RedisConnection.open(server, key: key) }
}
