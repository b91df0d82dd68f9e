import Testing
@testable import EvtCore

@Suite("The Redis sink's queues: lines in flight and the bytes of unanswered commands")
struct SinkQueueTests {
    @Test("LineQueue gives lines back first in, first out, across reuse and compaction")
    func lineQueue() {
        var queue = LineQueue()
        #expect(queue.count == 0 && queue.popFirst() == nil)
        for line in 1...3 { queue.append(line) }
        #expect(queue.popFirst() == 1 && queue.count == 2)
        queue.append(4)
        #expect([queue.popFirst(), queue.popFirst(), queue.popFirst()] == [2, 3, 4])
        #expect(queue.count == 0 && queue.popFirst() == nil)

        // Never empty, long enough for the front to be dropped while lines are still queued.
        var next = 1, expected = 1, inOrder = true
        for _ in 0..<200_000 {
            queue.append(next); next += 1
            queue.append(next); next += 1
            inOrder = inOrder && queue.popFirst() == expected
            expected += 1
        }
        #expect(inOrder && queue.count == 200_000)
        while let line = queue.popFirst() {
            if line != expected { Issue.record("got \(line), expected \(expected)"); break }
            expected += 1
        }
        #expect(expected == next && queue.count == 0)
    }

    private static func command(_ words: [String]) -> [UInt8] {
        var buffer = RespCommandBuffer(capacity: 0)
        buffer.command(words)
        return buffer.bytes
    }

    /// A lane's queue: commands queued, sent in one write, answered one by one.
    private struct Lane {
        var outgoing = RespCommandBuffer(capacity: 0)
        var sent = SentCommands()
        var queued: [[UInt8]] = []

        mutating func queue(_ words: [String]) {
            outgoing.command(words)
            sent.noteCommand(queuedBytes: outgoing.bytes.count)
            queued.append(SinkQueueTests.command(words))
        }

        mutating func send() {
            sent.willSend(outgoing)
            outgoing = RespCommandBuffer(capacity: 0)
        }

        /// The bytes of the oldest unanswered command, as SentCommands gives them back.
        mutating func answer() -> [UInt8] {
            Array(sent.bytes(of: sent.answered()))
        }
    }

    @Test("SentCommands gives back each answered command's exact bytes, in order, across writes")
    func sentCommandsInOrder() {
        var lane = Lane()
        lane.queue(["XADD", "s", "*", "n", "1"])
        lane.queue(["XADD", "s", "*", "n", "22"])
        lane.send()
        #expect(lane.answer() == lane.queued[0])
        // A command queued while older ones wait for their answers.
        lane.queue(["LPUSH", "q", "three"])
        #expect(lane.answer() == lane.queued[1])
        lane.send()
        #expect(lane.answer() == lane.queued[2])

        // After a lost connection nothing is kept; what follows starts afresh.
        lane.queue(["XADD", "s", "*", "n", "4"])
        lane.send()
        lane.sent.removeAll()
        lane.queue(["XADD", "s", "*", "n", "5"])
        lane.send()
        #expect(lane.answer() == lane.queued[4])
    }

    @Test("SentCommands keeps the bytes right when it drops the answered front of a long pipeline")
    func sentCommandsCompaction() {
        var lane = Lane()
        let big = String(repeating: "x", count: 100_000)
        var answered = 0
        // Always a few unanswered, so the front is dropped while the buffer is not empty.
        for round in 0..<60 {
            lane.queue(["XADD", "s", "*", "n", "\(round)", "v", big])
            lane.queue(["PUBLISH", "c", "\(round)"])
            lane.send()
            for _ in 0..<(round % 3 == 2 ? 3 : 1) where answered < lane.queued.count - 2 {
                #expect(lane.answer() == lane.queued[answered], "command \(answered)")
                answered += 1
            }
        }
        while answered < lane.queued.count {
            #expect(lane.answer() == lane.queued[answered], "command \(answered)")
            answered += 1
        }
    }
}
