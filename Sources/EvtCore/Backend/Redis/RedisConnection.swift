#if canImport(Glibc)
import Glibc
#endif
internal import CHiredis

/// Redis error answers start with a code word (`WRONGTYPE`, `LOADING`, …): the code, not
/// the text after it, says whether the same command may succeed later.
enum RedisErrorReply {
    static func cause(_ message: String) -> FailureCause {
        let code = String(message.prefix { $0 != " " })
        switch code {
        case "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN": return .transient(code: code)
        // UNBLOCKED: a blocked read whose key went away (migrated to another node, or deleted:
        // the next read says which).
        case "MOVED", "ASK", "UNBLOCKED": return .moved(code: code)
        default: return .refused(code: code)
        }
    }

    /// A cluster's "not now": a multi-key command while its keys move (TRYAGAIN), or no
    /// master for some slot yet (CLUSTERDOWN, during a failover).
    static func isClusterNotNow(_ message: String) -> Bool {
        let code = message.prefix { $0 != " " }
        return code == "TRYAGAIN" || code == "CLUSTERDOWN"
    }

    /// `what` (e.g. "XREAD on stream orders") failed with this answer.
    static func error(_ message: String, _ what: String) -> EvtError {
        EvtError(cause(message), "\(what): \(message)")
    }
}

/// A reply as hiredis parsed it, valid only inside the closure that received it.
/// Lets hot loops (XRANGE pages, pipelined XADD replies) read replies without copying them.
struct RedisReplyView {
    enum Kind { case string, array, integer, null, status, error }
    fileprivate let raw: UnsafeMutablePointer<redisReply>

    var kind: Kind {
        switch raw.pointee.type {
        case REDIS_REPLY_STRING: return .string
        case REDIS_REPLY_ARRAY: return .array
        case REDIS_REPLY_INTEGER: return .integer
        case REDIS_REPLY_STATUS: return .status
        case REDIS_REPLY_ERROR: return .error
        default: return .null
        }
    }
    var bytes: UnsafeRawBufferPointer {
        guard let str = raw.pointee.str else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: str, count: raw.pointee.len)
    }
    var text: String { String(decoding: bytes, as: UTF8.self) }
    var integer: Int { Int(raw.pointee.integer) }
    var count: Int { kind == .array ? raw.pointee.elements : 0 }
    subscript(index: Int) -> RedisReplyView { RedisReplyView(raw: raw.pointee.element[index]!) }
}

/// A reply copied into Swift values, for control commands off the hot path.
indirect enum RedisValue: Equatable {
    case string([UInt8]), status(String), error(String), integer(Int), array([RedisValue]), null

    init(_ view: RedisReplyView) {
        switch view.kind {
        case .string: self = .string(Array(view.bytes))
        case .status: self = .status(view.text)
        case .error: self = .error(view.text)
        case .integer: self = .integer(view.integer)
        case .null: self = .null
        case .array: self = .array((0..<view.count).map { RedisValue(view[$0]) })
        }
    }

    var bytes: [UInt8]? {
        switch self {
        case .string(let bytes): return bytes
        case .status(let text): return Array(text.utf8)
        default: return nil
        }
    }

    var text: String? {
        switch self {
        case .string(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .status(let text): return text
        default: return nil
        }
    }
}

/// One Redis connection through hiredis: hiredis connects and parses replies; evt builds the
/// RESP itself (RespCommandBuffer) and drives the non-blocking socket with its own poll(2),
/// which also watches the signal wake-up pipe — a blocking hiredis read retries on EINTR and
/// would never notice SIGINT (SWIFT-C-NOTES). For `rediss://`, evt's own TLS session sits
/// between the socket and hiredis' parser (Debian's hiredis has no TLS).
final class RedisConnection {
    private(set) var address: RedisServerAddress
    private var context: UnsafeMutablePointer<redisContext>
    private var tls: TLSSession?
    /// What one read(2) (under TLS, one SSL_read) took from the socket, `input[inputStart..<inputEnd]`
    /// not yet given to hiredis' parser. It goes in slices of `parserSlice` bytes: after every
    /// KiB it consumes, the parser moves what it still holds to the front (hiredis 0.14
    /// read.c, sdsrange), so a 16 KiB read fed whole was moved ~6 times over (11 % of the
    /// instructions of a channel subscribe in callgrind).
    private var input = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private var inputStart = 0
    private var inputEnd = 0
    private static let parserSlice = 1024
    /// Whether any reply came yet: a plain-text connection that a server drops before its
    /// first answer is most likely talking to a TLS port.
    private var answered = false
    var outgoing = RespCommandBuffer()
    /// How long a write may wait for a server that takes nothing (its buffers full), and a
    /// set-up command (`call`) for its answer: --timeout where a command has one.
    var writeStallLimitMs = 10_000
    /// Asked what to do about a cluster's MOVED, ASK, TRYAGAIN or CLUSTERDOWN answer to `call`
    /// and `request` (nil: such answers are the command's own). The connection knows no slots.
    var router: ClusterRouter?
    private let connectTimeoutMs: Int
    /// Answers still to come to commands whose callers have gone (`pages` cut short): read and dropped.
    private var unwanted = 0

    init(_ address: RedisServerAddress, connectTimeoutMs: Int = 5000) throws {
        self.address = address
        self.connectTimeoutMs = connectTimeoutMs
        (context, tls) = try RedisConnection.openSocket(address, connectTimeoutMs: connectTimeoutMs)
        input = .allocate(byteCount: 65536, alignment: 16)
        // From here on a throw runs deinit, which frees the context.
        try handshake()
    }

    /// Points this connection at another server (the node a cluster's MOVED names), with the
    /// same credentials; commands not yet written stay queued.
    func reconnect(to node: RedisNode) throws {
        let target = address.at(node)
        let (newContext, newTLS) = try RedisConnection.openSocket(target, connectTimeoutMs: connectTimeoutMs)
        tls = nil
        evt_redis_free(context)
        context = newContext
        tls = newTLS
        inputStart = 0
        inputEnd = 0
        address = target
        answered = false
        unwanted = 0
        let queued = outgoing
        outgoing = RespCommandBuffer(capacity: 0)
        defer { outgoing = queued }
        try handshake()
    }

    private static func openSocket(_ address: RedisServerAddress, connectTimeoutMs: Int) throws
        -> (UnsafeMutablePointer<redisContext>, TLSSession?) {
        let timeout = timeval(tv_sec: connectTimeoutMs / 1000, tv_usec: (connectTimeoutMs % 1000) * 1000)
        guard let context = redisConnectWithTimeout(address.host, Int32(address.port), timeout) else {
            throw EvtError(.refused(code: ""), "cannot connect to \(address.description): out of memory.")
        }
        if context.pointee.err != 0 {
            let reason = RedisConnection.errorText(context)
            evt_redis_free(context)
            throw EvtError(.connectionLost, "cannot connect to \(address.description): \(clause(reason)). Is redis-server running there? (set EVT_REDIS_URL or use a redis:// endpoint)")
        }
        guard evt_reply_arena_attach(context) != 0 else {
            evt_redis_free(context)
            throw EvtError(.refused(code: ""), "cannot connect to \(address.description): out of memory.")
        }
        let fd = context.pointee.fd
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        // hiredis' own blocking I/O is never used; its REDIS_BLOCK flag would only matter there.
        context.pointee.flags &= ~Int32(REDIS_BLOCK)
        guard let settings = address.tls else { return (context, nil) }
        do {
            let session = try TLSSession(TLSClientContext.shared(settings), fd: fd, host: address.host,
                                         timeoutMs: connectTimeoutMs, server: address.description)
            return (context, session)
        } catch {
            evt_redis_free(context)
            throw error
        }
    }

    deinit {
        tls = nil   // its close_notify goes out before hiredis closes the socket
        evt_redis_free(context)
        input.deallocate()
    }

    private func handshake() throws {
        if tls != nil {
            // TLS 1.3 servers judge the client certificate after the handshake and answer with
            // session tickets or an alert: read those before writing, since a write that meets
            // the closed socket gets a reset that discards the alert and its reason.
            var pollFD = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pollFD, 1, 200) > 0 { try readIntoParser() }
        }
        if let password = address.password {
            let reply = try call(address.user.map { ["AUTH", $0, password] } ?? ["AUTH", password])
            if case .error(let message) = reply {
                // The server's message never contains the password.
                let user = address.user.map { "user \($0)" } ?? "the default user"
                throw EvtError(RedisErrorReply.cause(message), "\(address.description) refused the password of \(user): \(clause(message)). Check the endpoint, EVT_REDIS_PASSWORD or REDISCLI_AUTH.")
            }
        }
        if address.database != 0 {
            if case .error(let message) = try call(["SELECT", String(address.database)]) {
                throw RedisErrorReply.error(message, "\(address.description): cannot select database \(address.database)")
            }
        }
        if tls != nil && address.password == nil && address.database == 0 {
            // Under TLS 1.3 a server refuses a client certificate (or its absence) only after
            // the handshake: one round trip makes that a connect error, and not a lost answer
            // to the first command, whose events would then count as unconfirmed.
            do {
                _ = try call(["PING"])
            } catch let error as EvtError where error.cause == .connectionLost {
                let hint = address.tls?.clientCertificate == nil
                    ? "it may want a client certificate (redis-server's tls-auth-clients is yes by default): give one with EVT_REDIS_CERT and EVT_REDIS_KEY, or ?cert=FILE&key=FILE"
                    : "it may have refused evt's client certificate: check that EVT_REDIS_CERT is signed by a CA the server trusts and has not expired"
                throw EvtError(.connectionLost, "\(clause(error.message)); the server closed the connection right after the TLS handshake, so \(hint).")
            }
        }
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    var fd: Int32 { context.pointee.fd }

    /// The connection is gone (or the server stopped answering): `reason` says how.
    func lost(_ reason: String) -> EvtError {
        EvtError(.connectionLost, "lost the connection to \(address.description) (\(reason))")
    }

    private func lostBeforeAnswer(_ reason: String) -> EvtError {
        lost(answered ? reason : reason + "; if that port speaks TLS, use rediss://")
    }

    /// Sends every command in `outgoing`, waiting for the socket as needed.
    func flushWrites() throws {
        defer { outgoing.removeAll() }
        try outgoing.bytes.withUnsafeBytes { bytes in
            var offset = 0
            var lastProgress = monotonicMilliseconds()
            while offset < bytes.count {
                if let grace = Signals.graceLeftMs, grace == 0 {
                    throw EvtError(.stopped, "stopped by a signal while \(address.description) took no more commands")
                }
                if monotonicMilliseconds() - lastProgress >= writeStallLimitMs {
                    throw lost("the server took no commands for \(writeStallLimitMs / 1000) s")
                }
                let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
                if let tls {
                    switch tls.write(rest) {
                    case .done(let count): offset += count; lastProgress = monotonicMilliseconds()
                    case .wait(let events): waitForSocket(events)
                    case .closed: throw lost("the server closed the TLS session")
                    case .failed(let failure): throw failed(failure)
                    }
                    continue
                }
                let written = send(fd, rest.baseAddress!, rest.count, Int32(MSG_NOSIGNAL))
                if written >= 0 { offset += written; lastProgress = monotonicMilliseconds(); continue }
                switch errno {
                case EINTR: continue
                case EAGAIN: waitForSocket(Int16(POLLOUT))
                default: throw lostBeforeAnswer(String(cString: strerror(errno)))
                }
            }
        }
    }

    /// Waits up to a second for the socket, or for a stop signal (then for the grace).
    private func waitForSocket(_ events: Int16) {
        var fds = [pollfd(fd: fd, events: events, revents: 0),
                   pollfd(fd: Signals.wakeFD, events: Int16(POLLIN), revents: 0)]
        let grace = Signals.graceLeftMs
        if grace != nil { fds[1].fd = -1 }
        _ = poll(&fds, 2, Int32(min(grace ?? 1000, 1000)))
    }

    /// A TLS failure while connected: a lost connection, or a refusal (a client certificate
    /// the server does not want) that the same attempt would meet again.
    private func failed(_ failure: TLSFailure) -> EvtError {
        failure.refused ? failure.error(address.description) : lost(failure.reason)
    }

    /// Takes what the socket has into `input`, once it has all gone to the parser: one
    /// read(2), or under TLS one SSL_read (which may leave more decrypted bytes buffered).
    private func readIntoParser() throws {
        guard inputStart == inputEnd else { return }
        guard let tls else {
            let count = read(fd, input.baseAddress, input.count)
            if count > 0 {
                inputStart = 0
                inputEnd = count
                return
            }
            if count == 0 { throw lostBeforeAnswer("Server closed the connection") }
            if errno == EAGAIN || errno == EINTR { return }   // nothing after all: poll again
            throw lostBeforeAnswer(String(cString: strerror(errno)))
        }
        switch tls.read(into: input) {
        case .done(let count):
            inputStart = 0
            inputEnd = count
        case .wait: break   // a record not complete yet
        case .closed: throw lost("the server closed the connection")
        case .failed(let failure): throw failed(failure)
        }
    }

    /// Gives hiredis' parser the next slice of `input`; false when it has had all of it.
    private func feedParser() throws -> Bool {
        guard inputStart < inputEnd else { return false }
        let count = min(Self.parserSlice, inputEnd - inputStart)
        let slice = (input.baseAddress! + inputStart).assumingMemoryBound(to: CChar.self)
        inputStart += count
        if redisReaderFeed(context.pointee.reader, slice, count) != REDIS_OK {
            throw lost("protocol error: \(RedisConnection.errorText(context))")
        }
        return true
    }

    /// What `waitForReply` saw besides a reply.
    enum Wait { case reply, timedOut, stopRequested }

    /// Hands the next reply to `body`. `waitMs` < 0 waits until a reply, a stop signal, or
    /// (with `watchStdout`) a closed stdout (throws StdoutClosed); 0 only takes what is buffered.
    /// `stopOnSignal` false: keep waiting through a stop signal (a producer still collecting
    /// the answers to what it sent), for Signals.graceMs at most.
    @discardableResult
    func nextReply(waitMs: Int32, watchStdout: Bool = false, stopOnSignal: Bool = true,
                   _ body: (RedisReplyView) throws -> Void) throws -> Wait {
        while true {
            var reply: UnsafeMutableRawPointer?
            if redisGetReplyFromReader(context, &reply) != REDIS_OK {
                throw lost("protocol error: \(RedisConnection.errorText(context))")
            }
            if let reply {
                let typed = reply.assumingMemoryBound(to: redisReply.self)
                defer { evt_reply_release(context) }
                if unwanted > 0 {
                    unwanted -= 1
                    continue
                }
                answered = true
                try body(RedisReplyView(raw: typed))
                return .reply
            }
            if try feedParser() { continue }
            if let tls, tls.hasBufferedInput {
                try readIntoParser()
                continue
            }
            if waitMs == 0 && !socketReadable(waitMs: 0) { return .timedOut }
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: Signals.wakeFD, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: 1, events: 0, revents: 0)]
            var pollWait = waitMs
            if !stopOnSignal, let grace = Signals.graceLeftMs {
                // Still collecting answers after a stop signal, but only for the grace.
                if grace == 0 { return .stopRequested }
                pollWait = waitMs < 0 ? Int32(grace) : min(waitMs, Int32(grace))
                fds[1].fd = -1   // poll ignores it: no spinning on the wake pipe
            }
            let ready = poll(&fds, watchStdout ? 3 : 2, pollWait)
            if ready < 0 && errno != EINTR { throw lost(String(cString: strerror(errno))) }
            if stopOnSignal && Signals.stopRequested { return .stopRequested }
            if watchStdout && fds[2].revents != 0 { throw StdoutClosed() }
            if fds[0].revents != 0 {
                try readIntoParser()
            } else if ready == 0 && waitMs >= 0 && pollWait == waitMs {
                return .timedOut
            }
        }
    }

    private func socketReadable(waitMs: Int32) -> Bool {
        var pollFD = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pollFD, 1, waitMs) > 0
    }

    /// One command for set-up or control, its reply handed to `body` without copying it (a
    /// page of entries, say); an error answer is thrown, naming the command and its key.
    func request(_ words: [String], _ body: (RedisReplyView) throws -> Void) throws {
        var serverError: String?
        try exchange(words) { reply in
            if reply.kind == .error { serverError = reply.text } else { try body(reply) }
        }
        if let serverError {
            throw RedisErrorReply.error(serverError, words.count > 1 ? "\(words[0]) \(words[1]) failed" : "\(words[0]) failed")
        }
    }

    /// A read in pages, one request ahead: `next` gives the request for the page after the
    /// one answered (nil: that one was the last), and it goes out before `body` handles the
    /// answer, so the server builds a page while evt writes out the one before. An answer
    /// that is an error (a cluster's MOVED, say) is asked again through `request`, which
    /// follows redirects or throws. After a stop signal no further page is asked for.
    func pages(_ first: [String], next: (RedisReplyView) -> [String]?, _ body: (RedisReplyView) throws -> Void) throws {
        var words: [String]? = first
        var inFlight = false   // `words` went out already (asked for ahead)
        // A throw leaves the answer to what is in flight unread: it is skipped when it comes.
        defer { if inFlight { unwanted += 1 } }
        while let current = words {
            if !inFlight {
                outgoing.command(current)
                try flushWrites()
                inFlight = true
            }
            var refused = false
            words = nil
            let wait = try nextReply(waitMs: Int32(writeStallLimitMs), stopOnSignal: false) { reply in
                inFlight = false
                if reply.kind == .error { refused = true; return }
                words = Signals.stopRequested ? nil : next(reply)
                if let ahead = words {
                    outgoing.command(ahead)
                    try flushWrites()
                    inFlight = true
                }
                try body(reply)
            }
            if wait != .reply { throw unanswered(current[0], wait) }
            if refused {
                try request(current) { reply in
                    words = Signals.stopRequested ? nil : next(reply)
                    try body(reply)
                }
            }
        }
    }

    /// One command, one reply: for set-up and control, never per event.
    /// A stop signal cuts it short only after Signals.graceMs (a server that answers at all
    /// answers sooner): callers check for the stop between commands, so a command sent is
    /// left half-known only when the server stopped answering.
    func call(_ words: [String]) throws -> RedisValue {
        var value = RedisValue.null
        try exchange(words) { value = RedisValue($0) }
        return value
    }

    /// Sends one command and hands its answer to `body`. On a cluster the router decides what
    /// an answer that says "elsewhere" or "not now" leads to (ClusterRedirects): MOVED moves
    /// this connection to the slot's master, ASK sends the command once more on the importing
    /// node after ASKING, TRYAGAIN and CLUSTERDOWN send it again after a pause, within
    /// `writeStallLimitMs` (--timeout). An error answer the router leaves to the command is
    /// handed to `body` too.
    func exchange(_ words: [String], _ body: (RedisReplyView) throws -> Void) throws {
        var via = self
        var course = ClusterRedirects(timeoutMs: writeStallLimitMs)
        while true {
            let asking = via !== self
            if asking { via.outgoing.command(["ASKING"]) }
            via.outgoing.command(words)
            try via.flushWrites()
            if asking { try via.nextReply(waitMs: Int32(writeStallLimitMs), stopOnSignal: false) { _ in } }
            var action = ClusterAction.answer
            let wait = try via.nextReply(waitMs: Int32(writeStallLimitMs), stopOnSignal: false) { reply in
                if reply.kind == .error, let router {
                    action = router.decide(reply.text, answeredBy: via.node, course: &course)
                    if action != .answer { return }
                }
                try body(reply)
            }
            if wait != .reply { throw via.unanswered(words[0], wait) }
            switch action {
            case .answer:
                return
            case .redirect(let node, asking: true):
                via = try RedisConnection(address.at(node), connectTimeoutMs: connectTimeoutMs)
            case .redirect(let node, asking: false):
                try reconnect(to: node)
                via = self
            case .retry(let pause):
                guard !Signals.stopRequested else { throw EvtError(.stopped, "stopped by a signal while \(address.description) answered \(words[0]) with TRYAGAIN or CLUSTERDOWN.") }
                Signals.sleep(milliseconds: pause)
                via = self
            case .fail(let cause, let reason):
                throw EvtError(cause, "\(words[0]) on \(address.description): \(reason).")
            }
        }
    }

    /// The node this connection is to.
    var node: RedisNode { RedisNode(host: address.host, port: address.port) }

    private func unanswered(_ command: String, _ wait: Wait) -> EvtError {
        if wait == .stopRequested {
            return EvtError(.stopped, "stopped by a signal while \(address.description) did not answer \(command).")
        }
        return lost("no answer to \(command) within 10 s")
    }
}

extension RedisConnection {
    /// A connection for commands on `key` (and keys that share its slot): on a Redis Cluster
    /// to the master that serves it. `key` nil: any node will do (pub/sub).
    static func open(_ server: RedisServerAddress, key: String?, connectTimeoutMs: Int = 5000, answerWaitMs: Int = 10_000) throws -> RedisConnection {
        try ClusterRouter.of(server).connect(key: key, connectTimeoutMs: connectTimeoutMs, answerWaitMs: answerWaitMs)
    }

    static var libraryVersion: String { "\(HIREDIS_MAJOR).\(HIREDIS_MINOR).\(HIREDIS_PATCH)" }
}
