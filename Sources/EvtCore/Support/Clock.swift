#if canImport(Glibc)
import Glibc
#endif

/// Milliseconds on CLOCK_MONOTONIC: for deadlines, intervals and rates, never for timestamps.
func monotonicMilliseconds() -> Int {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
}
