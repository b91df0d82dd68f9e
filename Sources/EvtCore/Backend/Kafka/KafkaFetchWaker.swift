#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

/// librdkafka 2.0.2's fetcher stops asking for a partition once the consumer queue holds
/// `queued.max.messages.kbytes` (or `queued.min.messages`), and only looks again when its
/// broker thread wakes up — on network traffic, on a request to send, or after a second of
/// nothing. Draining the queue does not wake it, so a reader faster than the cap but slower
/// than the fetcher (any deep topic) idled up to a second per refill. The waker watches the
/// queue as batches are taken: once it has been near the cap and is back under half of it,
/// it sends a ListOffsets request to each partition leader of the assignment without waiting
/// for the answers (late answers are dropped by librdkafka), which wakes those broker threads
/// and they fetch again at once. Memory stays bounded by the cap; the stall is gone.
final class KafkaFetchWaker {
    /// The prefetch settings of every evt consumer (tail, subscribe, replay, copy-between).
    static let prefetchProperties: [(String, String)] = [
        // A small queue, kept full by the waker: 4 MB (librdkafka's default is 64 MiB per
        // consumer). A bigger one was no faster on the mock cluster, only bigger (16 MB:
        // ~60 MiB RSS for a 16-partition read, 4 MB: ~30 MiB, same time).
        ("queued.max.messages.kbytes", "4096"),
        // The count limit (100 000 by default) must not stop the fetcher before the bytes do.
        ("queued.min.messages", "1000000"),
        ("fetch.wait.max.ms", "100"),
        // One fetch response is buffered whole: librdkafka's 50 MiB default would be most
        // of evt's memory. 8 MiB keeps the pipe full and RSS flat.
        ("fetch.max.bytes", "8388608"),
    ]

    private let client: KafkaClient
    private let queue: OpaquePointer
    private let maxBytes: Double
    private let maxMessages: Double
    /// Key plus value bytes a message (what librdkafka counts against the cap), averaged.
    private var averageSize = 0.0
    private var nearCap = false

    init(_ client: KafkaClient) {
        self.client = client
        self.queue = client.queue
        // librdkafka counts the kbytes as 1000 bytes each.
        maxBytes = Double(client.setting("queued.max.messages.kbytes").flatMap { Int($0) } ?? 65536) * 1000
        maxMessages = Double(client.setting("queued.min.messages").flatMap { Int($0) } ?? 100_000)
    }

    /// After a batch was taken from the queue (before its messages are destroyed).
    func taken(_ batch: [UnsafeMutablePointer<rd_kafka_message_t>?], count: Int) {
        var bytes = 0
        for index in 0..<count {
            let message = batch[index]!.pointee
            bytes += message.len + message.key_len
        }
        let size = Double(bytes) / Double(max(count, 1))
        averageSize = averageSize == 0 ? size : averageSize * 0.75 + size * 0.25
        // The fetcher stops right after adding a fetch response that takes the queue past the
        // cap, so the queue as it was before this batch tells whether it may have stopped.
        let left = Double(rd_kafka_queue_length(queue))
        let before = left + Double(count)
        if before * averageSize >= maxBytes * 0.75 || before >= maxMessages * 0.75 { nearCap = true }
        if nearCap && left * averageSize < maxBytes * 0.5 && left < maxMessages * 0.5 {
            nearCap = false
            wake()
        }
    }

    /// A ListOffsets request (latest) for each leader of the assigned partitions, not waited for.
    func wake() {
        guard let list = KafkaPartitionList(assignmentOf: client.handle), !list.isEmpty else { return }
        for index in list.indices { list.setOffset(-1, at: index) }
        _ = list.withListPointer { rd_kafka_offsets_for_times(client.handle, $0, 0) }
    }
}
