import Testing
@testable import EvtCore

@Suite("StreamID: parsing and order of stream entry ids")
struct StreamIDTests {
    @Test("MS-SEQ parses; anything else does not", arguments: [
        ("0-0", StreamID(milliseconds: 0, sequence: 0)),
        ("1763812345123-7", StreamID(milliseconds: 1_763_812_345_123, sequence: 7)),
        ("18446744073709551615-18446744073709551615", StreamID(milliseconds: .max, sequence: .max)),
    ])
    func parses(_ text: String, _ expected: StreamID) {
        #expect(StreamID(text) == expected)
    }

    @Test("malformed ids are refused", arguments: ["", "5", "-1", "1-", "1--2", "1-2-3", "a-1", "18446744073709551616-0", " 1-1"])
    func refuses(_ text: String) {
        #expect(StreamID(text) == nil)
    }

    @Test("ordered as Redis orders them: milliseconds, then sequence")
    func order() {
        #expect(StreamID("1-9")! < StreamID("2-0")!)
        #expect(StreamID("2-1")! < StreamID("2-10")!)
        #expect(!(StreamID("3-0")! < StreamID("3-0")!))
    }
}
