#if canImport(Glibc)
import Glibc
#endif
internal import CTLS
import Synchronization

/// The OpenSSL client context for one set of TLS settings: the trusted CAs and the client
/// certificate are read once per run, however many connections (and reconnections) use them.
final class TLSClientContext: @unchecked Sendable {
    // SSL_CTX is safe to share once set up; evt only creates sessions from it afterwards.
    fileprivate let context: OpaquePointer
    let settings: RedisTLSSettings

    private static let made = Mutex<[RedisTLSSettings: TLSClientContext]>([:])

    static func shared(_ settings: RedisTLSSettings) throws -> TLSClientContext {
        if let context = made.withLock({ $0[settings] }) { return context }
        let context = try TLSClientContext(settings)
        return made.withLock { made in
            if let first = made[settings] { return first }
            made[settings] = context
            return context
        }
    }

    private init(_ settings: RedisTLSSettings) throws {
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw EvtError(.refused(code: ""), "cannot set up TLS: \(TLSSession.queuedErrors()).")
        }
        self.context = context
        self.settings = settings
        _ = evt_ssl_ctx_set_min_tls12(context)
        _ = evt_ssl_ctx_set_nonblocking_modes(context)
        evt_ssl_ctx_set_read_ahead(context)
        // An encrypted key would make OpenSSL ask for its passphrase on the terminal.
        SSL_CTX_set_default_passwd_cb(context) { _, _, _, _ in 0 }

        if let path = settings.caCertificates {
            var status = stat()
            guard stat(path, &status) == 0 else {
                throw EvtError.usage("cannot read the CA certificates \(path) (EVT_REDIS_CACERT or cacert=): \(String(cString: strerror(errno))).")
            }
            let isDirectory = (status.st_mode & S_IFMT) == S_IFDIR
            guard SSL_CTX_load_verify_locations(context, isDirectory ? nil : path, isDirectory ? path : nil) == 1 else {
                throw EvtError.usage("cannot use the CA certificates \(path) (EVT_REDIS_CACERT or cacert=): \(TLSSession.queuedErrors()). It must be PEM, or a directory prepared with c_rehash.")
            }
        } else if SSL_CTX_set_default_verify_paths(context) != 1 {
            throw EvtError.usage("cannot load the system's trusted CAs: \(TLSSession.queuedErrors()). Give the server's CA with EVT_REDIS_CACERT.")
        }
        if let certificate = settings.clientCertificate {
            let key = settings.clientKey ?? certificate
            guard access(certificate, R_OK) == 0 else {
                throw EvtError.usage("cannot read the client certificate \(certificate) (EVT_REDIS_CERT or cert=): \(String(cString: strerror(errno))).")
            }
            guard access(key, R_OK) == 0 else {
                throw EvtError.usage("cannot read the client key \(key) (EVT_REDIS_KEY or key=): \(String(cString: strerror(errno))).")
            }
            guard SSL_CTX_use_certificate_chain_file(context, certificate) == 1 else {
                throw EvtError.usage("cannot use the client certificate \(certificate): \(TLSSession.queuedErrors()). It must be PEM.")
            }
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1 else {
                throw EvtError.usage("cannot use the client key \(key): \(TLSSession.queuedErrors()). It must be an unencrypted PEM key (openssl pkey -in KEY -out PLAIN.key).")
            }
            guard SSL_CTX_check_private_key(context) == 1 else {
                throw EvtError.usage("the client key \(key) does not belong to the certificate \(certificate).")
            }
        }
        SSL_CTX_set_verify(context, settings.verifiesServer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nil)
        if !settings.verifiesServer {
            Diagnostics.print("warning: EVT_REDIS_TLS_VERIFY=none: evt does not check who the Redis server is; anyone on the path can read and change the traffic, passwords included. Unset it and give the server's CA with EVT_REDIS_CACERT.")
        }
    }

    deinit { SSL_CTX_free(context) }
}

/// One TLS session over a connected non-blocking socket: evt's Redis connection writes
/// through it and feeds what it reads to hiredis' reply parser.
final class TLSSession {
    private let ssl: OpaquePointer

    /// What a read or write did.
    enum Progress {
        case done(Int)
        /// Try again once the socket is readable (POLLIN) or writable (POLLOUT).
        case wait(events: Int16)
        /// The server closed the session (close_notify or a plain EOF).
        case closed
        case failed(TLSFailure)
    }

    /// Shakes hands on `fd` within `timeoutMs`, checking that the server's certificate names
    /// `host`; a stop signal ends the wait.
    init(_ context: TLSClientContext, fd: Int32, host: String, timeoutMs: Int, server: String) throws {
        guard let ssl = SSL_new(context.context) else {
            throw EvtError(.refused(code: ""), "cannot set up TLS: \(TLSSession.queuedErrors()).")
        }
        self.ssl = ssl
        SSL_set_fd(ssl, fd)
        if context.settings.verifiesServer {
            // Takes an IP address as one (and then matches the certificate's IP entries).
            SSL_set1_host(ssl, host)
        }
        if !TLSSession.isIPAddress(host) {
            _ = evt_ssl_set_sni(ssl, host)   // SNI names hosts only (RFC 6066)
        }
        let deadline = monotonicMilliseconds() + timeoutMs
        while true {
            ERR_clear_error()
            let result = SSL_connect(ssl)
            if result == 1 { return }
            let progress = outcome(result)
            guard case .wait(let events) = progress else {
                let failure: TLSFailure
                if case .failed(let why) = progress { failure = why } else {
                    failure = TLSFailure(reason: "the server closed the connection during the TLS handshake", refused: false)
                }
                throw failure.error(server)
            }
            let left = deadline - monotonicMilliseconds()
            if left <= 0 {
                throw EvtError(.connectionLost, "\(server): no TLS handshake within \(timeoutMs / 1000) s. Is this the server's TLS port?")
            }
            var fds = [pollfd(fd: fd, events: events, revents: 0),
                       pollfd(fd: Signals.wakeFD, events: Int16(POLLIN), revents: 0)]
            _ = poll(&fds, 2, Int32(clamping: min(left, 1000)))
            if Signals.stopRequested {
                throw EvtError(.stopped, "\(server): stopped by a signal during the TLS handshake.")
            }
        }
    }

    deinit {
        // close_notify, without waiting for the server's: the socket closes right after.
        SSL_shutdown(ssl)
        SSL_free(ssl)
    }

    /// Decrypted bytes are waiting inside OpenSSL: poll(2) would not see them.
    var hasBufferedInput: Bool { SSL_has_pending(ssl) == 1 }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> Progress {
        ERR_clear_error()
        let count = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
        return count > 0 ? .done(Int(count)) : outcome(count)
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> Progress {
        ERR_clear_error()
        let count = SSL_write(ssl, bytes.baseAddress, Int32(clamping: bytes.count))
        return count > 0 ? .done(Int(count)) : outcome(count)
    }

    private func outcome(_ result: Int32) -> Progress {
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ: return .wait(events: Int16(POLLIN))
        case SSL_ERROR_WANT_WRITE: return .wait(events: Int16(POLLOUT))
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL:
            let code = ERR_peek_error()
            if code == 0 { return errno == 0 ? .closed : .failed(TLSFailure(reason: String(cString: strerror(errno)), refused: false)) }
            return .failed(failure(code))
        default:
            return .failed(failure(ERR_peek_error()))
        }
    }

    /// What went wrong, in the user's terms: which certificate check failed, or which alert
    /// the server sent.
    private func failure(_ code: UInt) -> TLSFailure {
        let verification = SSL_get_verify_result(ssl)
        if verification != X509_V_OK {
            let detail = String(cString: X509_verify_cert_error_string(verification))
            switch Int32(verification) {
            case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
                 X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,
                 X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
                return TLSFailure(reason: "its certificate is signed by a CA evt does not trust (\(detail)). Give that CA with EVT_REDIS_CACERT=FILE or ?cacert=FILE", refused: true)
            case X509_V_ERR_CERT_HAS_EXPIRED:
                return TLSFailure(reason: "its certificate has expired (\(detail)). The server needs a renewed certificate", refused: true)
            case X509_V_ERR_CERT_NOT_YET_VALID:
                return TLSFailure(reason: "its certificate is not valid yet (\(detail)). Check this machine's clock", refused: true)
            case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
                return TLSFailure(reason: "its certificate does not name the host of the endpoint (\(detail)). Connect by a name or address the certificate lists (its subjectAltName)", refused: true)
            default:
                return TLSFailure(reason: "its certificate was not accepted (\(detail))", refused: true)
            }
        }
        let text = TLSSession.queuedErrors()
        switch evt_err_reason(code) {
        case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED, SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
            return TLSFailure(reason: "the server wants a client certificate (\(text)). Give one with EVT_REDIS_CERT and EVT_REDIS_KEY, or ?cert=FILE&key=FILE", refused: true)
        case SSL_R_TLSV1_ALERT_UNKNOWN_CA, SSL_R_SSLV3_ALERT_BAD_CERTIFICATE, SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN,
             SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED, SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
            return TLSFailure(reason: "the server refused evt's client certificate (\(text)). Check that EVT_REDIS_CERT is signed by a CA the server trusts (its tls-ca-cert-file) and has not expired", refused: true)
        case SSL_R_WRONG_VERSION_NUMBER, SSL_R_PACKET_LENGTH_TOO_LONG:
            return TLSFailure(reason: "the server did not answer in TLS (\(text)). Is this its TLS port? A server without TLS takes redis://", refused: true)
        case SSL_R_UNEXPECTED_EOF_WHILE_READING:
            return TLSFailure(reason: "the server closed the connection (\(text))", refused: false)
        default:
            return TLSFailure(reason: text, refused: true)
        }
    }

    /// OpenSSL's queued error texts, oldest first (then cleared).
    static func queuedErrors() -> String {
        var texts: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            texts.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return texts.isEmpty ? "unknown TLS error" : texts.joined(separator: "; ")
    }

    static func isIPAddress(_ host: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET, host, &address) == 1 || inet_pton(AF_INET6, host, &address) == 1
    }
}

/// Why a TLS session failed. `refused`: the same attempt would fail again (a certificate,
/// a protocol mismatch), so a retrying bridge must not retry it.
struct TLSFailure {
    let reason: String
    let refused: Bool

    func error(_ server: String) -> EvtError {
        EvtError(refused ? .refused(code: "TLS") : .connectionLost, "TLS with \(server) failed: \(clause(reason)).")
    }
}
