import Testing
@testable import EvtCore

@Suite("position grammar")
struct PositionTests {
    /// 2026-12-02T12:00:00Z.
    let now: Int64 = 1_796_212_800_000

    func parse(_ text: String) throws -> Position { try Position.parse(text, option: "--from", now: now) }

    func usageMessage(_ text: String) -> String? {
        do {
            _ = try parse(text)
            return nil
        } catch let error as EvtError where error.cause == .usage {
            return error.message
        } catch {
            return nil
        }
    }

    @Test("the fixed forms: names, offsets, stream ids, -N, @MS and @ISO-8601")
    func fixedForms() throws {
        #expect(try parse("beginning") == .beginning && (try parse("earliest")) == .beginning)
        #expect(try parse("end") == .end && (try parse("$")) == .end)
        #expect(try parse("1200") == .offset(1200))
        #expect(try parse("1763812345123-7") == .streamID("1763812345123-7"))
        #expect(try parse("-100") == .fromEnd(100))
        #expect(try parse("@1763812345123") == .time(1_763_812_345_123))
        #expect(try parse("@2026-12-02T12:00:00Z") == .time(now))
        #expect(try parse("@2026-12-02T13:00:00.250+01:00") == .time(now + 250))
        #expect(try parse("@2026-12-02") == .time(now - 12 * 3_600_000))
    }

    @Test("times relative to now: @-10m, @-2h, @+5s, @-1d, @-250ms; never before the epoch")
    func relativeTimes() throws {
        #expect(try parse("@-10m") == .time(now - 600_000))
        #expect(try parse("@-2h") == .time(now - 7_200_000))
        #expect(try parse("@+5s") == .time(now + 5000))
        #expect(try parse("@-1d") == .time(now - 86_400_000))
        #expect(try parse("@-250ms") == .time(now - 250))
        #expect(try parse("@-0s") == .time(now))
        #expect(try parse("@-100000d") == .time(0))
    }

    @Test("a relative time without a unit, with an unknown unit or no number says what is expected")
    func badRelativeTimes() {
        for text in ["@-10", "@-10y", "@-", "@+m", "@--5s", "@-5 s"] {
            let message = usageMessage(text)
            #expect(message?.contains("--from \(text): expected a time relative to now such as @-10m") == true, "\(text): \(message ?? "accepted")")
        }
        #expect(usageMessage("@yesterday")?.contains("@-10m") == true)
    }

    @Test("durations take d too, and still refuse a bare number")
    func durations() throws {
        #expect(try DurationParser.milliseconds("2d", option: "--x") == 172_800_000)
        #expect(throws: EvtError.self) { try DurationParser.milliseconds("30", option: "--x") }
    }
}
