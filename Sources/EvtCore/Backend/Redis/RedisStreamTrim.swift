/// `evt trim STREAM`: which conditions an entry must meet to be removed from a stream's head.
struct StreamTrimConditions {
    /// Every group has consumed and acknowledged it.
    var acked = false
    /// Its id's time is older than this many milliseconds (by the server's clock).
    var olderThanMs: Int?
    /// It is not among the newest N.
    var keepNewest: Int?

    var isEmpty: Bool { !acked && olderThanMs == nil && keepNewest == nil }
}

/// What a trim removed, or with `--dry-run` would remove: the entries up to `upTo`.
struct StreamTrimPlan {
    let stream: String
    let removed: Int64
    /// The newest entry removed; nil when nothing is.
    let upTo: String?
}

/// Trims a stream's head in one script, so that the cut is computed and applied on one
/// consistent state: a group created, or an entry delivered, while evt runs is either seen by
/// the script or comes after it, and loses nothing either way.
enum RedisStreamTrim {
    /// KEYS[1] the stream; ARGV: acked (1 or 0), older-than ms or "", keep-newest N or "",
    /// apply (1) or only plan (0). Answers {"ok", removed or -1 when only planned, up-to id
    /// or false}, or {"wrongtype", TYPE}, or {"nogroups"}.
    ///
    /// Each condition gives a cut (entries with a smaller id meet it); an entry must meet
    /// them all, so the cut is the smallest. Ids compare as two decimal numbers, by length
    /// then text (Redis writes them without leading zeros; Lua's doubles would round).
    static let script = """
        local stream = KEYS[1]
        local kind = redis.call('TYPE', stream).ok
        if kind ~= 'stream' then return {'wrongtype', kind} end
        local function parts(id) return string.match(id, '^(%d+)-(%d+)$') end
        local function numberLess(a, b) if #a ~= #b then return #a < #b end return a < b end
        local function less(x, y)
            local xm, xs = parts(x)
            local ym, ys = parts(y)
            if xm ~= ym then return numberLess(xm, ym) end
            return numberLess(xs, ys)
        end
        local function plusOne(digits)
            local i = #digits
            while i > 0 and string.sub(digits, i, i) == '9' do i = i - 1 end
            if i == 0 then return '1' .. string.rep('0', #digits) end
            return string.sub(digits, 1, i - 1) .. tostring(tonumber(string.sub(digits, i, i)) + 1) .. string.rep('0', #digits - i)
        end
        local function idAfter(id)
            local ms, seq = parts(id)
            if seq == '18446744073709551615' then return plusOne(ms) .. '-0' end
            return ms .. '-' .. plusOne(seq)
        end
        local cut = nil
        local function limit(id) if cut == nil or less(id, cut) then cut = id end end
        if ARGV[1] == '1' then
            local groups = redis.call('XINFO', 'GROUPS', stream)
            if #groups == 0 then return {'nogroups'} end
            for _, fields in ipairs(groups) do
                local group = {}
                for i = 1, #fields, 2 do group[fields[i]] = fields[i + 1] end
                limit(idAfter(group['last-delivered-id']))
                if group['pending'] > 0 then limit(redis.call('XPENDING', stream, group['name'])[2]) end
            end
        end
        if ARGV[2] ~= '' then
            local now = redis.call('TIME')
            local before = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[2])
            if before < 0 then before = 0 end
            limit(string.format('%d', before) .. '-0')
        end
        if ARGV[3] ~= '' then
            local keep = tonumber(ARGV[3])
            if redis.call('XLEN', stream) <= keep then
                limit('0-0')
            elseif keep == 0 then
                limit(idAfter(redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1][1]))
            else
                -- the oldest of the newest N, a page at a time
                local start, oldestKept = '+', nil
                while keep > 0 do
                    local page = redis.call('XREVRANGE', stream, start, '-', 'COUNT', math.min(keep, 1000))
                    oldestKept = page[#page][1]
                    keep = keep - #page
                    start = '(' .. oldestKept
                end
                limit(oldestKept)
            end
        end
        if cut == '0-0' then return {'ok', 0, false} end
        local newestRemoved = redis.call('XREVRANGE', stream, '(' .. cut, '-', 'COUNT', 1)[1]
        if newestRemoved == nil then return {'ok', 0, false} end
        if ARGV[4] ~= '1' then return {'ok', -1, newestRemoved[1]} end
        return {'ok', redis.call('XTRIM', stream, 'MINID', cut), newestRemoved[1]}
        """

    static func trim(server: RedisServerAddress, stream: String, conditions: StreamTrimConditions,
                     dryRun: Bool) throws -> StreamTrimPlan {
        let connection = try RedisConnection.open(server, key: stream)
        let reply = try connection.call(["EVAL", script, "1", stream, conditions.acked ? "1" : "0",
                                         conditions.olderThanMs.map(String.init) ?? "",
                                         conditions.keepNewest.map(String.init) ?? "", dryRun ? "0" : "1"])
        if case .error(let message) = reply {
            throw RedisErrorReply.error(message, "cannot trim stream \(stream)")
        }
        guard case .array(let fields) = reply, let status = fields.first?.text else {
            throw EvtError(.refused(code: ""), "trimming stream \(stream) gave an unexpected answer; is \(connection.address.description) a Redis server of version 6.2 or later?")
        }
        switch status {
        case "wrongtype":
            let type = fields.count > 1 ? fields[1].text ?? "?" : "?"
            if type == "none" {
                throw EvtError(.refused(code: "NO_SUCH_KEY"), "stream \(stream) does not exist on \(connection.address.description), so there is nothing to trim. Check the name and the server (EVT_REDIS_URL or a redis:// endpoint).")
            }
            throw EvtError(.refused(code: "WRONGTYPE"), "\(stream) on \(connection.address.description) is a Redis \(type), not a stream; evt trim trims streams.")
        case "nogroups":
            throw EvtError.usage("stream \(stream) has no consumer groups, so no entry is acknowledged: --acked needs a group (evt group-create). To trim by age or length, use --older-than or --maxlen alone.")
        default:
            break
        }
        guard fields.count >= 3, case .integer(let removed) = fields[1] else {
            throw EvtError(.refused(code: ""), "trimming stream \(stream) gave an unexpected answer.")
        }
        let upTo = fields[2].text
        guard removed < 0, let upTo else { return StreamTrimPlan(stream: stream, removed: Int64(removed), upTo: upTo) }
        return StreamTrimPlan(stream: stream, removed: try count(stream, upTo: upTo, on: connection), upTo: upTo)
    }

    /// `--dry-run`: the entries up to `upTo` (inclusive), counted a page at a time.
    private static func count(_ stream: String, upTo: String, on connection: RedisConnection) throws -> Int64 {
        let pageSize = 10_000
        var counted: Int64 = 0
        try connection.pages(["XRANGE", stream, "-", upTo, "COUNT", String(pageSize)], next: { reply in
            guard reply.count == pageSize else { return nil }
            return ["XRANGE", stream, "(" + reply[reply.count - 1][0].text, upTo, "COUNT", String(pageSize)]
        }) { reply in
            counted += Int64(reply.count)
        }
        return counted
    }
}
