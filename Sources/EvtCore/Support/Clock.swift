#if canImport(Glibc)
import Glibc
#endif

/// Milliseconds on CLOCK_MONOTONIC: for deadlines, intervals and rates, never for timestamps.
func monotonicMilliseconds() -> Int {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
}

/// Waits `milliseconds`, whatever comes (a stop signal too: see Signals.sleep for a wait
/// that a stop ends).
func sleepMilliseconds(_ milliseconds: Int) {
    var left = timespec(tv_sec: milliseconds / 1000, tv_nsec: milliseconds % 1000 * 1_000_000)
    var asked = left
    while nanosleep(&asked, &left) != 0 && errno == EINTR { asked = left }
}

/// Milliseconds since the epoch on CLOCK_REALTIME: the clock of stream ids and Kafka
/// timestamps, for ages ("how old is the oldest unconsumed event").
func epochMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec / 1_000_000)
}

/// Nanoseconds on CLOCK_MONOTONIC: for short durations (an --exec run), where milliseconds
/// are too coarse.
func monotonicNanoseconds() -> Int {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return now.tv_sec * 1_000_000_000 + now.tv_nsec
}
