/// `evt ls` on a Redis server or cluster: the keys come from SCAN … MATCH GLOB COUNT 1000
/// TYPE stream|list on every master (never KEYS, which holds the server for the whole
/// keyspace), then each key's facts from pipelined commands (XINFO STREAM and XINFO GROUPS,
/// LLEN), a batch of keys per round trip; channels from PUBSUB CHANNELS and PUBSUB NUMSUB on
/// every node (a cluster's subscribers are spread over all its nodes, replicas too).
enum RedisInventoryReader {
    /// Keys whose commands go out in one write and are answered in one read.
    static let batchSize = 500

    static func read(server: RedisServerAddress, patterns: InventoryPatterns) throws -> RedisInventory {
        let router = ClusterRouter.of(server)
        let seed = try router.connect(key: nil)
        try router.learn(on: seed)
        var masters = [seed]
        if let slots = router.slots {
            masters = try slots.masters.map { try router.connect(to: RedisNode(host: $0.host, port: $0.port)) }
        }
        var inventory = RedisInventory(server: server.description)
        if let globs = patterns.streams {
            for connection in masters {
                let names = try scan(connection, type: "stream", globs)
                inventory.streams += try streams(names, on: connection, server: server)
            }
            inventory.streams.sort { $0.name < $1.name }
        }
        if let globs = patterns.lists {
            for connection in masters {
                let names = try scan(connection, type: "list", globs)
                inventory.lists += try lengths(names, on: connection, server: server)
            }
            inventory.lists.sort { $0.name < $1.name }
        }
        if let globs = patterns.channels {
            let nodes = router.isCluster ? try clusterNodes(seed).map { try router.connect(to: $0) } : [seed]
            var subscribers: [String: Int64] = [:]
            for connection in nodes {
                for (name, count) in try channels(on: connection, globs) { subscribers[name, default: 0] += count }
            }
            inventory.channels = subscribers.filter { $0.value > 0 }.map { ($0.key, $0.value) }.sorted { $0.name < $1.name }
        }
        return inventory
    }

    // MARK: Keys

    /// The keys of `type` on this node that match one of `globs`, sorted (SCAN may return a
    /// key twice).
    static func scan(_ connection: RedisConnection, type: String, _ globs: [String]) throws -> [String] {
        var found: Set<String> = []
        for glob in globs {
            func page(_ cursor: String) -> [String] {
                ["SCAN", cursor, "MATCH", glob, "COUNT", "1000", "TYPE", type]
            }
            try connection.pages(page("0"), next: { reply in
                let cursor = reply.count == 2 ? reply[0].text : "0"
                return cursor == "0" ? nil : page(cursor)
            }) { reply in
                guard reply.count == 2 else { return }
                let keys = reply[1]
                for index in 0..<keys.count { found.insert(keys[index].text) }
            }
        }
        return found.sorted()
    }

    /// Sends the commands of `names` (`commands(name)` each) in batches, one write and one read
    /// per batch, and hands each key's replies to `take` in order. A key that went away
    /// meanwhile (an error answer) is handed over without replies; one that a cluster answered
    /// for elsewhere (its slot moved) is asked again through the router.
    private static func pipelined(_ names: [String], on connection: RedisConnection, server: RedisServerAddress,
                                  _ commands: (String) -> [[String]],
                                  _ take: (String, [RedisValue]?) throws -> Void) throws {
        var start = 0
        while start < names.count {
            let batch = names[start..<min(start + batchSize, names.count)]
            start += batch.count
            var perKey = 0
            for name in batch {
                let words = commands(name)
                perKey = words.count
                for command in words { connection.outgoing.command(command) }
            }
            try connection.flushWrites()
            for name in batch {
                var replies: [RedisValue] = []
                for _ in 0..<perKey {
                    let wait = try connection.nextReply(waitMs: Int32(connection.writeStallLimitMs), stopOnSignal: false) {
                        replies.append(RedisValue($0))
                    }
                    if wait != .reply {
                        throw EvtError(.connectionLost, "\(connection.address.description) did not answer while evt listed its keys.")
                    }
                }
                let moved = replies.contains { reply in
                    if case .error(let text) = reply { return RedisErrorReply.cause(text).isMoved }
                    return false
                }
                if moved {
                    // Its slot moved between SCAN and now: the commands once more, on its master.
                    let owner = try RedisConnection.open(server, key: name)
                    replies = try commands(name).map { try owner.call($0) }
                }
                let failed = replies.contains { if case .error = $0 { return true } else { return false } }
                try take(name, failed ? nil : replies)
            }
        }
    }

    /// Length, first and last id and groups of each stream: XINFO STREAM and XINFO GROUPS.
    /// A group whose lag Redis does not know (nil) is counted as `evt lag` counts it.
    static func streams(_ names: [String], on connection: RedisConnection,
                        server: RedisServerAddress) throws -> [RedisInventory.Stream] {
        var result: [RedisInventory.Stream] = []
        var groupsByStream: [(index: Int, groups: [StreamGroupInfo])] = []
        try pipelined(names, on: connection, server: server, { [["XINFO", "STREAM", $0], ["XINFO", "GROUPS", $0]] }) { name, replies in
            guard let replies, case .array(let info) = replies[0] else { return }
            var stream = RedisInventory.Stream(name: name, length: 0, groups: [])
            var field = 0
            while field + 1 < info.count {
                let value = info[field + 1]
                switch info[field].text {
                case "length": if case .integer(let length) = value { stream.length = Int64(length) }
                case "first-entry": stream.firstID = entryID(value)
                case "last-entry": stream.lastID = entryID(value)
                default: break
                }
                field += 2
            }
            groupsByStream.append((result.count, StreamGroupInfo.parse(replies[1])))
            result.append(stream)
        }
        let limit = LagQuery().scanLimit
        for (index, groups) in groupsByStream {
            let name = result[index].name
            result[index].groups = try groups.map { group in
                var lag = group.lag ?? 0
                var exact = true
                if group.lag == nil {
                    let backlog = try StreamBacklog.measure(stream: name, after: group.lastDelivered,
                                                            connection: connection, limit: limit)
                    (lag, exact) = (backlog.count, backlog.exact)
                }
                return RedisInventory.Group(group: group.name, consumers: group.consumers, pending: group.pending,
                                            lastDeliveredID: group.lastDelivered.description, lag: lag, lagExact: exact)
            }
        }
        return result
    }

    /// The id of XINFO STREAM's first-entry or last-entry (`[id, [field, value, …]]`, or nil).
    private static func entryID(_ value: RedisValue) -> String? {
        guard case .array(let entry) = value, let id = entry.first?.text else { return nil }
        return id
    }

    /// LLEN of each list.
    static func lengths(_ names: [String], on connection: RedisConnection,
                        server: RedisServerAddress) throws -> [(name: String, length: Int64)] {
        var result: [(name: String, length: Int64)] = []
        try pipelined(names, on: connection, server: server, { [["LLEN", $0]] }) { name, replies in
            guard let replies, case .integer(let length) = replies[0] else { return }
            result.append((name, Int64(length)))
        }
        return result
    }

    // MARK: Channels

    /// Channels with subscribers on this node that match one of `globs`, and how many
    /// subscribers each has here (PUBSUB CHANNELS, then one PUBSUB NUMSUB for them all).
    static func channels(on connection: RedisConnection, _ globs: [String]) throws -> [String: Int64] {
        var names: Set<String> = []
        for glob in globs {
            guard case .array(let listed) = try connection.call(["PUBSUB", "CHANNELS", glob]) else { continue }
            for name in listed { if let text = name.text { names.insert(text) } }
        }
        guard !names.isEmpty else { return [:] }
        var counts: [String: Int64] = [:]
        guard case .array(let pairs) = try connection.call(["PUBSUB", "NUMSUB"] + names.sorted()) else { return [:] }
        var index = 0
        while index + 1 < pairs.count {
            if let name = pairs[index].text, case .integer(let count) = pairs[index + 1] { counts[name] = Int64(count) }
            index += 2
        }
        return counts
    }

    /// Every node of the cluster that is up, masters and replicas (CLUSTER NODES): a
    /// subscriber may be on any of them.
    static func clusterNodes(_ seed: RedisConnection) throws -> [RedisNode] {
        guard case .string(let bytes) = try seed.call(["CLUSTER", "NODES"]) else {
            return [seed.node]
        }
        var nodes: [RedisNode] = []
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3 else { continue }
            let flags = fields[2].split(separator: ",")
            if flags.contains(where: { ["fail", "fail?", "noaddr", "handshake"].contains($0) }) { continue }
            // `host:port@cport[,hostname]`; an empty host is the node asked.
            let address = fields[1].prefix { $0 != "@" && $0 != "," }
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { continue }
            let host = String(address[..<colon])
            nodes.append(RedisNode(host: host.isEmpty ? seed.address.host : host, port: port))
        }
        return nodes.isEmpty ? [seed.node] : nodes
    }
}
