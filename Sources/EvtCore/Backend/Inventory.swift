#if canImport(Glibc)
import Glibc
#endif

/// What `evt ls` lists (CONTRACT.md, "Inventory and upkeep"): one server's or cluster's
/// topics, streams, lists and channels, as typed values; Codec/LsOutput.swift writes them.

/// Which names to list on one server, per kind: nil lists none of that kind; each glob is
/// a shell pattern (`*`, `?`, `[…]`), and a name is listed when any of them matches it.
struct InventoryPatterns: Equatable {
    var topics: [String]?
    var streams: [String]?
    var lists: [String]?
    var channels: [String]?

    /// Everything of every kind (a server named without a pattern).
    static let everything = InventoryPatterns(topics: ["*"], streams: ["*"], lists: ["*"], channels: ["*"])

    mutating func add(_ glob: String, to kind: WritableKeyPath<InventoryPatterns, [String]?>) {
        var globs = self[keyPath: kind] ?? []
        if !globs.contains(glob) { globs.append(glob) }
        self[keyPath: kind] = globs
    }

    mutating func merge(_ other: InventoryPatterns) {
        for kind in [\InventoryPatterns.topics, \.streams, \.lists, \.channels] {
            for glob in other[keyPath: kind] ?? [] { add(glob, to: kind) }
        }
    }

    /// Whether `name` matches one of `globs` (fnmatch, as Redis' MATCH reads a pattern).
    static func matches(_ name: String, _ globs: [String]) -> Bool {
        globs.contains { fnmatch($0, name, 0) == 0 }
    }
}

/// A Kafka cluster: its brokers, and the topics asked for.
struct KafkaInventory {
    struct Broker {
        var id: Int32
        var host: String
        var port: Int
    }

    struct Partition {
        var partition: Int32
        var leader: Int32
        var replicas: [Int32]
        var isr: [Int32]
        /// nil when the leader did not say (an error for that partition, named on stderr).
        var logStart: Int64?
        var logEnd: Int64?
    }

    struct Topic {
        var name: String
        var partitions: [Partition]
        /// The sum of log_end − log_start over the partitions whose watermarks are known.
        var records: Int64 {
            partitions.reduce(0) { sum, partition in
                guard let start = partition.logStart, let end = partition.logEnd else { return sum }
                return sum + max(0, end - start)
            }
        }
    }

    /// The bootstrap brokers as given (`kafka://…` or EVT_KAFKA_BROKERS).
    var bootstrap: String
    var clusterID: String?
    var controller: Int32?
    var brokers: [Broker]
    /// Sorted by name.
    var topics: [Topic]
}

/// A Redis server or cluster: the streams, lists and channels asked for, each sorted by name.
struct RedisInventory {
    struct Group {
        var group: String
        var consumers: Int64
        var pending: Int64
        var lastDeliveredID: String
        var lag: Int64
        /// false when counting stopped at evt lag's bound (Redis did not know the lag).
        var lagExact: Bool
    }

    struct Stream {
        var name: String
        var length: Int64
        var firstID: String?
        var lastID: String?
        var groups: [Group]
    }

    var server: String
    var streams: [Stream] = []
    var lists: [(name: String, length: Int64)] = []
    var channels: [(name: String, subscribers: Int64)] = []
}

/// A server or cluster that `evt ls` lists.
enum InventoryServer: Hashable {
    case redis(RedisServerAddress)
    case kafka(brokers: String)

    /// `redis://127.0.0.1:6379`, `kafka://127.0.0.1:9092`: for messages, without a password.
    var description: String {
        switch self {
        case .redis(let server): return server.description
        case .kafka(let brokers): return "kafka://" + brokers
        }
    }
}

/// What one server or cluster holds.
enum Inventory {
    case kafka(KafkaInventory)
    case redis(RedisInventory)
}
