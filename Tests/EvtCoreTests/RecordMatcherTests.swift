import Testing
@testable import EvtCore

@Suite("--match")
struct RecordMatcherTests {
    func matches(_ words: [String], _ record: String) throws -> Bool {
        let matcher = try RecordMatcher(words, usage: nil)
        var line = Array((record + "\n").utf8)
        return line.withUnsafeMutableBytes { matcher.matches(UnsafeRawBufferPointer($0)) }
    }

    let kafka = #"{"topic":"t","partition":0,"offset":1,"timestamp":1,"key":"user-17","headers":{"src":"web","tag":["a","b"]},"value":{"type":"signup","user":{"id":7},"ok":true}}"#
    let stream = #"{"stream":"s","id":"1-0","value":{"type":"signup","user":"{\"id\":7}","n":"5"}}"#

    @Test("key and header globs, a repeated header's values, value paths into objects and into a field's JSON")
    func conditions() throws {
        #expect(try matches(["key=user-1*"], kafka))
        #expect(try !matches(["key=user-2*"], kafka))
        #expect(try matches(["header.src=w?b"], kafka))
        #expect(try matches(["header.tag=b"], kafka))
        #expect(try !matches(["header.missing=*"], kafka))
        #expect(try matches(["value.type=signup"], kafka))
        #expect(try matches(["value.user.id=7"], kafka))
        #expect(try matches(["value.ok=true"], kafka))
        #expect(try !matches(["value.user.id=8"], kafka))
        #expect(try matches(["value.type=signup", "value.n=5", "value.user.id=7"], stream))
        #expect(try !matches(["key=*"], stream), "a stream entry has no key")
        #expect(try !matches(["value.type=signup", "value.n=6"], stream), "all must hold")
        #expect(try matches(["key=[uv]ser-17"], kafka))
    }

    @Test("a condition that is not FIELD=PATTERN of a known field is a usage error")
    func usage() {
        for word in ["key", "partition=1", "header.=x", "value..a=1", "nokey"] {
            #expect(throws: EvtError.self, "\(word)") { _ = try RecordMatcher([word], usage: nil) }
        }
    }
}
