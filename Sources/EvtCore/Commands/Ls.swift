/// `evt ls [WHAT...]`: what the servers hold, one JSON object per Kafka cluster, topic, stream,
/// list and channel (a table on a terminal). WHAT is a server (`redis://…`, `kafka://…`) or
/// a pattern (`topic:GLOB`, `stream:GLOB`, `list:GLOB`, `channel:GLOB`); none lists both
/// default servers. A server that cannot be reached is named on stderr, the others are still
/// listed, and the exit status is then 1.
public enum LsCommand {
    enum Format: String, CaseIterable { case json, table }

    public static func run(_ arguments: ParsedArguments, environment: [String: String]) throws -> ExitStatus {
        let spec = arguments.spec
        let format = try arguments.format(Format.self, onATerminal: .table, otherwise: .json)
        var plan = Plan()
        if arguments.operands.isEmpty {
            plan.add(.kafka(brokers: Endpoint.kafkaBrokers(environment: environment)), .everything, wholeServer: true)
            plan.add(.redis(try Endpoint.redisServer(environment: environment)), .everything, wholeServer: true)
        }
        for word in arguments.operands {
            try plan.add(word, environment: environment, usage: spec.usageLine)
        }
        let kafka = try arguments.kafkaSettings()

        let output = OutputWriter()
        var listed: [Inventory] = []
        var clusterLines: [Bool] = []
        var unreachable = false
        do {
            for server in plan.servers {
                let inventory: Inventory
                do {
                    inventory = try Backends.inventory(of: server, patterns: plan.patterns[server]!, kafka: kafka)
                } catch let error as EvtError where error.cause != .usage && error.cause != .stopped {
                    Diagnostics.print("cannot list \(server.description): \(error.message)")
                    unreachable = true
                    continue
                }
                let clusterLine = plan.wholeServers.contains(server)
                if format == .json {
                    LsOutput.appendJSON(inventory, clusterLine: clusterLine, to: &output.buffer)
                    try output.flush()
                } else {
                    listed.append(inventory)
                    clusterLines.append(clusterLine)
                }
            }
            if format == .table {
                LsOutput.appendTables(listed, clusterLine: clusterLines, to: &output.buffer)
                try output.flush()
            }
        } catch is StdoutClosed {
            return .success
        }
        if unreachable { return .failure }
        return Signals.exitStatusAfterSignal ?? .success
    }

    /// The servers to list, in the order first named, and what to list on each.
    struct Plan {
        var servers: [InventoryServer] = []
        var patterns: [InventoryServer: InventoryPatterns] = [:]
        /// Named whole (no WHAT, or a server address): a Kafka cluster's own line is printed.
        var wholeServers: Set<InventoryServer> = []

        mutating func add(_ server: InventoryServer, _ wanted: InventoryPatterns, wholeServer: Bool) {
            if patterns[server] == nil {
                servers.append(server)
                patterns[server] = wanted
            } else {
                patterns[server]!.merge(wanted)
            }
            if wholeServer { wholeServers.insert(server) }
        }

        /// One WHAT: `redis[s]://SERVER[/KIND/GLOB]`, `kafka://BROKERS[/GLOB]`, or KIND:GLOB.
        mutating func add(_ word: String, environment: [String: String], usage: String) throws {
            func bad(_ why: String) -> EvtError {
                EvtError.usage("bad WHAT \(Endpoint.redactingPassword(word)): \(why)", usage: usage)
            }
            if word.hasPrefix("redis://") || word.hasPrefix("rediss://") {
                let (server, path) = try Endpoint.parseRedisServer(word, environment: environment, bad: bad)
                if path.isEmpty {
                    add(.redis(server), .everything, wholeServer: true)
                    return
                }
                let parts = path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, let kind = RedisKind(rawValue: String(parts[0])), !parts[1].isEmpty else {
                    throw bad("expected redis[s]://HOST[:PORT][/DB] or redis[s]://HOST[:PORT][/DB]/stream|list|channel/GLOB")
                }
                add(.redis(server), Self.patterns(kind, try Endpoint.percentDecoded(String(parts[1]), bad: bad)), wholeServer: false)
                return
            }
            if word.hasPrefix("kafka://") {
                let rest = word.dropFirst("kafka://".count)
                let slash = rest.firstIndex(of: "/") ?? rest.endIndex
                guard slash != rest.startIndex else { throw bad("expected kafka://HOST[:PORT][,HOST[:PORT]...][/GLOB]") }
                let brokers = try Endpoint.parseBrokers(rest[..<slash], bad: bad)
                let glob = rest[slash...].dropFirst()
                if glob.isEmpty {
                    add(.kafka(brokers: brokers), .everything, wholeServer: true)
                } else {
                    add(.kafka(brokers: brokers), InventoryPatterns(topics: [String(glob)]), wholeServer: false)
                }
                return
            }
            guard let colon = word.firstIndex(of: ":") else {
                throw bad("expected redis://…, kafka://…, topic:GLOB, stream:GLOB, list:GLOB or channel:GLOB")
            }
            let scheme = String(word[..<colon])
            let glob = String(word[word.index(after: colon)...])
            guard !glob.isEmpty else { throw bad("the pattern after \(scheme): is empty (use * for every name)") }
            if scheme == "topic" {
                add(.kafka(brokers: Endpoint.kafkaBrokers(environment: environment)),
                    InventoryPatterns(topics: [glob]), wholeServer: false)
                return
            }
            guard let kind = RedisKind(rawValue: scheme) else {
                let guess = ArgumentParser.closest(to: scheme, among: ["stream", "list", "channel", "topic"])
                throw bad("unknown kind \(scheme)" + (guess.map { " (did you mean \($0):?)" } ?? "")
                          + "; use topic:, stream:, list:, channel:, redis:// or kafka://")
            }
            add(.redis(try Endpoint.redisServer(environment: environment)), Self.patterns(kind, glob), wholeServer: false)
        }

        static func patterns(_ kind: RedisKind, _ glob: String) -> InventoryPatterns {
            switch kind {
            case .stream: return InventoryPatterns(streams: [glob])
            case .list: return InventoryPatterns(lists: [glob])
            case .channel: return InventoryPatterns(channels: [glob])
            }
        }
    }
}
