#if canImport(Glibc)
import Glibc
#endif

/// How a copy holds its checkpoint, the same for every store (CheckpointStore): a lease that
/// the running copy renews. `claim` takes a checkpoint only when nobody holds it, its holder's
/// lease ran out (a killed copy), or this run holds it already; a second copy on a checkpoint
/// in use refuses to start. A holder that was a process on this machine (the same boot and
/// PID namespace) and is gone (killed) is known dead at once: its checkpoint is taken over
/// without waiting for its lease. A Redis checkpoint keeps its holder and the lease's end in
/// its hash; a Kafka one is held as the membership of its consumer group, whose session
/// timeout is the lease.
enum CheckpointLease {
    /// How long a checkpoint stays held after its copy last renewed it: a killed copy's
    /// checkpoint is free again this long after it died.
    static let durationMs = 10_000
    /// How often a running copy renews its lease (also while it has nothing to copy).
    static let renewEveryMs = 3_000

    /// This run among all copies: random, for names that must be unique per run.
    static let runID = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    /// This run, as a checkpoint records its holder and messages name it: unique per run.
    static let owner = "evt pid \(getpid()) on \(ProcessIdentity.hostName), run \(runID)"

    /// This process, so that another evt on this machine can tell whether it still runs:
    /// `BOOT-ID/PID-NAMESPACE/PID/START-TIME` (its start in clock ticks after boot).
    static let process: String = {
        let boot = readWholeFile("/proc/sys/kernel/random/boot_id").map { String($0.prefix { $0 != "\n" }) } ?? "?"
        return "\(boot)/\(pidNamespace())/\(getpid())/\(startTime(of: getpid()) ?? "?")"
    }()

    /// Whether the process a checkpoint names as its holder is known to be gone: it ran on
    /// this machine, in this PID namespace, and no such process runs now (a killed process
    /// not yet reaped by its parent counts as gone). False when it cannot be told.
    static func isGone(_ holder: String) -> Bool {
        let parts = holder.split(separator: "/", omittingEmptySubsequences: false)
        let mine = process.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4, mine.count == 4, parts[0] == mine[0], parts[1] == mine[1], parts[0] != "?", parts[1] != "?",
              let pid = Int32(parts[2]) else { return false }
        if kill(pid, 0) != 0 && errno == ESRCH { return true }
        guard let stat = readWholeFile("/proc/\(pid)/stat") else { return false }
        let fields = stat[(stat.lastIndex(of: ")").map { stat.index(after: $0) } ?? stat.startIndex)...].split(separator: " ")
        // After the command: state (field 3), …, start time (field 22).
        guard fields.count > 19 else { return false }
        return fields[0] == "Z" || fields[0] == "X" || fields[19] != parts[3]
    }

    private static func startTime(of pid: Int32) -> String? {
        guard let stat = readWholeFile("/proc/\(pid)/stat"), let end = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        return fields.count > 19 ? String(fields[19]) : nil
    }

    private static func pidNamespace() -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let length = readlink("/proc/self/ns/pid", &buffer, buffer.count - 1)
        guard length > 0 else { return "?" }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Another copy holds `checkpoint`: this one does not start.
    static func inUse(_ checkpoint: String, holder: String?, freeInMs: Int?) -> EvtError {
        let who = holder.map { "another copy (\($0))" } ?? "another copy"
        let lapse = freeInMs.map { "in \(max(1, ($0 + 999) / 1000)) s" } ?? "\(durationMs / 1000) s after it stopped"
        return EvtError(.claimed, "\(checkpoint) is in use by \(who); two copies on one checkpoint would store events twice, so this one does not start. Stop the other copy first, or choose another --checkpoint NAME. If that copy was killed, its lease runs out \(lapse), and a new run goes on from the checkpoint.")
    }

    /// Another copy took `checkpoint` over while this one ran (it could not renew its lease in
    /// time): this one stops writing.
    static func lost(_ checkpoint: String, holder: String?) -> EvtError {
        let who = holder.flatMap { $0.isEmpty ? nil : "another copy (\($0))" } ?? "another copy, or it was deleted,"
        return EvtError(.claimed, "\(checkpoint) was taken over by \(who) while this copy ran (its lease had run out: it was not renewed for \(durationMs / 1000) s); this copy stops writing.")
    }
}
