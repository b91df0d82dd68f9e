/// Positions (CONTRACT, "Positions") as stream entry ids: the one conversion every command
/// uses (group-create, subscribe --from, tail, replay, copy).
enum StreamPositions {
    /// The id a group or an XREAD delivers entries *after*, for reading from `position` on
    /// (the entry it names included). -N needs the stream itself (`startOfLast`).
    static func idBefore(_ position: Position) throws -> String {
        switch position {
        case .beginning: return "0-0"
        case .end: return "$"
        case .streamID(let id): return idBefore(id)
        case .time(let milliseconds), .offset(let milliseconds): return idBefore("\(milliseconds)-0")
        case .fromEnd:
            throw EvtError.usage("-N counts back per Kafka partition and in replays; for a stream group give beginning, end, an id or @TIME.")
        }
    }

    /// The id just before `id` (XREAD and XGROUP deliver entries after an id).
    static func idBefore(_ id: String) -> String {
        guard let parsed = StreamID(id) else { return id }
        if parsed.sequence > 0 { return "\(parsed.milliseconds)-\(parsed.sequence - 1)" }
        if parsed.milliseconds > 0 { return "\(parsed.milliseconds - 1)-\(UInt64.max)" }
        return "0-0"
    }

    /// The first id to read from `position` on, for XRANGE: `-` (the beginning), `+` (the
    /// end: none of what is there now), or an id.
    static func firstID(_ position: Position, stream: String, connection: RedisConnection) throws -> String {
        switch position {
        case .beginning: return "-"
        case .end: return "+"
        case .streamID(let id): return id
        case .time(let milliseconds), .offset(let milliseconds): return "\(milliseconds)-0"
        case .fromEnd(let count): return try startOfLast(Int(count), stream: stream, connection: connection)
        }
    }

    /// The last id to read up to, inclusive, for `until` (nil or end: the newest entry now);
    /// `-` when nothing is to be read.
    static func lastID(_ until: Position?, stream: String, connection: RedisConnection) throws -> String {
        switch until {
        case nil, .end?:
            var newest = "-"
            try connection.request(["XREVRANGE", stream, "+", "-", "COUNT", "1"]) { reply in
                if reply.count > 0 { newest = reply[0][0].text }
            }
            return newest
        case .streamID(let id)?: return id
        case .time(let milliseconds)?, .offset(let milliseconds)?: return "\(milliseconds)-\(UInt64.max)"
        case .beginning?: return "-"
        case .fromEnd(let count)?:
            var last = "-"
            try connection.request(["XREVRANGE", stream, "+", "-", "COUNT", String(count + 1)]) { reply in
                if reply.count == Int(count) + 1 { last = reply[reply.count - 1][0].text }
            }
            return last
        }
    }

    /// The id of the oldest of the last `count` entries (`+` when count is 0: none of them),
    /// found by walking back a page at a time (ids only matter).
    static func startOfLast(_ count: Int, stream: String, connection: RedisConnection) throws -> String {
        guard count > 0 else { return "+" }
        // No more entries than asked for: all of them, without walking back through them.
        var length = Int.max
        try connection.request(["XLEN", stream]) { length = $0.integer }
        if length <= count { return "-" }
        var start = "-"
        var remaining = count
        func page(before: String, wanted: Int) -> [String] {
            ["XREVRANGE", stream, before, "-", "COUNT", String(min(wanted, RedisStreamPages.pageSize))]
        }
        try connection.pages(page(before: "+", wanted: remaining), next: { entries in
            let wanted = remaining - entries.count
            guard entries.count > 0, wanted > 0 else { return nil }
            return page(before: "(" + entries[entries.count - 1][0].text, wanted: wanted)
        }) { entries in
            // None: fewer entries than asked for (the stream was trimmed meanwhile), all of them.
            start = entries.count == 0 ? "-" : entries[entries.count - 1][0].text
            remaining -= entries.count
        }
        return start
    }
}
