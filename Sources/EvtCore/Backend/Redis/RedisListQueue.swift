/// A list read as a queue, by `subscribe` and by a copy from a list (ListCopySource).
/// - Plain: BRPOP then RPOP COUNT (at most once: what was popped but not handed over is pushed
///   back, on close to the consuming end).
/// - With a processing list: BLMOVE/LMOVE into it, and LREM once handed over (at least once:
///   what a crashed run left there is delivered first).
/// A lost connection is retried for `retryForMs` (RedisConsumerConnection); what it had moved
/// into the processing list is delivered again.
final class RedisListQueue: EventConsumer {
    private let link: RedisConsumerConnection
    private let name: String
    private let quotedName: [UInt8]
    private let processingList: String?
    /// CLIENT ID of the connection, to unblock a BRPOP from outside when stopping.
    private var clientID: Int?

    /// With a processing list: leftovers of an earlier run still to deliver.
    private var leftovers = 0
    private var leftoversChecked = false
    /// Leftovers handed out but not acknowledged stay at the right end of the processing list.
    private var leftoversUnacknowledged = 0
    private var lastBatchWasLeftovers = false
    /// The last receive took back leftovers of the processing list.
    var redelivered: Bool { lastBatchWasLeftovers }

    /// The last receive's items, flat: item i is itemBytes[itemStarts[i]..<itemStarts[i+1]].
    private var itemBytes: [UInt8] = []
    private var itemStarts: [Int] = [0]
    private var acknowledged: [Bool] = []

    init(server: RedisServerAddress, name: String, processingList: String?, retryForMs: Int) throws {
        // BLMOVE takes a list into its processing list: on a cluster only within one slot.
        if let processingList {
            try ClusterRouter.of(server).requireOneSlot([name, processingList], for: "--processing moves items from the list into the processing list (LMOVE)")
        }
        self.name = name
        quotedName = Record.quoted(name)
        self.processingList = processingList
        link = try RedisConsumerConnection(server: server, key: name, retryForMs: retryForMs, followsAsk: false)
        if case .integer(let id) = try link.connection.call(["CLIENT", "ID"]) { clientID = id }
    }

    func receive(limit: Int, waitMs: Int, into record: Record, _ body: (Record) -> Void) throws -> Int {
        let count = try receive(limit: limit, waitMs: waitMs)
        handOver(count, as: record, body)
        return count
    }

    /// Hands the first `count` items of the last receive to `body`, in order, as records of
    /// the list.
    func handOver(_ count: Int, as record: Record, _ body: (Record) throws -> Void) rethrows {
        record.beginListItems(of: quotedName)
        for index in 0..<count {
            try withItem(index) { item in
                record.point(atListItem: item)
                try body(record)
            }
        }
    }

    /// Takes up to `limit` items, waiting up to `waitMs` for the first (-1: until one comes, a
    /// stop signal, or a closed stdout — StdoutClosed); hand them over with `handOver`. 0 when none
    /// came in time or a stop was requested.
    func receive(limit: Int, waitMs: Int) throws -> Int {
        // A plain list item whose --exec failed goes back to the producing end: it is tried
        // again after the rest of the queue, not at once in a loop.
        if processingList == nil { pushBackUnacknowledged(toConsumingEnd: false) }
        itemBytes.removeAll(keepingCapacity: true)
        itemStarts.removeAll(keepingCapacity: true)
        itemStarts.append(0)
        acknowledged.removeAll(keepingCapacity: true)
        while true {
            do {
                return try receiveItems(limit: limit, waitMs: waitMs)
            } catch let lost as EvtError where lost.cause.isRetriable {
                try link.reconnect(after: lost)
                if processingList != nil {
                    // What the lost connection moved into the processing list is delivered again.
                    leftoversChecked = false
                    leftoversUnacknowledged = 0
                }
            }
        }
    }

    /// The bytes of item `index` of the last receive.
    private func withItem<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try itemBytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[itemStarts[index]..<itemStarts[index + 1]])) }
    }

    private func addItem(_ bytes: UnsafeRawBufferPointer) {
        itemBytes.append(contentsOf: bytes)
        itemStarts.append(itemBytes.count)
        acknowledged.append(false)
    }

    private func serverError(_ command: String, _ message: String) -> EvtError {
        EvtError(RedisErrorReply.cause(message), "\(command) on list \(name) failed: \(message)")
    }

    private func receiveItems(limit: Int, waitMs: Int) throws -> Int {
        let connection = link.connection
        if let processing = processingList {
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
                try link.send(["LRANGE", processing, String(end - take + 1), String(end)])
                _ = try connection.nextReply(waitMs: 10_000) { values = RedisValue($0) }
                guard case .array(let items) = values else { return 0 }
                leftovers -= take
                for item in items.reversed() {
                    (item.bytes ?? []).withUnsafeBytes { addItem($0) }
                }
                lastBatchWasLeftovers = true
                leftoversUnacknowledged += items.count
                return items.count
            }
        }
        lastBatchWasLeftovers = false
        let seconds = waitMs < 0 ? "0" : String(Double(max(waitMs, 1)) / 1000)
        let blocking = processingList.map { ["BLMOVE", name, $0, "RIGHT", "LEFT", seconds] } ?? ["BRPOP", name, seconds]
        try link.send(blocking)
        var got = false
        var failure: String?
        func take(_ reply: RedisReplyView) {
            switch reply.kind {
            case .error: failure = reply.text
            case .array where reply.count == 2: addItem(reply[1].bytes); got = true   // BRPOP: [list, value]
            case .string: addItem(reply.bytes); got = true                            // BLMOVE: value
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
            // read its answer, so an item popped at that very moment is kept (not handed over:
            // close() pushes it back), not lost.
            if let clientID {
                let other = try RedisConnection(connection.address)
                _ = try other.call(["CLIENT", "UNBLOCK", String(clientID)])
                _ = try connection.nextReply(waitMs: 5000, stopOnSignal: false, take)
            } else {
                try link.reopen()
            }
            if stdoutClosed { throw StdoutClosed() }
            return 0
        }
        if let failure { throw serverError(blocking[0], failure) }
        guard got else { return 0 }
        guard limit > 1 else { return 1 }
        // More without blocking, in one round trip.
        var count = 1
        if let processing = processingList {
            for _ in 1..<limit { connection.outgoing.command(["LMOVE", name, processing, "RIGHT", "LEFT"]) }
            try connection.flushWrites()
            for _ in 1..<limit {
                _ = try connection.nextReply(waitMs: 10_000) { reply in
                    if reply.kind == .string { addItem(reply.bytes); count += 1 }
                }
            }
        } else {
            try link.send(["RPOP", name, String(limit - 1)])
            _ = try connection.nextReply(waitMs: 10_000) { reply in
                guard reply.kind == .array else { return }
                for index in 0..<reply.count {
                    addItem(reply[index].bytes)
                    count += 1
                }
            }
        }
        return count
    }

    /// With a processing list, LREM of each item handed over; a plain list has let go of them
    /// already. Queued: they go out in one write with the next read (or on close), and their
    /// replies are read before that read's.
    func acknowledge(_ indexes: [Int]) throws {
        guard !indexes.isEmpty else { return }
        for index in indexes { acknowledged[index] = true }
        guard let processing = processingList else { return }
        let connection = link.connection
        for index in indexes {
            // Only the bytes matter to LREM; build the command from them exactly.
            connection.outgoing.beginCommand(arguments: 4)
            connection.outgoing.argument("LREM")
            connection.outgoing.argument(Array(processing.utf8))
            connection.outgoing.argument("-1")
            withItem(index) { connection.outgoing.argument($0) }
            link.queued(.lrem(processingList: processing))
        }
        if lastBatchWasLeftovers { leftoversUnacknowledged -= indexes.count }
    }

    /// Plain list: items popped but not handed over go back — on close to the consuming end,
    /// oldest last so it is popped first (at most once, but not carelessly).
    private func pushBackUnacknowledged(toConsumingEnd: Bool) {
        let unsent = acknowledged.indices.filter { !acknowledged[$0] }
        guard !unsent.isEmpty else { return }
        let connection = link.connection
        connection.outgoing.beginCommand(arguments: 2 + unsent.count)
        connection.outgoing.argument(toConsumingEnd ? "RPUSH" : "LPUSH")
        connection.outgoing.argument(Array(name.utf8))
        for index in toConsumingEnd ? unsent.reversed() : unsent {
            withItem(index) { connection.outgoing.argument($0) }
        }
        link.queued(.pushBack)
        for index in unsent { acknowledged[index] = true }
    }

    /// Gives back what a plain list popped and did not hand over, and waits for the answers
    /// to every acknowledgement: then the items handed over are gone for good.
    func close() throws {
        if processingList == nil { pushBackUnacknowledged(toConsumingEnd: true) }
        try link.finish()
    }
}
