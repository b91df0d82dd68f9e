import Testing
@testable import EvtCore

@Suite("A stream target's batches: how Redis's answers settle the confirmed position")
struct StreamTargetSettlingTests {
    private static func at(_ offset: Int64) -> SourcePosition { SourcePosition(offsets: [0: offset]) }

    @Test("each batch gets the next token; an answer settles its batch and every older one, never a newer one")
    func settlesInOrder() {
        var batches = UnconfirmedBatches()
        let first = batches.sent(endingAt: Self.at(10))
        let second = batches.sent(endingAt: Self.at(20))
        let third = batches.sent(endingAt: Self.at(30))
        #expect(first < second && second < third)
        // No answer yet, or none newer than what settled already: nothing moves.
        #expect(batches.settle(confirmedToken: nil) == nil)
        #expect(batches.settle(confirmedToken: first - 1) == nil)
        #expect(batches.settle(confirmedToken: first) == Self.at(10))
        #expect(batches.settle(confirmedToken: first) == nil)
        // Two batches answered between two looks: the newer one's position.
        #expect(batches.settle(confirmedToken: third) == Self.at(30))
        #expect(batches.settle(confirmedToken: third) == nil)
        // Tokens go on after a settle: a batch sent later is never settled by an older answer.
        let fourth = batches.sent(endingAt: Self.at(40))
        #expect(fourth > third && batches.settle(confirmedToken: third) == nil)
        #expect(batches.settle(confirmedToken: fourth) == Self.at(40))
    }

    @Test("a refused batch's token never comes, so nothing after it settles")
    func nothingPastARefusedBatch() {
        var batches = UnconfirmedBatches()
        let first = batches.sent(endingAt: Self.at(5))
        _ = batches.sent(endingAt: Self.at(9))     // refused: Redis never confirms it
        _ = batches.sent(endingAt: Self.at(12))
        // The target stops confirming at the last batch applied (StreamBatchWriter.settle).
        #expect(batches.settle(confirmedToken: first) == Self.at(5))
        #expect(batches.settle(confirmedToken: first) == nil)
    }
}
