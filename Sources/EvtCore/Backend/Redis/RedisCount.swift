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

    /// The entries of stream `name` from `from` up to `until` (inclusive; nil: the newest now),
    /// the positions resolved as replay resolves them (StreamPositions).
    static func range(server: RedisServerAddress, name: String, from: Position, until: Position?) throws -> SourceCount {
        let connection = try RedisConnection.open(server, key: name)
        var result = SourceCount(kind: "stream", name: name)
        let first = try StreamPositions.firstID(from, stream: name, connection: connection)
        let last = try StreamPositions.lastID(until, stream: name, connection: connection)
        guard first != "+", last != "-" else { return result }
        // EVALSHA after the first page: the script's text goes over the wire once.
        var sha = ""
        try connection.request(["SCRIPT", "LOAD", pageScript]) { sha = $0.text }
        func page(from start: String) -> [String] {
            ["EVALSHA", sha, "1", name, start, last, String(perCall)]
        }
        try connection.pages(page(from: first), next: { reply in
            guard reply.count == 3, reply[2].integer == 0, reply[1].kind == .string else { return nil }
            return page(from: "(" + reply[1].text)
        }) { reply in
            guard reply.kind == .array, reply.count == 3, reply[0].kind == .integer else {
                throw EvtError(.refused(code: ""), "counting stream \(name) gave an unexpected answer; is \(connection.address.description) a Redis server of version 6.2 or later?")
            }
            result.count += Int64(reply[0].integer)
        }
        return result
    }
}
