internal import CRdKafka

/// Where librdkafka's partitioners put a record, computed by evt itself.
enum KafkaPartitioner {
    /// The partition librdkafka's `murmur2` partitioner (Java-compatible; a null key always
    /// maps to one partition) picks for `key`: copy-between --exactly-once sets that
    /// partitioner, so a resume can tell where each entry went.
    static func murmur2(key: UnsafeRawBufferPointer?, partitionCount: Int32) -> Int32 {
        rd_kafka_msg_partitioner_murmur2(nil, key?.baseAddress, key?.count ?? 0, partitionCount, nil, nil)
    }

    /// The partitioners that always put one key in one partition (a `_random` one picks at
    /// random only for a null or empty key, which `--key` never is), by their librdkafka names.
    private static let byName: [String: @Sendable (UnsafeRawPointer?, Int, Int32) -> Int32] = [
        "murmur2": { murmur2(key: UnsafeRawBufferPointer(start: $0, count: $1), partitionCount: $2) },
        "murmur2_random": { rd_kafka_msg_partitioner_murmur2_random(nil, $0, $1, $2, nil, nil) },
        "consistent": { rd_kafka_msg_partitioner_consistent(nil, $0, $1, $2, nil, nil) },
        "consistent_random": { rd_kafka_msg_partitioner_consistent_random(nil, $0, $1, $2, nil, nil) },
        "fnv1a": { rd_kafka_msg_partitioner_fnv1a(nil, $0, $1, $2, nil, nil) },
        "fnv1a_random": { rd_kafka_msg_partitioner_fnv1a_random(nil, $0, $1, $2, nil, nil) },
    ]

    /// `--key KEY`: the partition that `name` (`-X partitioner=`, murmur2 when not given, as
    /// Java producers do) puts `key` in. A usage error for a partitioner that does not put a
    /// key in one place, or an empty key (which the `_random` ones spread at random).
    static func partition(of key: [UInt8], partitioner name: String?, partitionCount: Int32) throws -> Int32 {
        let name = name ?? "murmur2"
        guard let hash = byName[name] else {
            throw EvtError.usage("--key: -X partitioner=\(name) does not always put a key in the same partition, so evt cannot tell which one to read; give one of \(byName.keys.sorted().joined(separator: ", ")), or name the partition (topic:NAME/N).")
        }
        guard !key.isEmpty else {
            throw EvtError.usage("--key needs a key of at least one byte (an empty key goes to a random partition under the _random partitioners); to find records with an empty key, read the topic with --match 'key='.")
        }
        return key.withUnsafeBytes { hash($0.baseAddress, $0.count, partitionCount) }
    }
}
