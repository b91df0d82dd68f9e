internal import CRdKafka

/// Where librdkafka's partitioners put a record, computed by evt itself.
enum KafkaPartitioner {
    /// The partition librdkafka's `murmur2` partitioner (Java-compatible; a null key always
    /// maps to one partition) picks for `key`: copy-between --exactly-once sets that
    /// partitioner, so a resume can tell where each entry went.
    static func murmur2(key: UnsafeRawBufferPointer?, partitionCount: Int32) -> Int32 {
        rd_kafka_msg_partitioner_murmur2(nil, key?.baseAddress, key?.count ?? 0, partitionCount, nil, nil)
    }
}
