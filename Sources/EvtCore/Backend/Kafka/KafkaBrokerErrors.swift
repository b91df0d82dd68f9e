#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka
import Synchronization

/// What librdkafka's error callbacks learn about the brokers, for every loop that waits on one.
///
/// A refused authentication (`_AUTHENTICATION`) or a failed TLS handshake (`_SSL`) does not
/// get better by waiting, but librdkafka retries it every second, and evt's waits then ran into
/// their own timeouts (message.timeout.ms, 10 s per metadata request) and said only "Message
/// timed out" or "Broker transport failure". So the first such failure of any client of a run
/// is kept here — one object per run, which KafkaSettings carries to every client of the
/// command and each client's error callback reaches through its opaque (KafkaClientContext) —
/// and every wait asks `check()`, directly or through `serve(_:)` and `request(_:client:_:)`.
///
/// So does an address where no broker runs: when all of a client's brokers are down
/// (`_ALL_BROKERS_DOWN`) before any of them ever answered it (it has no metadata), and each
/// of its bootstrap addresses refuses a TCP connection (ECONNREFUSED, asked by evt itself:
/// librdkafka's `_TRANSPORT` says no more than its text), that is a refusal too. A broker that
/// is slow, or one bootstrap address down among several that answer, is not.
///
/// Everything else librdkafka reports on a connection (`_TRANSPORT`: a broker that is down, a
/// plaintext client at a TLS port, a client certificate the broker refused under TLS 1.3 — one
/// code for all of them) is waited out as before; its latest text is kept so that the message
/// at the timeout can say what librdkafka last saw.
final class KafkaBrokerErrors: Sendable {
    /// Why evt gives up on the brokers at once.
    enum Refusal: Equatable {
        /// Authentication refused: a wrong user or password, or a mechanism the broker lacks.
        case authentication
        /// The TLS handshake failed: evt does not trust the broker's certificate, or TLS itself failed.
        case tls
        /// No broker ever answered, and every bootstrap address (`host:port, …`) refuses connections.
        case connection(addresses: String)
    }

    private struct State {
        var refusal: (kind: Refusal, code: String, message: String)?
        /// The full refusal message was shown (thrown, or printed by a sink): later ones are short.
        var refusalShown = false
        /// librdkafka's latest other complaint, and the security.protocol of its client.
        var lastBrokerError: (reason: String, protocol: String)?
        /// Error codes reported once already (without -v, each kind is shown once).
        var reported: Set<Int32> = []
    }

    private let state = Mutex(State())

    /// The kind of refusal librdkafka's `err` is, if it is one: decided by the code, never by
    /// the text (librdkafka 2.0.2, tried against TLS and SASL fronts: a wrong CA gives `_SSL`,
    /// a wrong password or an unknown mechanism `_AUTHENTICATION`).
    static func refusal(for err: Int32) -> Refusal? {
        switch err {
        case RD_KAFKA_RESP_ERR__AUTHENTICATION.rawValue, RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED.rawValue:
            return .authentication
        case RD_KAFKA_RESP_ERR__SSL.rawValue:
            return .tls
        default:
            return nil
        }
    }

    /// Files one error of client `rk` (from its error callback, or a consumer error message);
    /// true when it should be shown now: without -v each kind of error is shown once, and
    /// neither a refusal (the message that ends the command says it) nor anything after one.
    @discardableResult
    func note(_ err: Int32, reason: String, client rk: OpaquePointer?) -> Bool {
        let kind = Self.refusal(for: err) ?? connectionRefusal(err, client: rk)
        // Read before the lock: librdkafka's own configuration lookups take its locks.
        let message = kind.map { Self.refusalMessage($0, reason: reason, client: rk) }
        let securityProtocol = kind == nil ? KafkaConfig.setting("security.protocol", of: rk) ?? "plaintext" : ""
        return state.withLock { state in
            let first = state.reported.insert(err).inserted
            if let kind, let message, state.refusal == nil {
                state.refusal = (kind, String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: err))), message)
            }
            // "1/1 brokers are down" says nothing about why.
            if kind == nil && err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN.rawValue {
                state.lastBrokerError = (reason, securityProtocol)
            }
            return first && kind == nil && state.refusal == nil
        }
    }

    /// A consumer error message (`err` set) that carries a refusal: filed like the error
    /// callback's, true when it was one.
    func noteRefusal(_ message: UnsafeMutablePointer<rd_kafka_message_t>, client: OpaquePointer) -> Bool {
        let err = message.pointee.err.rawValue
        guard Self.refusal(for: err) != nil || err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN.rawValue else { return false }
        note(err, reason: String(cString: rd_kafka_message_errstr(message)), client: client)
        return refusal != nil
    }

    /// `.connection` when `err` says that all brokers of client `rk` are down, none of them
    /// ever answered it, and every bootstrap address refuses connections now (asked once per
    /// such report, up to a second per address; a slow or silent address ends the asking).
    private func connectionRefusal(_ err: Int32, client rk: OpaquePointer?) -> Refusal? {
        guard err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN.rawValue, let rk, refusal == nil else { return nil }
        // Metadata came once: a cluster that answered and went away is waited for, as before.
        if let clusterID = rd_kafka_clusterid(rk, 0) {
            rd_kafka_mem_free(rk, clusterID)
            return nil
        }
        guard let servers = KafkaConfig.setting("bootstrap.servers", of: rk) else { return nil }
        let addresses = servers.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
        guard !addresses.isEmpty, addresses.allSatisfy({ address in
            let (host, port) = Self.hostAndPort(address)
            return refusesConnections(host: host, port: port)
        }) else { return nil }
        return .connection(addresses: addresses.joined(separator: ", "))
    }

    /// `host:port`, `[v6]:port`, `host` (port 9092), each maybe after `SCHEME://`, as librdkafka reads them.
    static func hostAndPort(_ address: String) -> (host: String, port: String) {
        var text = Substring(address)
        if let scheme = text.firstRange(of: "://") { text = text[scheme.upperBound...] }
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            let rest = text[text.index(after: close)...]
            return (String(text[text.index(after: text.startIndex)..<close]), rest.hasPrefix(":") ? String(rest.dropFirst()) : "9092")
        }
        if let colon = text.lastIndex(of: ":"), text.firstIndex(of: ":") == colon {
            return (String(text[..<colon]), String(text[text.index(after: colon)...]))
        }
        return (String(text), "9092")
    }

    /// The refusal some client met, as the error that ends the command (cause: refused, with
    /// librdkafka's code name). The first time it is the whole message; afterwards (a second
    /// client, a copy's other end) a short one that points up to it.
    func refused() -> EvtError? { takeRefusal()?.error }

    /// `refused()`, and whether the whole message had been shown before this call.
    func takeRefusal() -> (error: EvtError, shown: Bool)? {
        state.withLock { state in
            guard let refusal = state.refusal else { return nil }
            let shown = state.refusalShown
            state.refusalShown = true
            return (EvtError(.refused(code: refusal.code), shown ? "\(Self.shortText(refusal.kind)) (see above)." : refusal.message), shown)
        }
    }

    /// The refusal some client met, if any: its kind and librdkafka's code name.
    var refusal: (kind: Refusal, code: String)? {
        state.withLock { state in state.refusal.map { ($0.kind, $0.code) } }
    }

    /// Throws the refusal some client met: every wait for a broker calls this.
    func check() throws {
        if let error = refused() { throw error }
    }

    /// Serves the callbacks queued on `client`'s main queue (its errors among them), then
    /// `check()`. Only for a client whose main queue is not forwarded to its consumer queue
    /// (no rd_kafka_poll_set_consumer: librdkafka asserts on a message served that way);
    /// such a consumer's poll serves the error callback itself.
    func serve(_ client: OpaquePointer) throws {
        rd_kafka_poll(client, 0)
        try check()
    }

    /// A blocking librdkafka request (metadata, watermarks), given up to `budgetMs` as before
    /// but asked in half-second slices, so that neither a stop signal nor a refusal waits for
    /// the whole budget. `client` as for `serve(_:)`.
    func request(_ what: String, client: OpaquePointer, budgetMs: Int = 10_000,
                        _ request: (Int32) -> rd_kafka_resp_err_t) throws -> rd_kafka_resp_err_t {
        let deadline = monotonicMilliseconds() + budgetMs
        while true {
            let asked = monotonicMilliseconds()
            let err = request(Int32(max(1, min(500, deadline - asked))))
            let waitedOut = err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT
            guard waitedOut else { return err }
            try serve(client)
            guard monotonicMilliseconds() < deadline else { return err }
            if Signals.stopRequested { throw EvtError(.stopped, "stopped before \(what); nothing was read.") }
            // A request that failed at once is not asked again in a tight loop.
            if monotonicMilliseconds() - asked < 100 { Signals.sleep(milliseconds: 100) }
        }
    }

    /// What to add to a message about brokers that did not answer: librdkafka's latest
    /// complaint, and the settings that make a reachable broker look unreachable.
    var unreachableHint: String {
        guard let last = state.withLock({ $0.lastBrokerError }) else {
            return " Is a Kafka broker reachable there, and does -X security.protocol match its listener?"
        }
        let question: String
        switch last.protocol.lowercased() {
        case "ssl", "sasl_ssl":
            // A broker that wants a client certificate and refuses evt's says so only after
            // the handshake (TLS 1.3): librdkafka calls it a transport failure.
            question = "does -X security.protocol (now \(last.protocol)) match its listener, and if it wants a client certificate, do ssl.certificate.location and ssl.key.location give one it accepts?"
        default:
            question = "does -X security.protocol (now \(last.protocol)) match its listener (ssl or sasl_ssl for TLS, sasl_plaintext for SASL without TLS)?"
        }
        return " The last broker error: \(clause(last.reason)). Is a Kafka broker reachable there, and \(question)"
    }

    /// "Kafka refused the authentication", for the lines of a delivery report.
    static func shortText(_ kind: Refusal) -> String {
        switch kind {
        case .authentication: return "Kafka refused the authentication"
        case .tls: return "the TLS handshake with Kafka failed"
        case .connection(let addresses): return "no Kafka broker accepts connections at \(addresses)"
        }
    }

    /// librdkafka's reason and what to check, with the settings' values where they are not
    /// secret (never sasl.password or a key's password).
    private static func refusalMessage(_ kind: Refusal, reason: String, client rk: OpaquePointer?) -> String {
        switch kind {
        case .authentication:
            let user = KafkaConfig.setting("sasl.username", of: rk).map { " (now \($0))" } ?? " (not set)"
            let mechanism = KafkaConfig.setting("sasl.mechanisms", of: rk).map { " (now \($0))" } ?? ""
            return "\(shortText(kind)): \(clause(reason)). Check sasl.username\(user) and sasl.password (-X or -F FILE), and that sasl.mechanisms\(mechanism) names a mechanism the broker enables."
        case .tls:
            let ca = KafkaConfig.setting("ssl.ca.location", of: rk).map { " (now \($0))" } ?? " (not set: the system's CAs are used)"
            return "\(shortText(kind)): \(clause(reason)). Check ssl.ca.location\(ca): it must hold the CA that signed the broker's certificate; if the broker wants a client certificate, give ssl.certificate.location and ssl.key.location."
        case .connection:
            return "\(shortText(kind)) (connection refused; none has answered since evt started). Is Kafka running there, and are the host and port right (kafka://HOST:PORT/TOPIC or EVT_KAFKA_BROKERS)?"
        }
    }
}
