/// How evt checks a `rediss://` server and proves who it is (CONTRACT.md, "Endpoints"):
/// from EVT_REDIS_CACERT / EVT_REDIS_CERT / EVT_REDIS_KEY / EVT_REDIS_TLS_VERIFY, or from
/// the endpoint's `?cacert=&cert=&key=`, which win.
public struct RedisTLSSettings: Sendable, Hashable {
    /// A PEM file or a directory of hashed certificates (c_rehash); nil: the system's CAs.
    public var caCertificates: String?
    public var clientCertificate: String?
    /// The client certificate's private key; nil with a certificate: it is in the same file.
    public var clientKey: String?
    /// false only with EVT_REDIS_TLS_VERIFY=none.
    public var verifiesServer = true
}

/// Where a Redis server is; `description` never shows the password.
public struct RedisServerAddress: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var database: Int
    public var user: String?
    public var password: String?
    /// nil: plain text (`redis://`); never a fallback from TLS to plain text.
    public var tls: RedisTLSSettings?
    /// More nodes of the same Redis Cluster (`HOST:PORT,HOST:PORT`), tried in order after
    /// the first when it cannot be reached.
    public var moreSeeds: [RedisNode] = []

    public init(host: String, port: Int, database: Int = 0, user: String? = nil, password: String? = nil,
                tls: RedisTLSSettings? = nil, moreSeeds: [RedisNode] = []) {
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self.password = password
        self.tls = tls
        self.moreSeeds = moreSeeds
    }

    public var description: String {
        let nodes = ([RedisNode(host: host, port: port)] + moreSeeds).map(\.description).joined(separator: ",")
        return (tls == nil ? "redis://" : "rediss://") + nodes + (database == 0 ? "" : "/\(database)")
    }

    /// `redis://HOST:PORT[/DB]/KIND/NAME`, quoted for sh when it needs to be: this server's
    /// endpoint for a command in a hint, so the hint acts on the server that was used. No
    /// password (it stays in the user's endpoint or the environment).
    func endpoint(_ kind: RedisKind, _ name: String) -> String {
        let escaped = name.map { $0 == "%" ? "%25" : $0 == "?" ? "%3F" : String($0) }.joined()
        return Shell.quoted("\(description)/\(kind.rawValue)/\(escaped)")
    }

    /// The same credentials and TLS settings for another node (of a cluster).
    func at(_ node: RedisNode) -> RedisServerAddress {
        var address = self
        address.host = node.host
        address.port = node.port
        address.moreSeeds = []
        return address
    }

    var seeds: [RedisNode] { [RedisNode(host: host, port: port)] + moreSeeds }
}

/// One Redis server's host and port.
public struct RedisNode: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) { self.host = host; self.port = port }
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// The three Redis data types evt reads and writes.
public enum RedisKind: String, Sendable, CaseIterable {
    case stream, list, channel
}

/// One address grammar for every command (CONTRACT.md, "Endpoints").
public enum Endpoint: Sendable, Equatable {
    case redis(RedisServerAddress, RedisKind, name: String)
    case kafka(brokers: String, topic: String, partition: Int32?)

    /// The topic, stream, list or channel name: what a registry's subjects for records sent
    /// here are named after (TOPIC-value, TOPIC-key).
    var subjectName: String {
        switch self {
        case .redis(_, _, let name): name
        case .kafka(_, let topic, _): topic
        }
    }

    public static let defaultRedisURL = "redis://127.0.0.1:6379"
    public static let defaultKafkaBrokers = "127.0.0.1:9092"

    /// `stream orders on redis://127.0.0.1:6379` — for messages; no password.
    public var description: String {
        switch self {
        case .redis(let server, let kind, let name):
            return "\(kind.rawValue) \(name) on \(server.description)"
        case .kafka(let brokers, let topic, let partition):
            return "topic \(topic)" + (partition.map { " partition \($0)" } ?? "") + " on \(brokers)"
        }
    }


    /// The endpoint with `--partition N` applied (nil: as it is); the partition its address
    /// names, if any, must be the same.
    func pinned(to partition: Int32?) throws -> Endpoint {
        guard let partition, case .kafka(let brokers, let topic, let named) = self else { return self }
        if let named, named != partition {
            throw EvtError.usage("the endpoint names partition \(named) but --partition says \(partition); give one.")
        }
        return .kafka(brokers: brokers, topic: topic, partition: partition)
    }

    /// Whether `text` is meant as an endpoint (a scheme or a short-form prefix), as opposed
    /// to, say, a file name: options such as --dead-letter take either.
    static func looksLikeEndpoint(_ text: String) -> Bool {
        ["redis://", "rediss://", "kafka://", "stream:", "list:", "channel:", "topic:"].contains { text.hasPrefix($0) }
    }

    /// Parses an endpoint. Short forms take their server from the environment; a password
    /// written in the endpoint beats EVT_REDIS_PASSWORD / REDISCLI_AUTH.
    public static func parse(_ text: String, environment: [String: String]) throws -> Endpoint {
        func bad(_ why: String) -> EvtError {
            EvtError.usage("bad endpoint \(redactingPassword(text)): \(why)")
        }
        if text.hasPrefix("redis://") || text.hasPrefix("rediss://") {
            let (server, path) = try parseRedisServer(text, environment: environment, bad: bad)
            let parts = path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let kind = RedisKind(rawValue: String(parts[0])), !parts[1].isEmpty else {
                throw bad("expected redis://HOST[:PORT][/DB]/stream|list|channel/NAME")
            }
            return .redis(server, kind, name: try percentDecoded(String(parts[1]), bad: bad))
        }
        if text.hasPrefix("kafka://") {
            let rest = text.dropFirst("kafka://".count)
            guard let slash = rest.firstIndex(of: "/") else {
                throw bad("expected kafka://HOST[:PORT][,HOST[:PORT]...]/TOPIC[/PARTITION]")
            }
            let brokers = try parseBrokers(rest[..<slash], bad: bad)
            let (topic, partition) = try topicAndPartition(String(rest[rest.index(after: slash)...]), bad: bad)
            return .kafka(brokers: brokers, topic: topic, partition: partition)
        }
        guard let colon = text.firstIndex(of: ":") else {
            throw bad("expected stream:NAME, list:NAME, channel:NAME, topic:NAME[/PARTITION], redis://… or kafka://…")
        }
        let scheme = String(text[..<colon])
        let name = String(text[text.index(after: colon)...])
        if scheme == "topic" {
            let (topic, partition) = try topicAndPartition(name, bad: bad)
            return .kafka(brokers: kafkaBrokers(environment: environment), topic: topic, partition: partition)
        }
        guard let kind = RedisKind(rawValue: scheme) else {
            let guess = ArgumentParser.closest(to: scheme, among: ["stream", "list", "channel", "topic"])
            throw bad("unknown kind \(scheme)" + (guess.map { " (did you mean \($0):?)" } ?? "")
                      + "; use stream:, list:, channel:, topic:, redis:// or kafka://")
        }
        guard !name.isEmpty else { throw bad("the \(scheme) name is empty") }
        return .redis(try redisServer(environment: environment), kind, name: name)
    }

    /// The Kafka brokers of short forms: EVT_KAFKA_BROKERS, else 127.0.0.1:9092.
    static func kafkaBrokers(environment: [String: String]) -> String {
        environment["EVT_KAFKA_BROKERS"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultKafkaBrokers
    }

    /// `HOST[:PORT],HOST[:PORT]…` of a kafka:// address, each with a port (9092 by default).
    static func parseBrokers(_ text: Substring, bad: (String) -> EvtError) throws -> String {
        try text.split(separator: ",", omittingEmptySubsequences: false).map { broker throws -> String in
            guard !broker.isEmpty else { throw bad("empty broker address") }
            return broker.contains(":") && !broker.hasSuffix("]") ? String(broker) : "\(broker):9092"
        }.joined(separator: ",")
    }

    /// The Redis server of short forms: EVT_REDIS_URL, else redis://127.0.0.1:6379.
    static func redisServer(environment: [String: String]) throws -> RedisServerAddress {
        let base = environment["EVT_REDIS_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultRedisURL
        guard base.hasPrefix("redis://") || base.hasPrefix("rediss://") else {
            throw EvtError.usage("EVT_REDIS_URL must look like redis[s]://[[USER:]PASSWORD@]HOST[:PORT][/DB], not \(redactingPassword(base)).")
        }
        let (server, path) = try parseRedisServer(base, environment: environment) { why in
            EvtError.usage("bad EVT_REDIS_URL \(redactingPassword(base)): \(why)")
        }
        guard path.isEmpty else {
            throw EvtError.usage("EVT_REDIS_URL names a server only (redis[s]://HOST[:PORT][/DB][?cacert=…]), not \(redactingPassword(base)).")
        }
        return server
    }

    /// Splits `redis[s]://[[USER:]PASSWORD@]HOST[:PORT][/DB][/rest][?query]` into the server
    /// and `rest`.
    static func parseRedisServer(_ text: String, environment: [String: String],
                                 bad: (String) -> EvtError) throws -> (RedisServerAddress, String) {
        let usesTLS = text.hasPrefix("rediss://")
        let (withoutQuery, query) = try splitQuery(text, bad: bad)
        if !usesTLS, let name = query.keys.sorted().first {
            throw bad("\(name)= is a TLS setting: use rediss:// for a server that speaks TLS")
        }
        var rest = Substring(withoutQuery.dropFirst(usesTLS ? "rediss://".count : "redis://".count))
        var user: String?
        var password: String?
        if let at = rest.lastIndex(of: "@"), !rest[..<at].contains("/") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let name = String(userinfo[..<colon])
                user = name.isEmpty ? nil : try percentDecoded(name, bad: bad)
                password = try percentDecoded(String(userinfo[userinfo.index(after: colon)...]), bad: bad)
            } else {
                password = try percentDecoded(String(userinfo), bad: bad)   // a single word is the password, as in redis-cli
            }
        }
        let hostEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        var path = rest[hostEnd...].drop { $0 == "/" }
        // HOST:PORT, or several nodes of one cluster: HOST:PORT,HOST:PORT,…
        let nodes = try rest[..<hostEnd].split(separator: ",", omittingEmptySubsequences: false).map { hostPort in
            try parseNode(hostPort, bad: bad)
        }
        var database = 0
        let firstSegment = path.prefix { $0 != "/" }
        if !firstSegment.isEmpty, firstSegment.allSatisfy(\.isASCII), let number = Int(firstSegment) {
            guard number >= 0 else { throw bad("the database number must be 0 or more") }
            database = number
            path = path.dropFirst(firstSegment.count).drop { $0 == "/" }
        }
        if password == nil {
            password = [environment["EVT_REDIS_PASSWORD"], environment["REDISCLI_AUTH"]]
                .compactMap { $0 }.first { !$0.isEmpty }
        }
        let tls = usesTLS ? try tlsSettings(query: query, environment: environment) : nil
        return (RedisServerAddress(host: nodes[0].host, port: nodes[0].port, database: database, user: user,
                                   password: password, tls: tls, moreSeeds: Array(nodes.dropFirst())),
                String(path))
    }

    static let tlsQueryNames = ["cacert", "cert", "key"]

    /// The `?name=value&…` at the end of a Redis URL. A `?` is taken as the start of a query
    /// only when what follows is `name=value` pairs, so a channel pattern such as `news.?` stays
    /// a name (write a `?` followed by `=` in a name as %3F).
    static func splitQuery(_ text: String, bad: (String) -> EvtError) throws -> (String, [String: String]) {
        guard let mark = text.lastIndex(of: "?") else { return (text, [:]) }
        let pairs = text[text.index(after: mark)...].split(separator: "&", omittingEmptySubsequences: false)
        let looksLikeQuery = pairs.allSatisfy { pair in
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else { return false }
            return pair[..<equals].allSatisfy { $0.isASCII && ($0.isLetter || $0 == "_") }
        }
        guard looksLikeQuery else { return (text, [:]) }
        var query: [String: String] = [:]
        for pair in pairs {
            let equals = pair.firstIndex(of: "=")!
            let name = String(pair[..<equals])
            guard tlsQueryNames.contains(name) else {
                throw bad("unknown URL parameter \(name)=; the ones evt knows are " + tlsQueryNames.map { $0 + "=" }.joined(separator: ", "))
            }
            guard query[name] == nil else { throw bad("\(name)= is given twice") }
            query[name] = try percentDecoded(String(pair[pair.index(after: equals)...]), bad: bad)
        }
        return (String(text[..<mark]), query)
    }

    /// TLS settings for a `rediss://` server: the URL's parameters, else the environment.
    static func tlsSettings(query: [String: String], environment: [String: String]) throws -> RedisTLSSettings {
        func setting(_ name: String, _ variable: String) -> String? {
            query[name] ?? environment[variable].flatMap { $0.isEmpty ? nil : $0 }
        }
        var settings = RedisTLSSettings(caCertificates: setting("cacert", "EVT_REDIS_CACERT"),
                                        clientCertificate: setting("cert", "EVT_REDIS_CERT"),
                                        clientKey: setting("key", "EVT_REDIS_KEY"))
        if settings.clientKey != nil && settings.clientCertificate == nil {
            throw EvtError.usage("a client key (EVT_REDIS_KEY or key=) needs its certificate too: set EVT_REDIS_CERT or cert=.")
        }
        switch environment["EVT_REDIS_TLS_VERIFY"] ?? "" {
        case "", "full": break
        case "none": settings.verifiesServer = false
        case let other:
            throw EvtError.usage("EVT_REDIS_TLS_VERIFY=\(other) is not known: leave it unset (verify the certificate and host name) or set it to none.")
        }
        return settings
    }

    /// `HOST[:PORT]` or `[IPv6][:PORT]`; an empty host is 127.0.0.1, no port 6379.
    static func parseNode(_ text: Substring, bad: (String) -> EvtError) throws -> RedisNode {
        var hostPort = text
        var host: String
        var port = 6379
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw bad("unclosed [ in the host") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            hostPort = hostPort[hostPort.index(after: close)...]
            if hostPort.hasPrefix(":") { port = try parsePort(hostPort.dropFirst(), bad: bad) }
        } else if let colon = hostPort.firstIndex(of: ":") {
            host = String(hostPort[..<colon])
            port = try parsePort(hostPort[hostPort.index(after: colon)...], bad: bad)
        } else {
            host = String(hostPort)
        }
        if host.isEmpty { host = "127.0.0.1" }
        return RedisNode(host: host, port: port)
    }

    static func parsePort(_ text: Substring, bad: (String) -> EvtError) throws -> Int {
        guard let port = Int(text), (1...65535).contains(port) else {
            throw bad("the port must be a number from 1 to 65535, not \(text)")
        }
        return port
    }

    /// `NAME[/PARTITION]`, with Kafka's rules for topic names.
    static func topicAndPartition(_ text: String, bad: (String) -> EvtError) throws -> (String, Int32?) {
        var topic = Substring(text)
        var partition: Int32?
        if let slash = text.lastIndex(of: "/") {
            let tail = text[text.index(after: slash)...]
            guard let number = Int32(tail), number >= 0 else {
                throw bad("the partition after / must be a number (0 or more), not \(tail)")
            }
            partition = number
            topic = text[..<slash]
        }
        guard !topic.isEmpty else { throw bad("the topic name is empty") }
        // A topic name starting with ^ is a regular expression (librdkafka's convention).
        let legal = topic.hasPrefix("^") || topic.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
        guard legal, topic.count <= 249 else {
            throw bad("a Kafka topic name has at most 249 of the characters a-z A-Z 0-9 . _ -")
        }
        return (String(topic), partition)
    }

    static func percentDecoded(_ text: String, bad: (String) -> EvtError) throws -> String {
        guard text.contains("%") else { return text }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                      let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else {
                    throw bad("a % must be followed by two hex digits")
                }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The text with any `user:password@` / `password@` of a URL replaced by `***@`.
    public static func redactingPassword(_ text: String) -> String {
        guard let colon = text.firstIndex(of: ":"), text[colon...].hasPrefix("://") else { return text }
        let schemeEnd = text.index(colon, offsetBy: 3)
        let rest = text[schemeEnd...]
        guard let at = rest.lastIndex(of: "@"), !rest[..<at].contains("/") else { return text }
        let userinfo = rest[..<at]
        let user = userinfo.firstIndex(of: ":").map { String(userinfo[..<$0]) + ":" } ?? ""
        return String(text[..<schemeEnd]) + user + "***" + String(rest[at...])
    }
}
