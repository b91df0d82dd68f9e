/// What a lag report means beyond its numbers: the sentence that names it and sums it up (in
/// `evt lag`'s messages and the --stats lines of subscribe and copies), whether it is beyond
/// `evt lag`'s limits, and whether every group asked about was found.
extension LagReport {
    /// `group billing of topic orders`, for messages.
    var subject: String {
        (group.map { "group \($0) of " } ?? "") + "\(kind) \(name)"
    }

    /// `lag 1200 events, the oldest 3.4s old`, for the --stats lines of long-running commands.
    var summary: String {
        var text = "lag \(lagExact ? "" : "over ")\(lag) event\(lag == 1 ? "" : "s")"
        if let oldest = lagMs { text += ", the oldest \(LagReport.readableAge(oldest)) old" }
        if let pending { text += ", \(pending) pending" }
        return text
    }

    /// `950ms`, `5.4s`, `2m03s`, `3h07m`, `2d04h`.
    static func readableAge(_ milliseconds: Int64) -> String {
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        let seconds = milliseconds / 1000
        if seconds < 60 { return seconds < 10 ? "\(seconds).\(milliseconds % 1000 / 100)s" : "\(seconds)s" }
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : String(value) }
        if seconds < 3600 { return "\(seconds / 60)m\(two(seconds % 60))s" }
        if seconds < 86_400 { return "\(seconds / 3600)h\(two(seconds % 3600 / 60))m" }
        return "\(seconds / 86_400)d\(two(seconds % 86_400 / 3600))h"
    }
}

/// `--max-lag N` and `--max-lag-age DURATION`: beyond either, `evt lag` exits 4.
struct LagLimits {
    var maxLag: Int?
    var maxAgeMs: Int?

    /// Why `report` is beyond the limits, one sentence per limit passed; empty when it is
    /// within them. A dead-letter depth has no limit.
    func breaches(of report: LagReport) -> [String] {
        guard !report.deadLetter else { return [] }
        var reasons: [String] = []
        if let maxLag, report.lag > Int64(maxLag) {
            reasons.append("\(report.subject) is beyond --max-lag \(maxLag): \(report.lag) events to consume.")
        }
        if let maxAgeMs, let age = report.lagMs, age > Int64(maxAgeMs) {
            reasons.append("\(report.subject) is beyond --max-lag-age: its oldest unconsumed event is \(LagReport.readableAge(age)) old.")
        }
        return reasons
    }
}

extension LagQuery {
    /// Several sources with --group: a group that none of them has is an error; a stream or
    /// topic without one of the groups is named on stderr, once (a list has no groups).
    /// `reports` holds each source's reports, in the order of `sources`.
    func checkGroupsFound(sources: [Endpoint], reports: [[LagReport]], noted: inout Set<String>) throws {
        guard groupsWhereFound else { return }
        for group in groups where !reports.contains(where: { $0.contains { $0.group == group } }) {
            throw EvtError(.refused(code: "NOGROUP"), "none of the sources has group \(group): a stream has it when XINFO GROUPS lists it, a topic when the group committed offsets on it. Check the name, or create it with evt group-create SOURCE \(Shell.quoted(group)).")
        }
        for (source, found) in zip(sources, reports) {
            if case .redis(_, .list, _) = source { continue }
            let missing = groups.filter { group in !found.contains { $0.group == group } }
            guard !missing.isEmpty, noted.insert("\(source.description) \(missing)").inserted else { continue }
            Diagnostics.print("\(source.description) has no group \(missing.joined(separator: " or ")); each group is shown for the sources that have it.")
        }
    }
}
