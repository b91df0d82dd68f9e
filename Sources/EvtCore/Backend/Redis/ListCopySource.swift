/// A list as the source of a copy. A list is a queue: its items are moved (LMOVE) into a
/// processing list, copied, and removed from there only once the target acknowledged them,
/// so a rerun copies what a crash left there first. Without -f the copy ends when the list
/// is empty.
final class ListCopySource: RecordSource {
    private let queue: RedisListQueue
    private let name: String
    /// Items of the last batch handed to the copy; the rest of it stays in the processing list.
    private var handedOver = 0

    init(server: RedisServerAddress, name: String, processingList: String, follow: Bool) throws {
        // On a cluster the processing list carries the list's hash tag: LMOVE needs one slot.
        // A bridge (-f) waits for Redis as long as it takes; a one-off copy a minute.
        queue = try RedisListQueue(server: server, name: name,
                                   processingList: try ClusterRouter.of(server).derivedKey(processingList, sharing: name),
                                   retryForMs: follow ? Int.max / 2 : 60_000)
        self.name = name
    }

    var identity: String { "list:" + name }
    var confirmsEveryBatch: Bool { true }

    func end() throws -> SourcePosition { SourcePosition() }

    func read(after start: SourcePosition, until end: SourcePosition?, into record: Record,
              idle: () throws -> Void, _ body: (Record) throws -> Void, batchEnded: () throws -> Void) throws {
        while !Signals.stopRequested {
            handedOver = 0
            let received = try queue.receive(limit: 1000, waitMs: end == nil ? 1000 : 0)
            if received == 0 {
                if end != nil { return }
                try idle()
                continue
            }
            try queue.handOver(received, as: record) { record in
                try body(record)
                handedOver += 1   // only these may leave the processing list once confirmed
            }
            try batchEnded()
        }
    }

    func confirmed() throws {
        guard handedOver > 0 else { return }
        try queue.acknowledge(Array(0..<handedOver))
        handedOver = 0
        try queue.close()   // waits for the LREM answers: then the items are gone for good
    }

    func lag(behind position: SourcePosition) -> String { "" }
}
