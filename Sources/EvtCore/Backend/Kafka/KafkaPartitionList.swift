#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

/// One `rd_kafka_topic_partition_list_t` that evt owns: made in `init`, destroyed in `deinit`,
/// so no caller pairs `rd_kafka_topic_partition_list_new` with `_destroy`. Built per
/// assignment, commit or lookup (never per record). librdkafka calls take it through
/// `withListPointer`; a list librdkafka only lends (the rebalance callback's `partitions`) is
/// not one of these: read it through `lentElements`, it is librdkafka's to destroy.
final class KafkaPartitionList: RandomAccessCollection {
    /// One element as Swift values, read from the list when asked for.
    struct Element {
        let topic: String
        let partition: Int32
        let offset: Int64
        let err: rd_kafka_resp_err_t
        /// The metadata committed with the offset (rd_kafka_committed), if any.
        let metadata: String?
    }

    private let list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    /// An empty list with room for `capacity` elements (it grows past that when needed).
    init(capacity: Int) {
        list = rd_kafka_topic_partition_list_new(Int32(clamping: Swift.max(capacity, 0)))!
    }

    /// The consumer's current assignment (`rd_kafka_assignment`: a copy that is ours to
    /// destroy); nil when librdkafka cannot tell.
    init?(assignmentOf consumer: OpaquePointer) {
        var assignment: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(consumer, &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR, let assignment else {
            return nil
        }
        list = assignment
    }

    deinit { rd_kafka_topic_partition_list_destroy(list) }

    /// Appends `topic`/`partition`; without an `offset`, librdkafka's default (INVALID: the
    /// committed offset, or auto.offset.reset, where an offset is read from it). `metadata`
    /// goes with a commit of the offset.
    func add(_ topic: String, _ partition: Int32, offset: Int64? = nil, metadata: String? = nil) {
        let element = rd_kafka_topic_partition_list_add(list, topic, partition)!
        if let offset { element.pointee.offset = offset }
        if let metadata {
            // librdkafka frees it with the list.
            let bytes = Array(metadata.utf8)
            let copy = malloc(Swift.max(bytes.count, 1))!
            if !bytes.isEmpty { bytes.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) } }
            element.pointee.metadata = copy
            element.pointee.metadata_size = bytes.count
        }
    }

    var startIndex: Int { 0 }
    var endIndex: Int { Int(list.pointee.cnt) }

    subscript(index: Int) -> Element {
        precondition(indices.contains(index), "KafkaPartitionList index out of range")
        let element = list.pointee.elems[index]
        let metadata = element.metadata.map {
            String(decoding: UnsafeRawBufferPointer(start: $0, count: element.metadata_size), as: UTF8.self)
        }
        return Element(topic: String(cString: element.topic), partition: element.partition,
                       offset: element.offset, err: element.err, metadata: metadata)
    }

    func setOffset(_ offset: Int64, at index: Int) {
        precondition(indices.contains(index), "KafkaPartitionList index out of range")
        list.pointee.elems[index].offset = offset
    }

    func setError(_ err: rd_kafka_resp_err_t, at index: Int) {
        precondition(indices.contains(index), "KafkaPartitionList index out of range")
        list.pointee.elems[index].err = err
    }

    /// The raw list for one librdkafka call (`rd_kafka_assign`, `_commit`, `_committed`,
    /// `_position`, `_offsets_store`, `_offsets_for_times`, `_subscribe`, …). librdkafka may
    /// fill in offsets and errors; the pointer must not be kept past `body`.
    func withListPointer<Result>(_ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) throws -> Result) rethrows -> Result {
        try withExtendedLifetime(self) { try body(list) }
    }

    /// The elements of a list librdkafka lends to a callback, to read and set in place for
    /// the length of the callback. Not owned: librdkafka destroys it.
    static func lentElements(_ lent: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>)
        -> UnsafeMutableBufferPointer<rd_kafka_topic_partition_t> {
        UnsafeMutableBufferPointer(start: lent.pointee.elems, count: Int(lent.pointee.cnt))
    }
}
