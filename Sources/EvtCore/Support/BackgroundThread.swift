#if canImport(Glibc)
import Glibc
#endif

/// A thread that runs one closure, with every signal blocked in it: SIGINT and SIGTERM go to
/// the main thread, whose waits (poll, sleeps between retries) they interrupt as before.
final class BackgroundThread: @unchecked Sendable {
    private var thread = pthread_t()
    private let body: () -> Void

    /// `purpose` ends the message if the thread cannot start: "to read the input".
    init(_ purpose: String, _ body: @escaping () -> Void) throws {
        self.body = body
        var all = sigset_t()
        var previous = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, &previous)
        let context = Unmanaged.passRetained(self).toOpaque()
        let created = pthread_create(&thread, nil, { context in
            let this = Unmanaged<BackgroundThread>.fromOpaque(context!).takeRetainedValue()
            this.body()
            return nil
        }, context)
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        guard created == 0 else {
            Unmanaged<BackgroundThread>.fromOpaque(context).release()
            throw EvtError(.refused(code: ""), "cannot start a thread \(purpose): \(String(cString: strerror(created))); free some memory or processes, then run it again.")
        }
    }

    /// Waits for the closure to return.
    func join() {
        pthread_join(thread, nil)
    }
}
