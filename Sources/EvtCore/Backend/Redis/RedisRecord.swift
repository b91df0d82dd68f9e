#if canImport(Glibc)
import Glibc
#endif

/// A Redis stream entry, list item and channel message as a `Record`: the one place each
/// becomes one, for every command that reads them (a Kafka message becomes one in
/// KafkaRecord.swift).
extension Record {
    /// Points the record at the stream entry `[id, [field, value, …]]` in `entry`, out of an
    /// XRANGE, XREVRANGE, XREAD, XREADGROUP, XAUTOCLAIM or XCLAIM reply. False for an entry
    /// deleted from the stream while it was pending (`[id, nil]`): only `id` is set then. The
    /// bytes are the reply's, valid until the connection reads the next one.
    @inline(__always)
    func point(atStreamEntry entry: RedisReplyView) -> Bool {
        origin = .stream
        id = entry[0].bytes
        let pairs = entry.count < 2 ? nil : entry[1]
        guard let pairs, pairs.kind == .array else { return false }
        fields.fill(count: pairs.count / 2) { index in (pairs[2 * index].bytes, pairs[2 * index + 1].bytes) }
        return true
    }

    /// Points the record at each entry of `entries` (a reply's array of entries) in order,
    /// handing it to `body`, and hands `deleted` the id of each entry deleted while pending;
    /// the number of entries listed. The copy source (copy, replay, tail), the group reader
    /// (subscribe) and the pending entries a group re-reads or claims all read them here.
    @discardableResult
    func forEachStreamEntry(in entries: RedisReplyView, deleted: (UnsafeRawBufferPointer) -> Void = { _ in },
                            _ body: (Record) throws -> Void) rethrows -> Int {
        let count = entries.count
        for index in 0..<count {
            if point(atStreamEntry: entries[index]) { try body(self) } else { deleted(id) }
        }
        return count
    }

    /// Makes the record an item of the list whose name `quotedList` holds (`Record.quoted`):
    /// once per read, before `point(atListItem:)`, as a Kafka reader sets the topic once.
    func beginListItems(of quotedList: [UInt8]) {
        origin = .list
        quotedSource = quotedList
    }

    /// Points the record at one item of the list begun with `beginListItems` (CONTRACT.md: a
    /// list item is its value and nothing else). The bytes are the reader's, valid until its
    /// next read.
    func point(atListItem item: UnsafeRawBufferPointer) {
        value = item
        valueSchemaID = nil
    }

    /// Points the record at the pub/sub message in `reply`: `message CHANNEL VALUE`, or
    /// `pmessage PATTERN CHANNEL VALUE` for a pattern subscription. False for anything else a
    /// subscribed connection reads (a subscription's confirmation, an error). The bytes are the
    /// reply's, valid until the connection reads the next one.
    func point(atChannelMessage reply: RedisReplyView) -> Bool {
        guard reply.kind == .array, reply.count >= 3 else { return false }
        let type = reply[0].bytes
        if Self.equals(type, "message") {
            channel = reply[1].bytes
            pattern = nil
            value = reply[2].bytes
        } else if Self.equals(type, "pmessage"), reply.count >= 4 {
            pattern = reply[1].bytes
            channel = reply[2].bytes
            value = reply[3].bytes
        } else {
            return false
        }
        origin = .channel
        valueSchemaID = nil
        return true
    }

    /// Whether `bytes` are the ASCII `word`: a length check and a memcmp, where a comparison with
    /// a String's UTF-8 view cost 9 % of `subscribe channel:C` in callgrind.
    @inline(__always)
    private static func equals(_ bytes: UnsafeRawBufferPointer, _ word: StaticString) -> Bool {
        bytes.count == word.utf8CodeUnitCount && memcmp(bytes.baseAddress!, word.utf8Start, bytes.count) == 0
    }
}
