/// Stream entries out of a reply (XRANGE, XREVRANGE, XREAD, XREADGROUP, XAUTOCLAIM, XCLAIM):
/// the one place where an entry `[id, [field, value, …]]` becomes a stream `Record`. Every
/// stream reader hands its entries over through here: the copy source (copy, replay, tail),
/// the group reader (subscribe) and the pending entries a group re-reads or claims.
enum StreamEntries {
    /// Makes `record` the entry (origin, id, fields), borrowing the reply. False for an entry
    /// deleted from the stream while it was pending (`[id, nil]`): only `record.id` is set.
    @inline(__always)
    static func decode(_ entry: RedisReplyView, into record: Record) -> Bool {
        record.origin = .stream
        record.id = entry[0].bytes
        let pairs = entry.count < 2 ? nil : entry[1]
        guard let pairs, pairs.kind == .array else { return false }
        record.fields.fill(count: pairs.count / 2) { index in (pairs[2 * index].bytes, pairs[2 * index + 1].bytes) }
        return true
    }

    /// Hands `body` each entry of `entries` (an array of entries) as `record`, in order, and
    /// `deleted` the id of each entry deleted while pending; the number of entries listed.
    @discardableResult
    static func forEach(in entries: RedisReplyView, into record: Record,
                        deleted: (UnsafeRawBufferPointer) -> Void = { _ in },
                        _ body: (Record) throws -> Void) rethrows -> Int {
        let count = entries.count
        for index in 0..<count {
            if decode(entries[index], into: record) { try body(record) } else { deleted(record.id) }
        }
        return count
    }
}
