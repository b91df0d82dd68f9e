/// Lag of a stream's consumer groups (XINFO GROUPS, XPENDING, XINFO CONSUMERS) or of a list
/// used as a queue (LLEN).
final class RedisLagReader: LagReader {
    private var connection: RedisConnection
    /// The connection broke in an earlier read (`--listen` goes on after a failed read):
    /// the next read opens a new one.
    private var broken = false
    private let server: RedisServerAddress
    private let kind: RedisKind
    private let name: String
    private let query: LagQuery
    private static let pageSize = 10_000

    init(server: RedisServerAddress, kind: RedisKind, name: String, query: LagQuery) throws {
        if kind == .channel {
            throw EvtError.usage("a channel keeps no events, so it has no lag: name a stream, a list or a topic.")
        }
        if kind == .list && !query.groups.isEmpty && !query.groupsWhereFound {
            throw EvtError.usage("--group is for streams and topics; a list's consumers share it without groups.")
        }
        if kind == .stream && query.processing != nil {
            throw EvtError.usage("--processing is for lists; a stream group's unacknowledged entries are its pending entries.")
        }
        connection = try RedisConnection.open(server, key: Self.routingKey(kind, name))
        self.server = server
        self.kind = kind
        self.name = name
        self.query = query
    }

    /// The key whose cluster slot picks the node: none for a channel.
    private static func routingKey(_ kind: RedisKind, _ name: String) -> String? { kind == .channel ? nil : name }

    func read() throws -> [LagReport] {
        if broken {
            connection = try RedisConnection.open(server, key: Self.routingKey(kind, name))
            broken = false
        }
        do {
            return try readOnce()
        } catch let error as EvtError where error.cause == .connectionLost {
            broken = true
            throw error
        }
    }

    private func readOnce() throws -> [LagReport] {
        if kind == .list || query.deadLetter {
            return [try listOrDepth()]
        }
        let groups = try streamGroups()
        // The stream's entries-added, for the trend (Redis 7.0 and later).
        let added = groups.isEmpty ? nil : try entriesAdded()
        let names = query.groups.isEmpty ? groups.map(\.name) : query.groups
        return try names.compactMap { wanted in
            guard let info = groups.first(where: { $0.name == wanted }) else {
                if query.groupsWhereFound { return nil }
                throw EvtError(.refused(code: "NOGROUP"), "stream \(name) has no group \(wanted) (groups: \(groups.isEmpty ? "none" : groups.map(\.name).joined(separator: ", "))). Check the name, or create it with evt group-create \(connection.address.endpoint(.stream, name)) \(Shell.quoted(wanted)).")
            }
            var report = try report(info)
            report.produced = added
            // entries-read, or (where Redis lost count of it) the entries added minus those
            // after the position, when both are exact.
            report.position = info.entriesRead ?? added.flatMap { report.lagExact ? $0 - report.lag : nil }
            if report.position == nil { report.produced = nil }
            return report
        }
    }

    /// XINFO STREAM's entries-added: every entry ever added to the stream; nil before Redis 7.0.
    private func entriesAdded() throws -> Int64? {
        var added: Int64?
        try connection.request(["XINFO", "STREAM", name]) { reply in
            var field = 0
            while field + 1 < reply.count {
                if reply[field].text == "entries-added", reply[field + 1].kind == .integer {
                    added = Int64(reply[field + 1].integer)
                }
                field += 2
            }
        }
        return added
    }

    /// A list's length, or (for a --dead-letter source) any key's: its depth.
    private func listOrDepth() throws -> LagReport {
        let length = try integer([kind == .stream ? "XLEN" : "LLEN", name])
        var report = LagReport(kind: kind.rawValue, name: name, lag: length)
        report.deadLetter = query.deadLetter
        if let processing = query.processing {
            report.processing = (processing, try integer(["LLEN", processing]))
        }
        return report
    }

    private func streamGroups() throws -> [StreamGroupInfo] {
        var groups: [StreamGroupInfo] = []
        do {
            try connection.request(["XINFO", "GROUPS", name]) { groups = StreamGroupInfo.parse(RedisValue($0)) }
        } catch let error as EvtError where !error.isRetriable {
            // XINFO's own answer ("ERR no such key", WRONGTYPE) names neither the stream nor
            // the server: TYPE says which it is.
            throw try whyNotAStream() ?? error
        }
        return groups
    }

    /// The error for a key that is missing or of another type than stream; nil for a stream.
    private func whyNotAStream() throws -> EvtError? {
        guard case .status(let type) = try connection.call(["TYPE", name]), type != "stream" else { return nil }
        let server = connection.address.description
        if type == "none" {
            return EvtError(.refused(code: "NO_SUCH_KEY"), "stream \(name) does not exist on \(server), so it has no lag. Check the name and the server (EVT_REDIS_URL or a redis:// endpoint).")
        }
        let instead = type == "list" ? " For a list used as a queue, name it \(connection.address.endpoint(.list, name))." : ""
        return EvtError(.refused(code: "WRONGTYPE"), "\(name) on \(server) is a Redis \(type), not a stream, so it has no group lag.\(instead)")
    }

    private func report(_ group: StreamGroupInfo) throws -> LagReport {
        let now = epochMilliseconds()
        func age(_ id: StreamID) -> Int64 { max(0, now - Int64(id.milliseconds)) }
        var report = LagReport(kind: "stream", name: name, group: group.name, lag: 0)
        let backlog = try StreamBacklog.measure(stream: name, after: group.lastDelivered, connection: connection,
                                                limit: query.scanLimit, known: group.lag)
        (report.lag, report.lagExact, report.lagMs) = (backlog.count, backlog.exact, backlog.oldestMs)
        report.pending = group.pending
        var histogram: [Int64: Int64] = [:]
        var scanned = 0
        var start = "-"
        if group.pending > 0 {
            // Extended XPENDING, page by page from the oldest; bounded.
            while scanned < query.scanLimit {
                let asked = min(Self.pageSize, query.scanLimit - scanned)
                var last: StreamID?
                var got = 0
                try connection.request(["XPENDING", name, group.name, start, "+", String(asked)]) { reply in
                    got = reply.count
                    for index in 0..<reply.count {
                        let entry = reply[index]
                        let id = StreamID(entry[0].bytes)
                        if report.oldestPendingMs == nil, let id { report.oldestPendingMs = age(id) }
                        histogram[Int64(entry[3].integer), default: 0] += 1
                        last = id
                    }
                }
                scanned += got
                guard got == asked, let last else { break }
                start = "(" + last.description
            }
            report.deliveriesExact = Int64(scanned) >= group.pending
        }
        report.deliveries = histogram.sorted { $0.key < $1.key }.map { (count: $0.key, entries: $0.value) }
        var consumers: [ConsumerLag] = []
        try connection.request(["XINFO", "CONSUMERS", name, group.name]) { reply in
            for index in 0..<reply.count {
                let fields = reply[index]
                var consumer = ConsumerLag(name: "", pending: 0, idleMs: 0)
                var field = 0
                while field + 1 < fields.count {
                    let value = fields[field + 1]
                    switch fields[field].text {
                    case "name": consumer.name = value.text
                    case "pending": consumer.pending = Int64(value.integer)
                    case "idle": consumer.idleMs = Int64(value.integer)
                    default: break
                    }
                    field += 2
                }
                consumers.append(consumer)
            }
        }
        report.consumers = consumers
        return report
    }

    private func integer(_ words: [String]) throws -> Int64 {
        var value: Int64 = 0
        try connection.request(words) { value = Int64($0.integer) }
        return value
    }
}

/// One group of a stream as XINFO GROUPS describes it (evt lag, evt ls).
struct StreamGroupInfo {
    var name = ""
    var consumers: Int64 = 0
    var pending: Int64 = 0
    var lastDelivered = StreamID.zero
    /// Entries the group has read (Redis 7.0 and later); nil where Redis does not know.
    var entriesRead: Int64?
    /// Redis' own count; nil where it cannot know (after an XDEL past the group, a
    /// group made at an arbitrary id).
    var lag: Int64?

    /// XINFO GROUPS' answer: an array of flat name/value arrays, one per group.
    static func parse(_ reply: RedisValue) -> [StreamGroupInfo] {
        guard case .array(let groups) = reply else { return [] }
        return groups.map { value in
            var group = StreamGroupInfo()
            guard case .array(let fields) = value else { return group }
            var field = 0
            while field + 1 < fields.count {
                let value = fields[field + 1]
                switch fields[field].text {
                case "name": group.name = value.text ?? ""
                case "consumers": if case .integer(let count) = value { group.consumers = Int64(count) }
                case "pending": if case .integer(let count) = value { group.pending = Int64(count) }
                case "last-delivered-id":
                    group.lastDelivered = value.bytes.flatMap { bytes in bytes.withUnsafeBytes { StreamID($0) } } ?? .zero
                case "lag": if case .integer(let count) = value { group.lag = Int64(count) }
                case "entries-read": if case .integer(let count) = value { group.entriesRead = Int64(count) }
                default: break
                }
                field += 2
            }
            return group
        }
    }
}

/// The entries of a stream after a position: how many (Redis counts them only for a group,
/// and not after an XDEL past it or an arbitrary SETID) and the age of the first, which
/// `evt lag` and copy-between's --stats both report.
enum StreamBacklog {
    private static let pageSize = 10_000

    /// `known`: the count when Redis gave one; else entries are counted page by page, up to
    /// `limit` (then `exact` is false).
    static func measure(stream: String, after position: StreamID, connection: RedisConnection,
                        limit: Int, known: Int64? = nil) throws -> (count: Int64, exact: Bool, oldestMs: Int64?) {
        let after = "(" + position.description
        var oldest: StreamID?
        try connection.request(["XRANGE", stream, after, "+", "COUNT", "1"]) { reply in
            if reply.count > 0 { oldest = StreamID(reply[0][0].bytes) }
        }
        guard let oldest else { return (0, true, nil) }
        let oldestMs = max(0, epochMilliseconds() - Int64(oldest.milliseconds))
        if let known { return (known, true, known > 0 ? oldestMs : nil) }
        var start = after
        var counted = 0
        while counted < limit {
            var got = 0
            var last: StreamID?
            try connection.request(["XRANGE", stream, start, "+", "COUNT", String(pageSize)]) { reply in
                got = reply.count
                if got > 0 { last = StreamID(reply[got - 1][0].bytes) }
            }
            counted += got
            guard got == pageSize, let last else { return (Int64(counted), true, oldestMs) }
            start = "(" + last.description
        }
        return (Int64(counted), false, oldestMs)
    }
}
