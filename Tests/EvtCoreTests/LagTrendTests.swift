import Testing
@testable import EvtCore

@Suite("LagTrend: rates, catch-up time and status over a window of lag reads")
struct LagTrendTests {
    /// A window of `capacity` filled with reads one second apart: (lag, position, produced).
    static func window(_ reads: [(Int64, Int64?, Int64?)], capacity: Int? = nil) -> LagWindow {
        var window = LagWindow(capacity: capacity ?? reads.count)
        for (index, read) in reads.enumerated() {
            window.add(LagSample(atMs: 10_000 + index * 1000, lag: read.0, position: read.1, produced: read.2))
        }
        return window
    }

    @Test("every field is null until the window is full, then rates are events per second over it")
    func ratesOnceFull() {
        var window = LagWindow(capacity: 3)
        window.add(LagSample(atMs: 1000, lag: 10, position: 0, produced: 10))
        #expect(window.trend == .unknown)
        window.add(LagSample(atMs: 1500, lag: 15, position: 5, produced: 20))
        #expect(window.trend == .unknown)
        window.add(LagSample(atMs: 3000, lag: 20, position: 10, produced: 30))
        let trend = window.trend
        #expect(trend.consumeRate == 5 && trend.produceRate == 10)
        #expect(trend.status == .fallingBehind && trend.catchUpSeconds == nil)
        // The oldest read leaves: the window is the last 3 reads.
        window.add(LagSample(atMs: 4000, lag: 20, position: 20, produced: 40))
        #expect(window.samples.map(\.atMs) == [1500, 3000, 4000])
        #expect(window.trend.consumeRate == 15.0 / 2.5 && window.trend.produceRate == 20.0 / 2.5)
        #expect(window.trend.status == .ok, "the lag stopped growing")
    }

    @Test("stalled: the position stands while the lag is above 0 at every read, whatever the producers do")
    func stalled() {
        #expect(Self.window([(5, 100, 105), (5, 100, 105), (5, 100, 105)]).trend.status == .stalled)
        #expect(Self.window([(5, 100, 105), (9, 100, 109), (14, 100, 114)]).trend.status == .stalled,
                "growing lag without progress is stalled, not falling behind")
        #expect(Self.window([(0, 100, 100), (0, 100, 100), (0, 100, 100)]).trend.status == .ok, "an idle group with nothing to read")
        #expect(Self.window([(0, 100, 100), (3, 100, 103), (3, 100, 103)]).trend.status == .ok,
                "lag 0 at the first read: not stalled during the whole window")
        let stalled = Self.window([(5, 100, 105), (5, 100, 105), (5, 100, 105)]).trend
        #expect(stalled.consumeRate == 0 && stalled.produceRate == 0 && stalled.catchUpSeconds == nil)
    }

    @Test("falling_behind: the lag grows from each read to the next while the position moves")
    func fallingBehind() {
        #expect(Self.window([(10, 0, 10), (12, 2, 14), (14, 4, 18), (16, 6, 22)]).trend.status == .fallingBehind)
        #expect(Self.window([(10, 0, 10), (12, 2, 14), (12, 4, 16), (16, 6, 22)]).trend.status == .ok,
                "one read where the lag did not grow")
        #expect(Self.window([(10, 0, 10), (12, 0, 12), (14, 0, 14)]).trend.status == .stalled)
        #expect(Self.window([(10, 0, 10), (12, 0, 12), (14, 3, 17)]).trend.status == .fallingBehind,
                "the position moved during the window")
    }

    @Test("catch_up_seconds: the lag over the net rate at which it shrinks, only while it shrinks")
    func catchUp() {
        let shrinking = Self.window([(100, 0, 100), (80, 30, 110), (60, 60, 120)]).trend
        #expect(shrinking.consumeRate == 30 && shrinking.produceRate == 10)
        #expect(shrinking.catchUpSeconds == 3, "60 events at 20/s net")
        #expect(shrinking.status == .ok)
        #expect(Self.window([(50, 0, 50), (50, 10, 60), (50, 20, 70)]).trend.catchUpSeconds == nil, "not shrinking")
        #expect(Self.window([(10, 0, 10), (0, 10, 10), (0, 10, 10)]).trend.catchUpSeconds == nil, "caught up")
    }

    @Test("a group moved back does not consume less than nothing; an unknown position leaves every field null")
    func movedBackAndUnknown() {
        let reset = Self.window([(0, 50, 50), (50, 0, 50), (40, 10, 50)]).trend
        #expect(reset.consumeRate == 5 && reset.produceRate == 0)
        #expect(Self.window([(12, nil, nil), (12, nil, nil), (12, nil, nil)]).trend == .unknown, "a list")
        #expect(Self.window([(12, 1, 13), (12, nil, nil), (12, 1, 13)]).trend == .unknown)
    }

    @Test("LagTrends keeps one window per source and group; a group gone or a source that failed starts again")
    func perGroup() {
        var trends = LagTrends(window: 2)
        func report(_ group: String, _ lag: Int64, _ position: Int64) -> LagReport {
            var report = LagReport(kind: "stream", name: "orders", group: group, lag: lag)
            report.position = position
            report.produced = position + lag
            return report
        }
        #expect(trends.record(source: 0, [report("a", 5, 0), report("b", 5, 0)], atMs: 0) == [.unknown, .unknown])
        let second = trends.record(source: 0, [report("a", 5, 0), report("b", 0, 10)], atMs: 1000)
        #expect(second.map(\.status) == [.stalled, .ok])
        #expect(second[1].consumeRate == 10 && second[1].produceRate == 5)
        // The same names on another source have windows of their own.
        #expect(trends.record(source: 1, [report("a", 5, 0)], atMs: 1000) == [.unknown])
        // b is gone from source 0, then back: its window starts again.
        _ = trends.record(source: 0, [report("a", 5, 0)], atMs: 2000)
        #expect(trends.record(source: 0, [report("a", 5, 0), report("b", 0, 10)], atMs: 3000).map(\.status) == [.stalled, nil])
        trends.forget(source: 0)
        #expect(trends.record(source: 0, [report("a", 5, 0)], atMs: 4000) == [.unknown])
        #expect(trends.record(source: 1, [report("a", 5, 0)], atMs: 4000)[0].status == .stalled, "source 1 kept its window")
    }

    @Test("--fail-on takes a comma list of statuses and names a group in one of them")
    func failOn() throws {
        let limits = try LagStatusLimits.parse("stalled,falling_behind")
        #expect(limits.statuses == [.stalled, .fallingBehind])
        #expect(throws: EvtError.self) { try LagStatusLimits.parse("stalled,late") }
        #expect(throws: EvtError.self) { try LagStatusLimits.parse("stalled,") }
        var report = LagReport(kind: "topic", name: "orders", group: "billing", lag: 40)
        report.position = 0
        let stalled = LagTrend(status: .stalled, consumeRate: 0, produceRate: 2.5)
        #expect(limits.breach(of: report, stalled) == "group billing of topic orders is stalled (--fail-on): lag 40 events, consuming 0/s, produced 2.5/s.")
        #expect(limits.breach(of: report, LagTrend(status: .ok, consumeRate: 1, produceRate: 1)) == nil)
        #expect(limits.breach(of: report, .unknown) == nil, "no status before the window is full")
    }

    @Test("rates print with at most 3 decimals and no exponent", arguments: [
        (0.0, "0"), (40.0, "40"), (12.5, "12.5"), (1.0 / 3, "0.333"), (2.0 / 3, "0.667"), (1e-5, "0"), (123456789.25, "123456789.25"),
    ])
    func rateText(_ value: Double, _ text: String) {
        #expect(LagTrend.rate(value) == text)
    }
}
