/// One consumer of a stream group, as `subscribe --group` and `claim-pending` both use it: the
/// entries it re-reads or claims (copied, with their delivery counts from XPENDING) and XACK.
struct RedisStreamGroup {
    let stream: String
    let group: String
    let consumer: String

    /// XACK of `ids`, as words for a call (claim-pending).
    func acknowledgement(_ ids: [String]) -> [String] { ["XACK", stream, group] + ids }

    /// XACK of `count` ids, which `ids` appends as arguments: a group reader acknowledges from
    /// the id bytes it kept, with no String per id.
    func acknowledgement(count: Int, _ ids: (inout RespCommandBuffer) -> Void) -> XAckCommand {
        var command = RespCommandBuffer(capacity: 0)
        command.beginCommand(arguments: 3 + count)
        command.argument("XACK")
        command.argument(stream)
        command.argument(group)
        ids(&command)
        return XAckCommand(resp: command.bytes, ids: count)
    }

    /// The entries of an XREADGROUP or XAUTOCLAIM answer (`list`), copied, and the ids of
    /// entries deleted from the stream while pending (`[id, nil]`), which have nothing to deliver.
    static func entries(_ list: RedisReplyView) -> (entries: [PendingEntry], deleted: [String]) {
        var entries: [PendingEntry] = []
        var deleted: [String] = []
        Record().forEachStreamEntry(in: list, deleted: { deleted.append(String(decoding: $0, as: UTF8.self)) }) {
            entries.append(PendingEntry(copying: $0))
        }
        return (entries, deleted)
    }

    /// Sets each entry's delivery count (XPENDING; 1 where the answer has none). The entries
    /// are this consumer's, in id order, out of an answer that listed `listed` (deleted ones
    /// included). `failure` words an error answer.
    func countDeliveries(of entries: inout [PendingEntry], listed: Int, on connection: RedisConnection,
                         failure: (String) -> EvtError) throws {
        guard let first = entries.first?.id, let last = entries.last?.id else { return }
        // Room for what else this consumer owns in the range (a claimer may hold older entries).
        let limit = max(listed, entries.count) * 2
        let reply = try connection.call(["XPENDING", stream, group, first, last, String(limit), consumer])
        if case .error(let message) = reply { throw failure(message) }
        var counts: [String: Int] = [:]
        if case .array(let rows) = reply {
            for row in rows {
                if case .array(let fields) = row, fields.count >= 4, let id = fields[0].text, case .integer(let n) = fields[3] {
                    counts[id] = n
                }
            }
        }
        for index in entries.indices { entries[index].deliveries = counts[entries[index].id] ?? 1 }
    }
}

/// An XACK in RESP form, kept to be sent again after a reconnect, and how many ids it names.
struct XAckCommand {
    let resp: [UInt8]
    let ids: Int
}

/// A stream entry copied out of a reply, because another command (XPENDING) runs before it
/// is handed over: its id, and its field names and values back to back in one buffer.
struct PendingEntry {
    let id: String
    private var bytes: [UInt8] = []
    private var fields: [(name: Range<Int>, value: Range<Int>)] = []
    var deliveries = 1

    /// A copy of `record`, a stream entry as `point(atStreamEntry:)` made it.
    init(copying record: Record) {
        id = String(decoding: record.id, as: UTF8.self)
        for field in record.fields {
            let nameStart = bytes.count
            bytes.append(contentsOf: field.name)
            let valueStart = bytes.count
            bytes.append(contentsOf: field.value)
            fields.append((nameStart..<valueStart, valueStart..<bytes.count))
        }
    }

    /// Hands `body` the entry as a stream Record again (with its delivery count), borrowing
    /// this copy.
    func withRecord<R>(_ record: Record, _ body: (Record) throws -> R) rethrows -> R {
        var id = id
        return try id.withUTF8 { idBytes in
            try bytes.withUnsafeBytes { raw in
                record.origin = .stream
                record.id = UnsafeRawBufferPointer(idBytes)
                record.fields.fill(count: fields.count) { index in
                    (UnsafeRawBufferPointer(rebasing: raw[fields[index].name]), UnsafeRawBufferPointer(rebasing: raw[fields[index].value]))
                }
                record.deliveries = deliveries
                return try body(record)
            }
        }
    }
}
