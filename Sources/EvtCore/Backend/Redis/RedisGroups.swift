/// Consumer groups of a Redis stream, beside KafkaGroups: created by group-create and by
/// `subscribe --create`, moved by `group-create --reset`, removed by group-delete.
enum RedisGroups {
    /// Creates `group` (and the stream, if absent) delivering the entries after `from`.
    /// False when the group existed already (it is left as it is). `start` is the XGROUP id.
    static func create(_ group: String, on stream: String, from: Position,
                       connection: RedisConnection) throws -> (created: Bool, start: String) {
        let start = try StreamPositions.idBefore(from)
        switch try connection.call(["XGROUP", "CREATE", stream, group, start, "MKSTREAM"]) {
        case .error(let message) where RedisErrorReply.cause(message) == .refused(code: "BUSYGROUP"):
            return (false, start)
        case .error(let message):
            throw RedisErrorReply.error(message, "cannot create group \(group) on stream \(stream)")
        default:
            return (true, start)
        }
    }

    /// `evt group-create stream:S GROUP [--from POSITION] [--reset [--shift-by N] [--dry-run]]`.
    /// Returns the plan of a dry run (nothing else does).
    static func create(group: String, server: RedisServerAddress, stream: String, from: Position,
                       reset: GroupReset?) throws -> [GroupPosition] {
        let connection = try RedisConnection.open(server, key: stream)
        if let reset, reset.dryRun {
            let move = try self.move(group, on: stream, reset: reset, from: from, apply: false, connection: connection)
            return [.stream(stream: stream, group: group, current: move.current, new: move.new)]
        }
        if reset?.shiftBy == nil {
            let (created, start) = try create(group, on: stream, from: from, connection: connection)
            if created {
                Diagnostics.print("created group \(group) on stream \(stream), delivering entries after \(start)")
                return []
            }
        }
        guard let reset else {
            Diagnostics.print("group \(group) already exists on stream \(stream); left as it is (--reset moves it to --from).")
            return []
        }
        let move = try self.move(group, on: stream, reset: reset, from: from, apply: true, connection: connection)
        var note = "group \(group) on stream \(stream) moved from \(move.current ?? "nothing") to \(move.new); it now delivers the entries after it"
        if let shift = reset.shiftBy, move.moved < shift.magnitude {
            note += " (moved by \(move.moved) of \(shift.magnitude) entries: the stream has no more \(shift < 0 ? "before" : "after") \(move.current ?? "it"))"
        }
        if move.entriesRead == nil {
            note += ". Redis was not told how many entries the group has read (more than \(countBound) entries on both sides of the new position, or a Redis before 7.0), so XINFO GROUPS shows no exact lag; evt lag counts it"
        }
        Diagnostics.print(note + ".")
        return []
    }

    /// Beyond this many entries on both sides of a new position, the script does not count
    /// them to find the group's entries-read (it would block the server that long).
    static let countBound = 10_000

    /// Moves an existing group (XGROUP SETID … ENTRIESREAD, so that XINFO GROUPS' lag stays
    /// exact), or with `apply` false only says where it would go, in one script: the position,
    /// the count it derives entries-read from and the move are taken on one state of the stream.
    ///
    /// KEYS[1] the stream; ARGV: group, "to" or "shift", the id (XGROUP's, "$" the end) or N,
    /// apply (1 or 0), the count bound. Answers {"ok", current or false, new, moved,
    /// entries-read or false}, {"nogroup"}, or {"wrongtype", TYPE}.
    ///
    /// entries-read of a position P is entries-added minus the entries after P. Shifting by N
    /// from a group whose lag Redis knows, the entries after P are that lag plus (back) or
    /// minus (forward) the entries passed over; otherwise they are counted, up to the bound
    /// from either end (XLEN minus the entries up to P).
    static let moveScript = """
        local stream, group, mode, arg, apply, bound = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1', tonumber(ARGV[5])
        local kind = redis.call('TYPE', stream).ok
        if kind == 'none' then return {'nostream'} end
        if kind ~= 'stream' then return {'wrongtype', kind} end
        local info = {}
        local fields = redis.call('XINFO', 'STREAM', stream)
        for i = 1, #fields, 2 do info[fields[i]] = fields[i + 1] end
        local current, lag = false, false
        for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
            local f = {}
            for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
            if f['name'] == group then current, lag = f['last-delivered-id'], f['lag'] end
        end
        if current == false and (mode == 'shift' or apply) then return {'nogroup'} end
        local new, moved, after = current, 0, false
        if mode == 'to' then
            new = arg
            if new == '$' then new = info['last-generated-id'] end
        else
            local n = tonumber(arg)
            if n < 0 then
                local r = redis.call('XREVRANGE', stream, current, '-', 'COUNT', -n + 1)
                if #r == -n + 1 then new, moved = r[#r][1], -n else new, moved = '0-0', #r end
                if lag then after = lag + moved end
            elseif n > 0 then
                local r = redis.call('XRANGE', stream, '(' .. current, '+', 'COUNT', n)
                if #r > 0 then new, moved = r[#r][1], #r end
                if lag then after = lag - moved end
            elseif lag then
                after = lag
            end
        end
        if after == false then
            local r = redis.call('XRANGE', stream, '(' .. new, '+', 'COUNT', bound + 1)
            if #r <= bound then
                after = #r
            else
                r = redis.call('XREVRANGE', stream, new, '-', 'COUNT', bound + 1)
                if #r <= bound then after = redis.call('XLEN', stream) - #r end
            end
        end
        local read = false
        -- Redis before 7.0 has no entries-added (nor ENTRIESREAD): the group moves without it.
        if after ~= false and info['entries-added'] then read = string.format('%d', info['entries-added'] - after) end
        if apply then
            if read then
                redis.call('XGROUP', 'SETID', stream, group, new, 'ENTRIESREAD', read)
            else
                redis.call('XGROUP', 'SETID', stream, group, new)
            end
        end
        return {'ok', current, new, moved, read}
        """

    private static func move(_ group: String, on stream: String, reset: GroupReset, from: Position, apply: Bool,
                             connection: RedisConnection) throws
        -> (current: String?, new: String, moved: UInt64, entriesRead: String?) {
        let mode: [String]
        if let shift = reset.shiftBy { mode = ["shift", String(shift)] } else { mode = ["to", try StreamPositions.idBefore(from)] }
        let reply = try connection.call(["EVAL", moveScript, "1", stream, group] + mode + [apply ? "1" : "0", String(countBound)])
        if case .error(let message) = reply { throw RedisErrorReply.error(message, "cannot move group \(group) on stream \(stream)") }
        guard case .array(let parts) = reply, let status = parts.first?.text else {
            throw EvtError(.refused(code: ""), "the script that moves group \(group) on stream \(stream) gave an unexpected answer.")
        }
        switch status {
        case "nostream":
            throw EvtError(.refused(code: "NO_SUCH_KEY"), "stream \(stream) does not exist on \(connection.address.description), so it has no group \(group); create it with evt group-create (without --shift-by).")
        case "nogroup":
            throw EvtError(.refused(code: "NOGROUP"), "stream \(stream) has no group \(group) to move; create it first with evt group-create \(connection.address.endpoint(.stream, stream)) \(group) --from POSITION.")
        case "wrongtype":
            throw EvtError(.refused(code: "WRONGTYPE"), "\(stream) on \(connection.address.description) is a Redis \(parts.count > 1 ? parts[1].text ?? "?" : "?"), not a stream, so it has no groups.")
        default:
            guard parts.count >= 5, let new = parts[2].text, case .integer(let moved) = parts[3] else {
                throw EvtError(.refused(code: ""), "the script that moves group \(group) on stream \(stream) gave an unexpected answer.")
            }
            return (parts[1].text, new, UInt64(max(0, moved)), parts[4].text)
        }
    }

    /// `evt group-delete stream:S GROUP [--force]`: XGROUP DESTROY, in one script with the
    /// check of its pending entries (nothing delivered in between is dropped unseen).
    /// Returns how many pending entries went with the group (only with `force`).
    static func delete(group: String, server: RedisServerAddress, stream: String, force: Bool) throws -> Int {
        let script = """
            local kind = redis.call('TYPE', KEYS[1]).ok
            if kind == 'none' then return {'nostream'} end
            if kind ~= 'stream' then return {'wrongtype', kind} end
            for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
                local f = {}
                for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
                if f['name'] == ARGV[1] then
                    if f['pending'] > 0 and ARGV[2] ~= '1' then return {'pending', f['pending'], f['consumers']} end
                    redis.call('XGROUP', 'DESTROY', KEYS[1], ARGV[1])
                    return {'ok', f['pending']}
                end
            end
            return {'nogroup'}
            """
        let connection = try RedisConnection.open(server, key: stream)
        let reply = try connection.call(["EVAL", script, "1", stream, group, force ? "1" : "0"])
        if case .error(let message) = reply { throw RedisErrorReply.error(message, "cannot delete group \(group) of stream \(stream)") }
        guard case .array(let parts) = reply, let status = parts.first?.text else {
            throw EvtError(.refused(code: ""), "the script that deletes group \(group) of stream \(stream) gave an unexpected answer.")
        }
        let endpoint = connection.address.endpoint(.stream, stream)
        switch status {
        case "nostream":
            throw EvtError(.refused(code: "NO_SUCH_KEY"), "stream \(stream) does not exist on \(connection.address.description), so it has no group \(group) to delete. Check the name and the server (EVT_REDIS_URL or a redis:// endpoint).")
        case "wrongtype":
            throw EvtError(.refused(code: "WRONGTYPE"), "\(stream) on \(connection.address.description) is a Redis \(parts.count > 1 ? parts[1].text ?? "?" : "?"), not a stream, so it has no groups.")
        case "nogroup":
            throw EvtError(.refused(code: "NOGROUP"), "stream \(stream) has no group \(group) to delete (evt lag \(endpoint) lists its groups).")
        case "pending":
            var pending = 0
            if parts.count > 1, case .integer(let count) = parts[1] { pending = count }
            throw EvtError(.refused(code: "PENDING"), "group \(group) of stream \(stream) still has \(pending) pending entr\(pending == 1 ? "y" : "ies") (delivered, not acknowledged); deleting it would drop them. Finish them first (evt claim-pending \(endpoint) \(group) --min-idle 1s takes, prints and acknowledges them), or give --force to delete the group with them.")
        default:
            if parts.count > 1, case .integer(let count) = parts[1] { return count }
            return 0
        }
    }
}
