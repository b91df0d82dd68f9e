#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// SIGINT/SIGTERM only set a flag and wake any poll(2) through a pipe; loops notice, stop
/// cleanly (acknowledge nothing unwritten, flush producers) and return.
/// SIGPIPE is ignored: a closed stdout shows up as EPIPE, which is a clean stop.
public enum Signals {
    /// 0 while running, else the number of the signal that asked us to stop.
    static let received = Atomic<Int32>(0)
    /// When (monotonicMilliseconds) the first stop signal came.
    static let receivedAtMs = Atomic<Int>(0)
    /// How long, after a stop signal, evt still waits for answers to what it already sent
    /// (so that it can report them delivered), however long the server takes otherwise.
    public static let graceMs = 2000
    /// [read end, write end]; the read end is polled by blocking loops.
    nonisolated(unsafe) static var wakePipe: (Int32, Int32) = (-1, -1)

    public static var stopRequested: Bool { received.load(ordering: .relaxed) != 0 }
    public static var stopSignal: Int32 { received.load(ordering: .relaxed) }
    /// Milliseconds left of the grace after a stop signal; nil while no stop was asked for.
    static var graceLeftMs: Int? {
        guard stopRequested else { return nil }
        return max(0, receivedAtMs.load(ordering: .relaxed) + graceMs - monotonicMilliseconds())
    }
    /// File descriptor that becomes readable once a stop signal arrived.
    public static var wakeFD: Int32 { wakePipe.0 }

    /// Installs the handlers. Without SA_RESTART, so a blocking read(2) of stdin returns EINTR.
    public static func install() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
            wakePipe = (fds[0], fds[1])
        }
        signal(SIGPIPE, SIG_IGN)
        var action = sigaction()
        action.__sigaction_handler.sa_handler = onStopSignal
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
    }

    /// After a stop signal, the grace counts from now: for a stop that evt could act on only
    /// later (it let a running --exec command finish).
    static func startGraceNow() {
        guard stopRequested else { return }
        receivedAtMs.store(monotonicMilliseconds(), ordering: .relaxed)
    }

    /// Waits `milliseconds`, or less if a stop signal arrives.
    static func sleep(milliseconds: Int) {
        var wake = pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)
        _ = poll(&wake, 1, Int32(clamping: milliseconds))
    }

    /// The exit status a clean stop after the received signal has (130 / 143), if any.
    public static var exitStatusAfterSignal: ExitStatus? {
        switch stopSignal {
        case SIGINT: return .interrupted
        case SIGTERM: return .terminated
        default: return nil
        }
    }
}

private func onStopSignal(_ signal: Int32) {
    if Signals.received.load(ordering: .relaxed) == 0 {
        // clock_gettime(2) is async-signal-safe.
        Signals.receivedAtMs.store(monotonicMilliseconds(), ordering: .relaxed)
    }
    Signals.received.store(signal, ordering: .relaxed)
    var byte: UInt8 = 1
    _ = write(Signals.wakePipe.1, &byte, 1)
}
