#if canImport(Glibc)
import Glibc
#endif

/// One progress line on stderr for a long run, only when stderr is a terminal: events done,
/// the rate, and where known the share of the input read. It appears once the run has taken
/// half a second (and passed `minimumEvents`), is redrawn in place at most ten times a
/// second, and is cleared before any other message (Diagnostics.print) and at the end, so
/// the final summary stands on a line of its own. Nothing of it reaches a pipe or a file.
final class ProgressLine {
    /// The line on the terminal now, which Diagnostics clears before it writes.
    nonisolated(unsafe) static var visible: ProgressLine?

    private let verb: String
    private let enabled: Bool
    private let minimumEvents: Int
    /// The share of the input read so far (0…1), for publish from files.
    var share: (() -> Double?)?
    private let started = monotonicMilliseconds()
    private var count = 0
    private var nextCheck = 256
    private var lastDrawn = 0

    /// `verb`: what the events were ("published", "replayed", "copied", "read").
    /// `when`: false turns it off (e.g. stdout is that same terminal).
    init(verb: String, minimumEvents: Int = 0, when condition: Bool = true) {
        self.verb = verb
        self.minimumEvents = minimumEvents
        enabled = condition && isatty(2) != 0
    }

    /// Whether it can show at all (stderr is a terminal, and the caller wants it).
    var isOn: Bool { enabled }

    /// One more event done: a counter and, every 256 events, a look at the clock.
    @inline(__always)
    func advance() {
        count += 1
        if count >= nextCheck { check() }
    }

    private func check() {
        nextCheck = count + 256
        guard enabled, count >= minimumEvents else { return }
        let now = monotonicMilliseconds()
        guard now - started >= 500, now - lastDrawn >= 100 else { return }
        lastDrawn = now
        let rate = Double(count) * 1000 / Double(max(now - started, 1))
        var text = "\r\u{1b}[Kevt: \(verb) \(count) events, \(ProgressLine.rounded(rate))/s"
        if let share = share?() { text += ", \(Int(share * 100))% of the input" }
        _ = writeAll(2, text)
        ProgressLine.visible = self
    }

    /// Takes the line off the terminal (until the next redraw).
    func clear() {
        guard ProgressLine.visible === self else { return }
        _ = writeAll(2, "\r\u{1b}[K")
        ProgressLine.visible = nil
    }

    /// `412k`, `1.2M`: short enough to redraw ten times a second without flicker.
    static func rounded(_ value: Double) -> String {
        if value >= 1_000_000 {
            let tenths = Int(value / 100_000)
            return "\(tenths / 10).\(tenths % 10)M"
        }
        if value >= 1000 { return "\(Int(value / 1000))k" }
        return "\(Int(value))"
    }
}
