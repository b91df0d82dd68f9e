import Foundation

/// Polls `condition` until it holds, or `timeout` seconds have passed; says whether it held.
/// A test waits for something it can observe (a subscriber counted by PUBSUB NUMSUB, a line on
/// evt's stdout or stderr, a client blocked in XREAD) instead of sleeping for as long as that
/// usually takes: on a loaded 2-core machine it can take many times longer. The deadline is
/// generous because it only matters when the test fails.
@discardableResult
public func waitUntil(timeout: Double = 30, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeout * 1e9)
    while true {
        if try condition() { return true }
        if DispatchTime.now().uptimeNanoseconds >= deadline { return false }
        usleep(20_000)
    }
}
