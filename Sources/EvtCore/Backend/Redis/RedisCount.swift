/// `evt count` of a stream or a list: XLEN and LLEN, and the entries of a stream between two
/// positions, counted on the server (no entry crosses the network).
enum RedisCount {
    /// A stream's XLEN or a list's LLEN (0 when the key does not exist).
    static func length(server: RedisServerAddress, kind: RedisKind, name: String) throws -> SourceCount {
        let connection = try RedisConnection.open(server, key: name)
        var length = 0
        try connection.request([kind == .stream ? "XLEN" : "LLEN", name]) { length = $0.integer }
        return SourceCount(kind: kind.rawValue, name: name, count: Int64(length))
    }

    /// KEYS[1] the stream; ARGV: first id (inclusive; `(ID` exclusive), last id, the most
    /// entries to count in this call. Answers {entries counted, the last id counted or false,
    /// 1 when the range is done}. The entries are built only inside the server, in pages of
    /// 1000 (bigger pages cost more in Lua's memory than they save), so no entry crosses the
    /// network and no call holds the server for long.
    static let pageScript = """
        local start, last, budget = ARGV[1], ARGV[2], tonumber(ARGV[3])
        local counted, lastID = 0, false
        while counted < budget do
            local page = redis.call('XRANGE', KEYS[1], start, last, 'COUNT', 1000)
            local n = #page
            if n == 0 then return {counted, lastID, 1} end
            counted = counted + n
            lastID = page[n][1]
            if n < 1000 then return {counted, lastID, 1} end
            start = '(' .. lastID
        end
        return {counted, lastID, 0}
        """

    /// Entries counted per call (about 40 ms of the server's time).
    static let perCall = 20_000

    /// KEYS[1] the stream. Answers {XLEN, first id, last id} (ids false when it is empty).
    static let snapshotScript = """
        local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
        local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
        return {redis.call('XLEN', KEYS[1]), first and first[1] or false, last and last[1] or false}
        """

    /// KEYS[1] the stream; ARGV: an id, the most entries to count. Answers {XLEN, the entries
    /// after the id} in one step, or false when there are more of them than that.
    static let sinceScript = """
        local start, counted = '(' .. ARGV[1], 0
        while true do
            local page = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 1000)
            counted = counted + #page
            if counted > tonumber(ARGV[2]) then return false end
            if #page < 1000 then return {redis.call('XLEN', KEYS[1]), counted} end
            start = '(' .. page[#page][1]
        end
        """

    /// The entries of stream `name` from `from` up to `until` (inclusive; nil: the newest now),
    /// the positions resolved as replay resolves them (StreamPositions).
    ///
    /// When the range looks larger than what lies outside it (judged by the times in the
    /// ids), the entries outside are counted instead and taken from the length: XLEN and the
    /// stream's last id are read in one step, the entries before and after the range counted,
    /// and at the end XLEN and the entries added since are read in one step again. Entries
    /// are only ever added after the last id, so the count is exact when the length grew by
    /// exactly the entries added; when anything was deleted or trimmed meanwhile, the range
    /// itself is counted after all.
    static func range(server: RedisServerAddress, name: String, from: Position, until: Position?) throws -> SourceCount {
        let connection = try RedisConnection.open(server, key: name)
        var result = SourceCount(kind: "stream", name: name)
        let first = try StreamPositions.firstID(from, stream: name, connection: connection)
        let last = try StreamPositions.lastID(until, stream: name, connection: connection)
        guard first != "+", last != "-" else { return result }
        var sha = ""
        try connection.request(["SCRIPT", "LOAD", pageScript]) { sha = $0.text }
        if let outside = try countOutside(first, last, name: name, connection: connection, sha: sha) {
            result.count = outside
        } else {
            result.count = try countPages(first, last, name: name, connection: connection, sha: sha)
        }
        return result
    }

    /// The range's count as XLEN minus what lies outside it; nil when the range is the smaller
    /// part, or the stream lost entries meanwhile.
    private static func countOutside(_ first: String, _ last: String, name: String, connection: RedisConnection,
                                     sha: String) throws -> Int64? {
        guard case .array(let snapshot) = try connection.call(["EVAL", snapshotScript, "1", name]), snapshot.count == 3,
              case .integer(let length) = snapshot[0], let oldest = snapshot[1].text.flatMap(StreamID.init),
              let newestText = snapshot[2].text, let newest = StreamID(newestText) else { return nil }
        let from = first == "-" ? oldest : StreamID(first) ?? oldest
        let until = StreamID(last) ?? newest
        // Milliseconds inside against outside; sequence numbers count as a millisecond each
        // when the whole stream has one time.
        func time(_ id: StreamID) -> Double { Double(id.milliseconds) + (oldest.milliseconds == newest.milliseconds ? Double(id.sequence) : 0) }
        let inside = max(0, time(until) - time(from))
        guard inside > (time(newest) - time(oldest)) / 2 else { return nil }
        let before = first == "-" ? 0 : try countPages("-", "(" + first, name: name, connection: connection, sha: sha)
        let after = until >= newest ? 0 : try countPages("(" + last, newestText, name: name, connection: connection, sha: sha)
        guard case .array(let end) = try connection.call(["EVAL", sinceScript, "1", name, newestText, "100000"]), end.count == 2,
              case .integer(let lengthNow) = end[0], case .integer(let added) = end[1],
              lengthNow == length + added else { return nil }
        return max(0, Int64(length) - before - after)
    }

    /// The entries from `start` to `last` (XRANGE's bounds), counted on the server.
    private static func countPages(_ start: String, _ last: String, name: String, connection: RedisConnection,
                                   sha: String) throws -> Int64 {
        var counted: Int64 = 0
        func page(from start: String) -> [String] {
            ["EVALSHA", sha, "1", name, start, last, String(perCall)]
        }
        try connection.pages(page(from: start), next: { reply in
            guard reply.count == 3, reply[2].integer == 0, reply[1].kind == .string else { return nil }
            return page(from: "(" + reply[1].text)
        }) { reply in
            guard reply.kind == .array, reply.count == 3, reply[0].kind == .integer else {
                throw EvtError(.refused(code: ""), "counting stream \(name) gave an unexpected answer; is \(connection.address.description) a Redis server of version 6.2 or later?")
            }
            counted += Int64(reply[0].integer)
        }
        return counted
    }
}
