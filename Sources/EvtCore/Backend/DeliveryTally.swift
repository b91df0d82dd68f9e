/// What became of each input line sent to a target: acknowledged, failed (with the server's
/// reason), or unconfirmed (sent, but the connection died before the answer).
final class DeliveryTally {
    private(set) var delivered = 0
    private(set) var failedLines: [(line: Int, reason: Int)] = []
    private(set) var unconfirmedLines: [Int] = []
    /// How many of `unconfirmedLines` a stop signal cut short (their answers were given up on).
    private var unconfirmedByStop = 0
    private var reasons: [String] = []
    /// Why each reason happened, by the index of the reason.
    private var causes: [FailureCause] = []
    private var reasonIndex: [String: Int] = [:]
    /// Set when the target stopped answering within the timeout: reading more input is
    /// pointless, every further event would wait out the timeout too.
    var targetUnavailable: String?

    /// True only when every one of the `sent` events was acknowledged: an event with no
    /// report at all (a sink that gave up waiting) counts against it too.
    func allDelivered(sent: Int) -> Bool {
        failedLines.isEmpty && unconfirmedLines.isEmpty && delivered == sent
    }

    func delivered(count: Int = 1) { delivered += count }

    func failed(line: Int, reason: String, cause: FailureCause) {
        let index: Int
        if let known = reasonIndex[reason] {
            index = known
        } else {
            index = reasons.count
            reasons.append(reason)
            causes.append(cause)
            reasonIndex[reason] = index
        }
        failedLines.append((line, index))
    }

    /// `byStop`: the answer was given up on because of a stop signal, not a failed connection.
    func unconfirmed(line: Int, byStop: Bool = false) {
        unconfirmedLines.append(line)
        if byStop { unconfirmedByStop += 1 }
    }

    /// True after a stop signal that explains every event that was not acknowledged: each
    /// failure's cause is `.stopped`, each unconfirmed one was cut short by the stop (events
    /// with no report at all were given up on because of it). Such a run ends with 130/143,
    /// not 1; the account of what was not delivered is printed all the same.
    var onlyStoppedTrouble: Bool {
        guard Signals.stopRequested else { return false }
        return unconfirmedLines.count == unconfirmedByStop
            && Set(failedLines.map(\.reason)).allSatisfy { causes[$0] == .stopped }
    }

    /// True when something went wrong and all of it may go right on a retry: a lost
    /// connection (events unconfirmed or not sent) or "not now" answers.
    var onlyRetriableTrouble: Bool {
        guard !failedLines.isEmpty || !unconfirmedLines.isEmpty else { return false }
        return Set(failedLines.map(\.reason)).allSatisfy { causes[$0].isRetriable }
    }

    /// Why not every event was delivered, as one cause: a stop signal's (exit 130/143), a lost
    /// connection when all of it may go right on a retry, else refused.
    var cause: FailureCause {
        onlyStoppedTrouble ? .stopped : onlyRetriableTrouble ? .connectionLost : .refused(code: "")
    }

    /// stderr lines: which lines were not delivered (grouped by reason) and which are unconfirmed.
    /// `unit`: what the numbers count ("line" of input; "replayed event" for a replay).
    func summary(sent: Int, unit: String = "line") -> [String] {
        var messages: [String] = []
        if !failedLines.isEmpty {
            messages.append("\(failedLines.count) of \(sent) events not delivered:")
            for (index, reason) in reasons.enumerated() {
                let lines = failedLines.filter { $0.reason == index }.map(\.line)
                messages.append("  \(DeliveryTally.describe(lines, unit: unit)): \(reason)")
            }
        }
        let unreported = sent - delivered - failedLines.count - unconfirmedLines.count
        if unreported > 0 {
            messages.append("\(unreported) of \(sent) events got no answer before evt stopped waiting: they may or may not be stored.")
        }
        if !unconfirmedLines.isEmpty {
            let why = unconfirmedByStop == unconfirmedLines.count
                ? "sent, but evt stopped waiting for the answer at the stop signal"
                : "sent, but the connection was lost before the answer"
            messages.append("\(unconfirmedLines.count) of \(sent) events unconfirmed (\(why); they may be stored): \(DeliveryTally.describe(unconfirmedLines, unit: unit))")
        }
        return messages
    }

    /// `line 7`, `lines 17-19, 25`.
    static func describe(_ lines: [Int], unit: String = "line") -> String {
        let sorted = lines.sorted()
        var ranges: [String] = []
        var index = 0
        while index < sorted.count {
            let start = sorted[index]
            var end = start
            while index + 1 < sorted.count && sorted[index + 1] <= end + 1 {
                index += 1
                end = sorted[index]
            }
            ranges.append(start == end ? "\(start)" : "\(start)-\(end)")
            index += 1
        }
        return (sorted.count == 1 ? "\(unit) " : "\(unit)s ") + ranges.joined(separator: ", ")
    }
}
