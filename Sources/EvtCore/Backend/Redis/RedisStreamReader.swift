/// `subscribe` on a stream: XREAD from a position; with a group, XREADGROUP — this consumer's
/// own pending entries first (id 0, with their delivery counts), then new ones (`>`) — and one
/// XACK per batch, queued once the batch was handed over and written with the next read.
/// A lost connection is retried for `retryForMs` (RedisConsumerConnection); a group then
/// re-reads its own pending entries, so nothing handed over is lost.
final class RedisStreamReader: EventConsumer {
    private let link: RedisConsumerConnection
    private let name: String
    private let quotedName: [UInt8]
    private let group: RedisStreamGroup?

    /// Without a group: the id after which to read.
    private var after: String
    /// With a group: still re-reading this consumer's pending entries, after this id.
    private var readingOwnPending = true
    private var pendingCursor = "0"
    /// The last receive's entry ids, flat: id i is idBytes[idStarts[i]..<idStarts[i+1]].
    private var idBytes: [UInt8] = []
    private var idStarts: [Int] = [0]
    /// The last receive re-read this consumer's pending entries.
    private(set) var redelivered = false

    init(server: RedisServerAddress, name: String, options: ConsumerOptions) throws {
        self.name = name
        quotedName = Record.quoted(name)
        group = options.group.map { RedisStreamGroup(stream: name, group: $0, consumer: options.consumer ?? "") }
        after = try StreamPositions.idBefore(options.from ?? .end)
        link = try RedisConsumerConnection(server: server, key: name, retryForMs: options.retryForMs, followsAsk: group != nil)
        if let group = options.group { try ensureGroup(group, options: options) }
    }

    /// A group must exist before XREADGROUP; `--create` makes it (at --from, default end).
    private func ensureGroup(_ group: String, options: ConsumerOptions) throws {
        let reply = try link.connection.call(["XINFO", "GROUPS", name])
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
            throw EvtError(.refused(code: "NOGROUP"), "stream \(name) has no group \(group). Create it with evt group-create \(link.server.endpoint(.stream, name)) \(Shell.quoted(group)) [--from POSITION], or add --create.")
        }
        let (created, start) = try RedisGroups.create(group, on: name, from: options.from ?? .end, connection: link.connection)
        if created { Diagnostics.print("created group \(group) on stream \(name) at \(start)") }
    }

    func receive(limit: Int, waitMs: Int, into record: Record, _ body: (Record) -> Void) throws -> Int {
        idBytes.removeAll(keepingCapacity: true)
        idStarts.removeAll(keepingCapacity: true)
        idStarts.append(0)
        redelivered = false
        record.quotedSource = quotedName
        while true {
            do {
                return try receiveEntries(limit: limit, waitMs: waitMs, into: record, body)
            } catch let lost as EvtError where lost.cause.isRetriable {
                try link.reconnect(after: lost)
                // Entries delivered to us in the lost read are in our pending list: read it again.
                readingOwnPending = true
                pendingCursor = "0"
            }
        }
    }

    private func serverError(_ command: String, _ message: String) -> EvtError {
        link.noteRedirect(message)
        if RedisErrorReply.cause(message) == .refused(code: "NOGROUP") {
            return EvtError(.refused(code: "NOGROUP"), "\(command) on \(name): \(clause(message)). Create the group with evt group-create \(link.server.endpoint(.stream, name)) \(group.map { Shell.quoted($0.group) } ?? "GROUP").")
        }
        return EvtError(RedisErrorReply.cause(message), "\(command) on stream \(name) failed: \(message)")
    }

    private func blockArgument(_ waitMs: Int) -> String { waitMs < 0 ? "0" : String(max(waitMs, 1)) }

    private func receiveEntries(limit: Int, waitMs: Int, into record: Record, _ body: (Record) -> Void) throws -> Int {
        guard let group else {
            let count = try readNewEntries(["XREAD", "COUNT", String(limit), "BLOCK", blockArgument(waitMs),
                                            "STREAMS", name, after], into: record, body)
            if count > 0 { after = id(count - 1) }
            return count
        }
        while readingOwnPending {
            guard let handed = try readOwnPending(group, limit: limit, into: record, body) else { return 0 }
            if handed > 0 { return handed }
        }
        return try readNewEntries(["XREADGROUP", "GROUP", group.group, group.consumer, "COUNT", String(limit),
                                   "BLOCK", blockArgument(waitMs), "STREAMS", name, ">"], into: record, body)
    }

    /// A page of this consumer's pending entries, with their delivery counts; 0 when the page
    /// had only deleted ones (then the next page is read) or the list ended (then new
    /// entries), nil on a stop.
    private func readOwnPending(_ group: RedisStreamGroup, limit: Int, into record: Record, _ body: (Record) -> Void) throws -> Int? {
        try link.send(["XREADGROUP", "GROUP", group.group, group.consumer, "COUNT", String(limit), "STREAMS", name, pendingCursor])
        var failure: String?
        // Copied: the delivery counts come from a second command.
        var entries: [PendingEntry] = []
        var deleted: [String] = []
        var listed = 0
        let wait = try link.connection.nextReply(waitMs: 10_000) { reply in
            if reply.kind == .error { failure = reply.text; return }
            guard reply.kind == .array, reply.count > 0 else { return }
            let list = reply[0][1]
            listed = list.count
            if listed > 0 { pendingCursor = list[listed - 1][0].text }
            (entries, deleted) = RedisStreamGroup.entries(list)
        }
        if wait == .stopRequested { return nil }
        if wait == .timedOut { throw link.connection.lost("no answer to XREADGROUP within 10 s") }
        if let failure { throw serverError("XREADGROUP", failure) }
        guard listed > 0 else {
            readingOwnPending = false
            return 0
        }
        if link.asking { _ = try link.connection.call(["ASKING"]) }
        try group.countDeliveries(of: &entries, listed: listed, on: link.connection) { serverError("XPENDING", $0) }
        if !deleted.isEmpty {
            // Deleted while pending: nothing to deliver; acknowledge so they stop coming back.
            Diagnostics.print("\(deleted.count) pending entr\(deleted.count == 1 ? "y was" : "ies were") deleted from stream \(name) before delivery: \(deleted.joined(separator: " ")); acknowledging.")
            link.queueXAck(group.acknowledgement(count: deleted.count) { xack in for id in deleted { xack.argument(id) } })
        }
        redelivered = true
        for entry in entries {
            addID(Array(entry.id.utf8))
            entry.withRecord(record, body)
        }
        return entries.count
    }

    /// A blocking XREAD / XREADGROUP `>`: its entries handed over; 0 on time-out or a stop.
    private func readNewEntries(_ command: [String], into record: Record, _ body: (Record) -> Void) throws -> Int {
        try link.send(command)
        var count = 0
        var failure: String?
        record.deliveries = nil
        let wait = try link.connection.nextReply(waitMs: -1, watchStdout: true) { reply in
            if reply.kind == .error { failure = reply.text; return }
            guard reply.kind == .array, reply.count > 0 else { return }
            record.forEachStreamEntry(in: reply[0][1]) { record in
                addID(record.id)
                count += 1
                body(record)
            }
        }
        if wait == .stopRequested { return 0 }
        if let failure { throw serverError(command[0], failure) }
        return count
    }

    private func addID(_ bytes: UnsafeRawBufferPointer) {
        idBytes.append(contentsOf: bytes)
        idStarts.append(idBytes.count)
    }

    private func addID(_ bytes: [UInt8]) { bytes.withUnsafeBytes { addID($0) } }

    private func id(_ index: Int) -> String {
        String(decoding: idBytes[idStarts[index]..<idStarts[index + 1]], as: UTF8.self)
    }

    func acknowledge(_ indexes: [Int]) throws {
        guard !indexes.isEmpty, let group else { return }
        // Queued: it goes out in one write with the next read (or on close), and its reply is
        // read before that read's.
        link.queueXAck(group.acknowledgement(count: indexes.count) { xack in
            idBytes.withUnsafeBytes { ids in
                for index in indexes { xack.argument(UnsafeRawBufferPointer(rebasing: ids[idStarts[index]..<idStarts[index + 1]])) }
            }
        })
    }

    func close() throws { try link.finish() }
}
