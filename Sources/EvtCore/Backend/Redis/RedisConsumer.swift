#if canImport(Glibc)
import Glibc
#endif

/// `subscribe` on Redis.
/// - Stream: XREAD from a position; with a group, XREADGROUP — this consumer's own pending
///   entries first (id 0, with their delivery counts), then new ones (`>`) — and one XACK
///   per batch, queued once the batch was handed over and written with the next read.
/// - List: BRPOP then RPOP COUNT (at most once: what was popped but not handed over is pushed
///   back on close); with a processing list, BLMOVE/LMOVE into it and LREM once handed over
///   (at least once: what a crashed run left there is delivered first).
/// - Channels: SUBSCRIBE / PSUBSCRIBE; nothing to acknowledge.
/// A lost connection (stream, list) is retried with backoff for `retryForMs`; XACKs that
/// were in flight are sent again (XACK is idempotent), and a group re-reads its own pending
/// entries, so nothing handed over is lost and nothing is acknowledged twice.
final class RedisConsumer: EventConsumer {
    private var connection: RedisConnection
    private let server: RedisServerAddress
    private let kind: RedisKind
    private let names: [String]
    private let quotedName: [UInt8]
    private let options: ConsumerOptions
    private let group: String?
    private let consumerName: String

    /// Stream without a group: the id after which to read.
    private var after: String
    /// Stream with a group: still re-reading this consumer's pending entries, after this id.
    private var readingOwnPending = true
    private var pendingCursor = "0"
    /// List with a processing list: leftovers of an earlier run still to deliver.
    private var leftovers = 0
    private var leftoversChecked = false
    /// Leftovers handed out but not acknowledged stay at the right end of the processing list.
    private var leftoversUnacknowledged = 0
    private var lastBatchWasLeftovers = false

    /// The last receive's stream ids or list values, flat: token i is tokenBytes[tokenStarts[i]..<tokenStarts[i+1]].
    private var tokenBytes: [UInt8] = []
    private var tokenStarts: [Int] = [0]
    private var acknowledged: [Bool] = []
    /// XACK / LREM commands sent whose replies have not been read, with their ids for a resend.
    private var acksInFlight: [[String]] = []
    private var subscribed = false
    /// CLIENT ID of the connection, to unblock a BRPOP from outside when stopping.
    private var clientID: Int?
    /// A stream group read that met ASK (its slot is being moved): the importing node the
    /// answer named, where the read goes on, every command after ASKING, until the move is done
    /// (there ASKING changes nothing) or a MOVED answer sends it where the router points.
    private var importingNode: RedisNode?
    private var asking = false

    init(server: RedisServerAddress, kind: RedisKind, names: [String], options: ConsumerOptions) throws {
        self.server = server
        self.kind = kind
        self.names = names
        self.options = options
        self.quotedName = OutputWriter.quoted(names[0])
        self.group = options.group
        self.consumerName = options.consumer ?? ""
        after = kind == .stream ? try StreamPositions.idBefore(options.from ?? .end) : "$"
        // BLMOVE takes a list into its processing list: on a cluster only within one slot.
        if kind == .list, let processing = options.processingList {
            try ClusterRouter.of(server).requireOneSlot([names[0], processing], for: "--processing moves items from the list into the processing list (LMOVE)")
        }
        connection = try RedisConnection.open(server, key: kind == .channel ? nil : names[0])
        if kind == .list, case .integer(let id) = try connection.call(["CLIENT", "ID"]) { clientID = id }
        if kind == .stream, let group {
            try ensureGroup(group)
        }
    }

    /// A group must exist before XREADGROUP; `--create` makes it (at --from, default end).
    private func ensureGroup(_ group: String) throws {
        let reply = try connection.call(["XINFO", "GROUPS", names[0]])
        if case .array(let groups) = reply {
            for info in groups {
                guard case .array(let fields) = info else { continue }
                var index = 0
                while index + 1 < fields.count {
                    if fields[index].text == "name", fields[index + 1].text == group { return }
                    index += 2
                }
            }
        }
        guard options.createGroup else {
            throw EvtError(.refused(code: "NOGROUP"), "stream \(names[0]) has no group \(group). Create it with evt group-create \(server.endpoint(.stream, names[0])) \(SandboxCommand.shellQuoted(group)) [--from POSITION], or add --create.")
        }
        let (created, start) = try RedisGroups.create(group, on: names[0], from: options.from ?? .end, connection: connection)
        if created { Diagnostics.print("created group \(group) on stream \(names[0]) at \(start)") }
    }

    // MARK: Receiving

    func receive(limit: Int, waitMs: Int, into batch: RecordBatch) throws -> Int {
        // A plain list item whose --exec failed goes back to the producing end: it is tried
        // again after the rest of the queue, not at once in a loop.
        if kind == .list && options.processingList == nil { pushBackUnacknowledged(toConsumingEnd: false) }
        tokenBytes.removeAll(keepingCapacity: true)
        tokenStarts.removeAll(keepingCapacity: true)
        tokenStarts.append(0)
        acknowledged.removeAll(keepingCapacity: true)
        while true {
            do {
                switch kind {
                case .stream: return try receiveStream(limit: limit, waitMs: waitMs, into: batch)
                case .list: return try receiveList(limit: limit, waitMs: waitMs, into: batch)
                case .channel: return try receiveChannel(limit: limit, waitMs: waitMs, into: batch)
                }
            } catch let lost as EvtError where lost.cause.isRetriable {
                // A lost connection, or a "not now" / "elsewhere" answer (LOADING, a cluster's
                // MOVED, CLUSTERDOWN during a failover): reconnect (to the key's master now).
                if kind == .channel && lost.cause == .connectionLost {
                    // Not retriable: a new subscription would hide the messages lost meanwhile.
                    throw EvtError(.refused(code: ""),
                        "\(clause(lost.message)): the subscription ended. Messages published meanwhile "
                        + "are lost: Redis drops a subscriber that falls behind (client-output-buffer-limit pubsub) or restarts.")
                }
                try reconnect(after: lost)
            }
        }
    }

    private func readAcknowledgementReplies() throws {
        while !acksInFlight.isEmpty {
            var problem: String?
            let command = acksInFlight[0]
            var notApplied: EvtError?
            let wait = try connection.nextReply(waitMs: 10_000, stopOnSignal: false) { reply in
                if reply.kind == .error {
                    problem = reply.text
                    // Moved elsewhere or "not now": kept in acksInFlight, sent again after reconnecting.
                    if RedisErrorReply.cause(reply.text).isRetriable {
                        noteRedirect(reply.text)
                        notApplied = RedisErrorReply.error(reply.text, "\(command[0]) on \(names[0])")
                    }
                }
                if command[0] == "XACK", reply.kind == .integer, reply.integer < command.count - 3 {
                    problem = "\(command.count - 3 - reply.integer) of \(command.count - 3) entries were no longer pending (claimed by another consumer?)"
                }
                if command[0] == "LREM", reply.kind == .integer, reply.integer == 0 {
                    problem = "a handled item was no longer in \(options.processingList ?? "the processing list") (removed by another client?)"
                }
            }
            if wait != .reply { throw connection.lost("no answer to \(command[0]) within 10 s") }
            if command[0] == "ASKING" {
                acksInFlight.removeFirst()
                continue
            }
            if let notApplied { throw notApplied }
            acksInFlight.removeFirst()
            if let problem { Diagnostics.print("\(command[0]) on \(names[0]): \(problem)") }
        }
    }

    /// Sends what is queued (acknowledgements, then `words`) and reads the acknowledgement
    /// replies; the caller reads the reply to `words`.
    private func send(_ words: [String]) throws {
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

    private func serverError(_ command: String, _ message: String) -> EvtError {
        noteRedirect(message)
        if RedisErrorReply.cause(message) == .refused(code: "NOGROUP") {
            return EvtError(.refused(code: "NOGROUP"), "\(command) on \(names[0]): \(clause(message)). Create the group with evt group-create \(server.endpoint(.stream, names[0])) \(group.map(SandboxCommand.shellQuoted) ?? "GROUP").")
        }
        return EvtError(RedisErrorReply.cause(message), "\(command) on \(kind.rawValue) \(names[0]) failed: \(message)")
    }

    private func blockArgument(_ waitMs: Int) -> String { waitMs < 0 ? "0" : String(max(waitMs, 1)) }

    private func receiveStream(limit: Int, waitMs: Int, into batch: RecordBatch) throws -> Int {
        guard let group else {
            let count = try readNewEntries(["XREAD", "COUNT", String(limit), "BLOCK", blockArgument(waitMs),
                                            "STREAMS", names[0], after], into: batch)
            if count > 0 { after = lastToken() }
            return count
        }
        if readingOwnPending {
            try send(["XREADGROUP", "GROUP", group, consumerName, "COUNT", String(limit), "STREAMS", names[0], pendingCursor])
            var ids: [String] = []
            var failure: String?
            var deleted: [String] = []
            // Copied: the delivery counts come from a second command.
            var entries: RedisValue = .null
            let wait = try connection.nextReply(waitMs: 10_000) { reply in
                if reply.kind == .error { failure = reply.text; return }
                guard reply.kind == .array, reply.count > 0 else { return }
                entries = RedisValue(reply[0][1])
            }
            if wait == .stopRequested { return 0 }
            if wait == .timedOut { throw connection.lost("no answer to XREADGROUP within 10 s") }
            if let failure { throw serverError("XREADGROUP", failure) }
            guard case .array(let list) = entries, !list.isEmpty else {
                readingOwnPending = false
                return try receiveStream(limit: limit, waitMs: waitMs, into: batch)
            }
            for entry in list {
                guard case .array(let parts) = entry, let id = parts.first?.text else { continue }
                ids.append(id)
                if parts.count < 2 || parts[1] == .null { deleted.append(id) }
            }
            pendingCursor = ids.last!
            let counts = try deliveryCounts(first: ids.first!, last: ids.last!, count: ids.count)
            if !deleted.isEmpty {
                // Deleted while pending: nothing to deliver; acknowledge so they stop coming back.
                Diagnostics.print("\(deleted.count) pending entr\(deleted.count == 1 ? "y was" : "ies were") deleted from stream \(names[0]) before delivery: \(deleted.joined(separator: " ")); acknowledging.")
                queueAcknowledgement(["XACK", names[0], group] + deleted)
            }
            var written = 0
            for entry in list {
                guard case .array(let parts) = entry, parts.count >= 2, case .array(let fields) = parts[1],
                      let id = parts[0].text else { continue }
                writeEntry(id: Array(id.utf8), fields: fields.map { $0.bytes }, deliveries: counts[id] ?? 1, into: batch)
                written += 1
            }
            if written == 0 { return try receiveStream(limit: limit, waitMs: waitMs, into: batch) }
            return written
        }
        return try readNewEntries(["XREADGROUP", "GROUP", group, consumerName, "COUNT", String(limit),
                                   "BLOCK", blockArgument(waitMs), "STREAMS", names[0], ">"], into: batch)
    }

    /// A blocking XREAD / XREADGROUP `>`: its entries into the batch; 0 on time-out or a stop.
    private func readNewEntries(_ command: [String], into batch: RecordBatch) throws -> Int {
        try send(command)
        var count = 0
        var failure: String?
        let wait = try connection.nextReply(waitMs: -1, watchStdout: true) { reply in
            if reply.kind == .error { failure = reply.text; return }
            guard reply.kind == .array, reply.count > 0 else { return }
            count = writeEntries(reply[0][1], deliveries: nil, into: batch)
        }
        if wait == .stopRequested { return 0 }
        if let failure { throw serverError(command[0], failure) }
        return count
    }

    /// XPENDING's delivery counts for this consumer's entries in [first, last].
    private func deliveryCounts(first: String, last: String, count: Int) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        if asking { _ = try connection.call(["ASKING"]) }
        guard case .array(let rows) = try connection.call(["XPENDING", names[0], group!, first, last, String(count), consumerName]) else {
            return counts
        }
        for row in rows {
            if case .array(let fields) = row, fields.count >= 4, let id = fields[0].text, case .integer(let n) = fields[3] {
                counts[id] = n
            }
        }
        return counts
    }

    private func writeEntries(_ entries: RedisReplyView, deliveries: Int?, into batch: RecordBatch) -> Int {
        var written = 0
        for index in 0..<entries.count {
            let entry = entries[index]
            let id = entry[0].bytes
            batch.writer.beginStreamEntry(quotedName: quotedName, id: id)
            entry[1].forEachField { batch.writer.appendStreamField($0, $1, first: $2) }
            batch.writer.endStreamEntry(deliveries: deliveries)
            batch.recordEnded()
            addToken(id)
            written += 1
        }
        return written
    }

    private func writeEntry(id: [UInt8], fields: [[UInt8]?], deliveries: Int, into batch: RecordBatch) {
        id.withUnsafeBytes { idBytes in
            batch.writer.beginStreamEntry(quotedName: quotedName, id: idBytes)
            addToken(idBytes)
        }
        var field = 0
        while field + 1 < fields.count {
            (fields[field] ?? []).withUnsafeBytes { name in
                (fields[field + 1] ?? []).withUnsafeBytes { value in
                    batch.writer.appendStreamField(name, value, first: field == 0)
                }
            }
            field += 2
        }
        batch.writer.endStreamEntry(deliveries: deliveries)
        batch.recordEnded()
    }

    private func receiveList(limit: Int, waitMs: Int, into batch: RecordBatch) throws -> Int {
        let name = names[0]
        if let processing = options.processingList {
            if !leftoversChecked {
                leftoversChecked = true
                if case .integer(let length) = try connection.call(["LLEN", processing]) { leftovers = length }
                if leftovers > 0 {
                    Diagnostics.print("\(leftovers) item\(leftovers == 1 ? "" : "s") left in \(processing) by an earlier run: delivering them first.")
                }
            }
            if leftovers > 0 {
                // The oldest leftovers are at the right end, behind those handed out but not
                // yet acknowledged; each is removed (LREM) once handed over.
                let take = min(limit, leftovers)
                let end = -1 - leftoversUnacknowledged
                var values: RedisValue = .null
                try send(["LRANGE", processing, String(end - take + 1), String(end)])
                _ = try connection.nextReply(waitMs: 10_000) { values = RedisValue($0) }
                guard case .array(let items) = values else { return 0 }
                leftovers -= take
                for item in items.reversed() {
                    (item.bytes ?? []).withUnsafeBytes { appendListRecord($0, into: batch) }
                }
                lastBatchWasLeftovers = true
                leftoversUnacknowledged += items.count
                return items.count
            }
        }
        lastBatchWasLeftovers = false
        let seconds = waitMs < 0 ? "0" : String(Double(max(waitMs, 1)) / 1000)
        let blocking = options.processingList.map { ["BLMOVE", name, $0, "RIGHT", "LEFT", seconds] }
            ?? ["BRPOP", name, seconds]
        try send(blocking)
        var first: [UInt8]?
        var failure: String?
        func take(_ reply: RedisReplyView) {
            switch reply.kind {
            case .error: failure = reply.text
            case .array where reply.count == 2: first = Array(reply[1].bytes)   // BRPOP: [list, value]
            case .string: first = Array(reply.bytes)                            // BLMOVE: value
            default: break
            }
        }
        var wait: RedisConnection.Wait
        var stdoutClosed = false
        do {
            wait = try connection.nextReply(waitMs: -1, watchStdout: true, take)
        } catch is StdoutClosed {
            wait = .stopRequested
            stdoutClosed = true
        }
        if wait == .stopRequested {
            // Stopping while the pop is blocked: CLIENT UNBLOCK it from a second connection and
            // read its answer, so an item popped at that very moment is kept (pushed back on
            // close), not lost.
            if let clientID {
                let other = try RedisConnection(connection.address)
                _ = try other.call(["CLIENT", "UNBLOCK", String(clientID)])
                _ = try connection.nextReply(waitMs: 5000, stopOnSignal: false, take)
            } else {
                connection = try RedisConnection.open(server, key: names[0])
            }
            // Kept as not handed over: close() pushes it back.
            if let first { first.withUnsafeBytes { appendListRecord($0, into: batch) } }
            if stdoutClosed { throw StdoutClosed() }
            return 0
        }
        if let failure { throw serverError(blocking[0], failure) }
        guard let first else { return 0 }
        first.withUnsafeBytes { appendListRecord($0, into: batch) }
        guard limit > 1 else { return 1 }
        // More without blocking, in one round trip.
        var count = 1
        if let processing = options.processingList {
            for _ in 1..<limit { connection.outgoing.command(["LMOVE", name, processing, "RIGHT", "LEFT"]) }
            try connection.flushWrites()
            for _ in 1..<limit {
                _ = try connection.nextReply(waitMs: 10_000) { reply in
                    if reply.kind == .string { appendListRecord(reply.bytes, into: batch); count += 1 }
                }
            }
        } else {
            try send(["RPOP", name, String(limit - 1)])
            _ = try connection.nextReply(waitMs: 10_000) { reply in
                guard reply.kind == .array else { return }
                for index in 0..<reply.count {
                    appendListRecord(reply[index].bytes, into: batch)
                    count += 1
                }
            }
        }
        return count
    }

    /// The raw bytes of item `index` of the last list receive (copy-between takes these, not
    /// the record, whose `"value":null` could not tell the item `null` from no value).
    func withListItem<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try tokenBytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[tokenStarts[index]..<tokenStarts[index + 1]])) }
    }

    private func appendListRecord(_ value: UnsafeRawBufferPointer, into batch: RecordBatch) {
        batch.writer.appendSimpleRecord(kind: .list, quotedName: quotedName, value: value)
        batch.recordEnded()
        addToken(value)
    }

    private func receiveChannel(limit: Int, waitMs: Int, into batch: RecordBatch) throws -> Int {
        if !subscribed {
            let byPattern = options.pattern ?? names.contains { $0.contains { "*?[".contains($0) } }
            connection.outgoing.command([byPattern ? "PSUBSCRIBE" : "SUBSCRIBE"] + names)
            try connection.flushWrites()
            subscribed = true
        }
        var count = 0
        var failure: String?
        func take(_ reply: RedisReplyView) {
            guard reply.kind == .array, reply.count >= 3 else {
                if reply.kind == .error { failure = reply.text }
                return
            }
            let type = reply[0].bytes
            if type.elementsEqual("message".utf8) {
                batch.writer.appendSimpleRecord(kind: .channel, name: reply[1].bytes, value: reply[2].bytes)
            } else if type.elementsEqual("pmessage".utf8), reply.count >= 4 {
                batch.writer.appendSimpleRecord(kind: .channel, name: reply[2].bytes, pattern: reply[1].bytes,
                                                value: reply[3].bytes)
            } else {
                return
            }
            batch.recordEnded()
            count += 1
        }
        let deadline = waitMs < 0 ? Int.max : monotonicMilliseconds() + waitMs
        while count == 0 {
            let left = deadline == Int.max ? -1 : max(0, deadline - monotonicMilliseconds())
            let wait = try connection.nextReply(waitMs: Int32(clamping: left), watchStdout: true, take)
            if let failure { throw RedisErrorReply.error(failure, "SUBSCRIBE failed") }
            if wait != .reply { return count }
        }
        // Take what already arrived: one hand-over per burst.
        while count < limit, try connection.nextReply(waitMs: 0, take) == .reply {}
        return count
    }

    // MARK: Acknowledging

    private func addToken(_ bytes: UnsafeRawBufferPointer) {
        tokenBytes.append(contentsOf: bytes)
        tokenStarts.append(tokenBytes.count)
        acknowledged.append(false)
    }

    private func addToken(_ bytes: [UInt8]) { bytes.withUnsafeBytes { addToken($0) } }

    private func token(_ index: Int) -> String {
        String(decoding: tokenBytes[tokenStarts[index]..<tokenStarts[index + 1]], as: UTF8.self)
    }

    private func lastToken() -> String { token(tokenStarts.count - 2) }

    private func queueAcknowledgement(_ words: [String]) {
        if asking {
            connection.outgoing.command(["ASKING"])
            acksInFlight.append(["ASKING"])
        }
        connection.outgoing.command(words)
        acksInFlight.append(words)
    }

    func acknowledge(_ indexes: [Int]) throws {
        guard !indexes.isEmpty, kind != .channel else { return }   // pub/sub has nothing to acknowledge
        for index in indexes { acknowledged[index] = true }
        switch kind {
        case .stream:
            if let group { queueAcknowledgement(["XACK", names[0], group] + indexes.map(token)) }
        case .list:
            if let processing = options.processingList {
                for index in indexes {
                    // Only the bytes matter to LREM; build the command from them exactly.
                    let value = Array(tokenBytes[tokenStarts[index]..<tokenStarts[index + 1]])
                    connection.outgoing.beginCommand(arguments: 4)
                    connection.outgoing.argument("LREM")
                    connection.outgoing.argument(Array(processing.utf8))
                    connection.outgoing.argument("-1")
                    value.withUnsafeBytes { connection.outgoing.argument($0) }
                    acksInFlight.append(["LREM"])
                }
                if lastBatchWasLeftovers { leftoversUnacknowledged -= indexes.count }
            }
        case .channel:
            break
        }
        // Queued: they go out in one write with the next read (or on close), and their
        // replies are read before that read's.
    }

    /// Plain list: items popped but not handed over go back — on close to the consuming end,
    /// oldest last so it is popped first (at most once, but not carelessly).
    private func pushBackUnacknowledged(toConsumingEnd: Bool) {
        let unsent = acknowledged.indices.filter { !acknowledged[$0] }
        guard !unsent.isEmpty else { return }
        connection.outgoing.beginCommand(arguments: 2 + unsent.count)
        connection.outgoing.argument(toConsumingEnd ? "RPUSH" : "LPUSH")
        connection.outgoing.argument(Array(names[0].utf8))
        for index in toConsumingEnd ? unsent.reversed() : unsent {
            Array(tokenBytes[tokenStarts[index]..<tokenStarts[index + 1]]).withUnsafeBytes {
                connection.outgoing.argument($0)
            }
        }
        acksInFlight.append(["PUSH"])
        for index in unsent { acknowledged[index] = true }
    }

    func close() throws {
        do {
            if kind == .list && options.processingList == nil { pushBackUnacknowledged(toConsumingEnd: true) }
            try connection.flushWrites()
            try readAcknowledgementReplies()
        } catch let lost as EvtError where lost.cause == .connectionLost {
            try reconnect(after: lost)
            try connection.flushWrites()
            try readAcknowledgementReplies()
        }
    }

    // MARK: Reconnecting

    /// Tells the router of a cluster's answer (a MOVED moves the slot on its map) and keeps
    /// the node an ASK to a stream read named, where `reconnect` goes on with ASKING.
    private func noteRedirect(_ message: String) {
        let answer = ClusterRouter.of(server).classify(message, answeredBy: connection.node)
        if case .elsewhere(_, let node, asking: true) = answer, kind == .stream { importingNode = node }
    }

    private func reconnect(after lost: EvtError) throws {
        let deadline = monotonicMilliseconds() + options.retryForMs
        // A cluster slot that moved is no outage: go on where it is now, quietly; while it is
        // moving (ASK), a stream's group read goes on on the importing node.
        let moved = lost.cause.isMoved
        let importing = moved ? importingNode : nil
        importingNode = nil
        asking = false
        if !moved {
            Diagnostics.print("\(clause(lost.message)); retrying for up to \(options.retryForMs / 1000)s (--retry-for).")
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
            if let fresh = try? router.connect(key: kind == .channel ? nil : names[0], connectTimeoutMs: 1000),
               let pong = try? fresh.call(["PING"]), pong.text == "PONG" {
                connection = fresh
                break
            }
            if monotonicMilliseconds() + delay > deadline {
                throw EvtError(.connectionLost, "could not reconnect to \(server.description) within \(options.retryForMs / 1000)s; giving up. Anything handed over but not acknowledged stays pending and is delivered again next time.")
            }
            Signals.sleep(milliseconds: delay)
            delay = min(delay * 2, 2000)
        }
        if !moved { Diagnostics.print("reconnected to \(connection.address.description).") }
        // Acknowledgements whose answer was lost: send again (harmless if they were applied).
        let resend = acksInFlight
        acksInFlight.removeAll()
        for words in resend where words[0] == "XACK" { queueAcknowledgement(words) }
        try connection.flushWrites()
        // Entries delivered to us in the lost read are in our pending list: read it again.
        readingOwnPending = true
        pendingCursor = "0"
        if kind == .list && options.processingList != nil {
            // What the lost connection moved into the processing list is delivered again.
            leftoversChecked = false
            leftoversUnacknowledged = 0
        }
    }
}
