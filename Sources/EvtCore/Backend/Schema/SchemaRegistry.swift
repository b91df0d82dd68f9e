#if canImport(Glibc)
import Glibc
#endif
internal import CCurl

/// A client of a Confluent Schema Registry's REST API (CONTRACT.md, "Schemas"), over one
/// libcurl handle, so that every request of a run reuses one kept-alive connection (and one
/// TLS session). Called once per schema id or subject, never per record: a schema fetched by
/// id, or seen through a subject or a registration, is cached for the run.
///
/// Errors carry their cause: an unreachable or silent registry is `.connectionLost`, its 5xx
/// `.transient` (the registry's error_code), refused credentials `.refused("401")` or
/// `.refused("403")`, an unknown subject, version or id `.refused("40401")`, `("40402")`,
/// `("40403")`, any other answer `.refused` with the registry's error_code or HTTP status.
final class SchemaRegistry {
    let settings: SchemaRegistrySettings
    private let curl: UnsafeMutableRawPointer
    private let headers: UnsafeMutablePointer<curl_slist>
    private let errorText: UnsafeMutablePointer<CChar>
    private let timeoutSeconds: Double
    /// The answer being received; filled by `receiveAnswer`.
    fileprivate var answer: [UInt8] = []
    private var schemas: [Int32: RegisteredSchema] = [:]

    /// Answers beyond this are cut off: no schema comes near it.
    fileprivate static let answerLimit = 64 << 20

    /// `timeout`: seconds each request may take, connection included.
    init(_ settings: SchemaRegistrySettings, timeout: Double) throws(EvtError) {
        guard let curl = curl_easy_init() else {
            throw EvtError(.refused(code: ""), "cannot set up an HTTP client (curl_easy_init failed) for the schema registry \(settings.redacted).")
        }
        var list: UnsafeMutablePointer<curl_slist>?
        for header in ["Accept: application/vnd.schemaregistry.v1+json, application/json; q=0.5",
                       "Content-Type: application/vnd.schemaregistry.v1+json",
                       "Expect:"] {   // no 100-continue round trip before a larger body
            list = curl_slist_append(list, header)
        }
        guard let list else {
            curl_easy_cleanup(curl)
            throw EvtError(.refused(code: ""), "cannot set up an HTTP client for the schema registry \(settings.redacted): out of memory.")
        }
        self.curl = curl
        self.headers = list
        self.settings = settings
        self.timeoutSeconds = timeout
        errorText = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorText.initialize(to: 0)

        _ = evt_curl_set_pointer(curl, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list))
        _ = evt_curl_set_pointer(curl, CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(errorText))
        _ = evt_curl_set_write_callback(curl, receiveAnswer, Unmanaged.passUnretained(self).toOpaque())
        _ = evt_curl_set_progress_callback(curl, abortOnStopSignal)
        // No SIGALRM for name-resolution timeouts: evt has threads and its own signal handling.
        _ = evt_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
        _ = evt_curl_set_long(curl, CURLOPT_TIMEOUT_MS, max(1, Int(timeout * 1000)))
        _ = evt_curl_set_string(curl, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = evt_curl_set_string(curl, CURLOPT_USERAGENT, "evt")
        if let user = settings.user, let password = settings.password {
            _ = evt_curl_use_basic_auth(curl)
            _ = evt_curl_set_string(curl, CURLOPT_USERNAME, user)
            _ = evt_curl_set_string(curl, CURLOPT_PASSWORD, password)
        }
        if let path = settings.caCertificates {
            var status = stat()
            let isDirectory = stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
            _ = evt_curl_set_string(curl, isDirectory ? CURLOPT_CAPATH : CURLOPT_CAINFO, path)
        }
        if let certificate = settings.clientCertificate {
            _ = evt_curl_set_string(curl, CURLOPT_SSLCERT, certificate)
            _ = evt_curl_set_string(curl, CURLOPT_SSLKEY, settings.clientKey ?? certificate)
        }
    }

    deinit {
        curl_easy_cleanup(curl)
        curl_slist_free_all(headers)
        errorText.deallocate()
    }

    /// The schema registered as `id` (`GET /schemas/ids/ID`), from the cache after the first time.
    func schema(id: Int32) throws(EvtError) -> RegisteredSchema {
        if let known = schemas[id] { return known }
        let answer = try request("/schemas/ids/\(id)") { (code: String, message: String) -> String? in
            code == "40403" ? "schema id \(id) is not in the schema registry \(settings.redacted) (\(clause(message))). Check the id, or that evt asks the registry that wrote it" : nil
        }
        return try remember(answer.schema(id: id, what: "schema id \(id)"))
    }

    /// The newest version of `subject` (`GET /subjects/S/versions/latest`).
    func latest(subject: String) throws(EvtError) -> RegisteredSchema {
        try version(subject: subject, path: "latest")
    }

    /// Version `version` (1, 2, …) of `subject`.
    func version(subject: String, version: Int) throws(EvtError) -> RegisteredSchema {
        try self.version(subject: subject, path: String(version))
    }

    /// Registers `schema` under `subject` (`POST /subjects/S/versions`): its id, a new one or
    /// the one the registry already gave the same schema.
    func register(subject: String, schema: String, type: SchemaType) throws(EvtError) -> Int32 {
        let answer = try request("/subjects/\(Self.pathSegment(subject))/versions", body: type.registrationBody(schema)) {
            (code: String, message: String) -> String? in
            code.hasPrefix("422") || code.hasPrefix("409")
                ? "the schema registry \(settings.redacted) would not register the schema under subject \(subject): \(clause(message)). Fix the schema, or check the subject's compatibility setting"
                : nil
        }
        let id = try answer.id(what: "the registration under subject \(subject)")
        remember(RegisteredSchema(id: id, type: type, text: schema))
        return id
    }

    /// The id `schema` has under `subject` (`POST /subjects/S`), or nil when the subject or
    /// the schema under it is not registered.
    func lookup(subject: String, schema: String, type: SchemaType) throws(EvtError) -> Int32? {
        let answer: Answer
        do {
            answer = try request("/subjects/\(Self.pathSegment(subject))", body: type.registrationBody(schema)) { _, _ in nil }
        } catch let error where error.cause == .refused(code: "40401") || error.cause == .refused(code: "40403") {
            return nil
        }
        let id = try answer.id(what: "the look-up under subject \(subject)")
        remember(RegisteredSchema(id: id, type: type, text: schema))
        return id
    }

    private func version(subject: String, path: String) throws(EvtError) -> RegisteredSchema {
        let which = path == "latest" ? "subject \(subject)" : "subject \(subject) version \(path)"
        let answer = try request("/subjects/\(Self.pathSegment(subject))/versions/\(path)") { (code: String, message: String) -> String? in
            switch code {
            case "40401": return "subject \(subject) is not in the schema registry \(settings.redacted) (\(clause(message))). Check the name (a topic's subjects are TOPIC-value and TOPIC-key), or register a schema under it"
            case "40402", "42202": return "subject \(subject) has no version \(path) in the schema registry \(settings.redacted) (\(clause(message))). Name a version it has, or use the latest"
            default: return nil
            }
        }
        let id = try answer.id(what: which)
        return try remember(answer.schema(id: id, what: which))
    }

    @discardableResult
    private func remember(_ schema: RegisteredSchema) -> RegisteredSchema {
        schemas[schema.id] = schema
        return schema
    }

    /// `text` percent-encoded for one path segment: all but RFC 3986's unreserved characters.
    static func pathSegment(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// One request: GET `path`, or POST `body` to it. A 2xx answer is returned; any other
    /// becomes an error, with the message `explain` gives for the registry's error_code (or
    /// the HTTP status when it gave none) and its message, or a general one when it gives nil.
    private func request(_ path: String, body: [UInt8]? = nil,
                         explain: (_ code: String, _ message: String) -> String?) throws(EvtError) -> Answer {
        answer.removeAll(keepingCapacity: true)
        errorText.pointee = 0
        _ = evt_curl_set_string(curl, CURLOPT_URL, settings.baseURL + path)
        if let body {
            _ = evt_curl_set_long(curl, CURLOPT_POSTFIELDSIZE, body.count)
            _ = body.withUnsafeBufferPointer { bytes in
                bytes.withMemoryRebound(to: CChar.self) { evt_curl_set_string(curl, CURLOPT_COPYPOSTFIELDS, $0.baseAddress) }
            }
        } else {
            _ = evt_curl_set_long(curl, CURLOPT_HTTPGET, 1)
        }
        let result = curl_easy_perform(curl)
        guard result == CURLE_OK else { throw failure(result) }
        let status = evt_curl_response_code(curl)
        let answer = Answer(bytes: self.answer)
        if (200..<300).contains(status) {
            guard answer.isJSON else {
                throw EvtError(.refused(code: String(status)), "the schema registry \(settings.redacted) answered \(path) with something that is not JSON. Check that the URL is the registry's.")
            }
            return answer
        }
        let code = answer.text("error_code") ?? String(status)
        let message = answer.text("message") ?? "HTTP \(status)"
        switch status {
        case 401, 403:
            throw EvtError(.refused(code: String(status)), credentialsRefused(status: status, message: message))
        case 500...:
            throw EvtError(.transient(code: code), "the schema registry \(settings.redacted) failed (HTTP \(status): \(clause(message))). Try again later, or ask whoever runs it.")
        default:
            if let explained = explain(code, message) { throw EvtError(.refused(code: code), explained + ".") }
            throw EvtError(.refused(code: code), "the schema registry \(settings.redacted) refused \(path) (HTTP \(status), error \(code): \(clause(message))). Check that the URL is the registry's.")
        }
    }

    private func credentialsRefused(status: Int, message: String) -> String {
        let registry = "the schema registry \(settings.redacted)"
        guard let user = settings.user, let source = settings.credentialsSource else {
            return "\(registry) wants credentials (HTTP \(status): \(clause(message))). Set EVT_SCHEMA_REGISTRY_USER and EVT_SCHEMA_REGISTRY_PASSWORD, "
                + "or give them in the URL as http[s]://USER:PASSWORD@HOST (with @ and : in them percent-encoded as %40 and %3A)."
        }
        if status == 403 {
            return "\(registry) does not let user \(user) (from \(source)) do this (HTTP 403: \(clause(message))). Use an account that may read and register schemas."
        }
        return "\(registry) refused the password of user \(user) (from \(source); HTTP 401: \(clause(message))). Check them; in a URL, percent-encode @ and : in the password as %40 and %3A."
    }

    private func failure(_ result: CURLcode) -> EvtError {
        let detail = errorText.pointee != 0 ? String(cString: errorText) : String(cString: curl_easy_strerror(result))
        let registry = "the schema registry \(settings.redacted)"
        let mayWantCertificate = settings.baseURL.hasPrefix("https://") && settings.clientCertificate == nil
        switch result {
        case CURLE_ABORTED_BY_CALLBACK:
            return EvtError(.stopped, "stopped while waiting for \(registry).")
        case CURLE_OPERATION_TIMEDOUT:
            return EvtError(.connectionLost, "\(registry) did not answer within \(Self.seconds(timeoutSeconds)) (\(clause(detail))). Check that it runs there and is reachable.")
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE:
            return EvtError(.refused(code: "CURLE_\(result.rawValue)"), "cannot verify \(registry) (\(clause(detail))). Give the CA that signed its certificate with EVT_SCHEMA_REGISTRY_CACERT=FILE.")
        case CURLE_SSL_CERTPROBLEM:
            return EvtError(.refused(code: "CURLE_\(result.rawValue)"), "cannot use the client certificate for \(registry) (\(clause(detail))). Check EVT_SCHEMA_REGISTRY_CERT and EVT_SCHEMA_REGISTRY_KEY (PEM files).")
        case CURLE_SSL_CONNECT_ERROR:
            return EvtError(.refused(code: "CURLE_\(result.rawValue)"), "the TLS handshake with \(registry) failed (\(clause(detail))). If it wants a client certificate, give it with EVT_SCHEMA_REGISTRY_CERT and EVT_SCHEMA_REGISTRY_KEY.")
        case CURLE_WRITE_ERROR:
            return EvtError(.refused(code: "CURLE_\(result.rawValue)"), "\(registry) sent an answer larger than \(Self.answerLimit >> 20) MiB. Check that the URL is the registry's.")
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT:
            return EvtError(.usage, "cannot use \(registry) (\(clause(detail))). Give an http:// or https:// URL.")
        case CURLE_RECV_ERROR where mayWantCertificate, CURLE_SEND_ERROR where mayWantCertificate:
            // With TLS 1.3 a server that wants a client certificate says so only after the
            // handshake, as an alert on the first read: curl reports a failed read.
            return EvtError(.connectionLost, "cannot reach \(registry) (\(clause(detail))). Check that it runs there; if it wants a client certificate, give it with EVT_SCHEMA_REGISTRY_CERT and EVT_SCHEMA_REGISTRY_KEY.")
        default:
            // Refused, reset, resolved to nothing, closed mid-answer: the registry may be back later.
            return EvtError(.connectionLost, "cannot reach \(registry) (\(clause(detail))). Check that it runs there (--schema-registry or EVT_SCHEMA_REGISTRY_URL).")
        }
    }

    private static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }
}

/// A registry's JSON answer (validated), read with evt's own JSON scanner.
private struct Answer {
    let bytes: [UInt8]
    let isJSON: Bool

    init(bytes: [UInt8]) {
        self.bytes = bytes
        isJSON = bytes.withUnsafeBytes { (try? JSON.validate($0)) == .object }
    }

    /// A top-level member's text: a string unescaped, a number as written; nil if absent.
    func text(_ name: String) -> String? {
        guard isJSON else { return nil }
        return bytes.withUnsafeBytes { raw -> String? in
            guard let (range, kind) = JSON.find(path: [Array(name.utf8)], in: raw) else { return nil }
            let value = UnsafeRawBufferPointer(rebasing: raw[range])
            switch kind {
            case .string:
                var out: [UInt8] = []
                JSON.appendUnescaped(stringLiteral: value, to: &out)
                return String(decoding: out, as: UTF8.self)
            case .number:
                return String(decoding: value, as: UTF8.self)
            default:
                return nil
            }
        }
    }

    func id(what: String) throws(EvtError) -> Int32 {
        guard let text = text("id"), let id = Int32(text) else { throw malformed(what, "no schema id") }
        return id
    }

    func schema(id: Int32, what: String) throws(EvtError) -> RegisteredSchema {
        guard let schema = text("schema") else { throw malformed(what, "no schema text") }
        let typeName = text("schemaType") ?? SchemaType.avro.rawValue
        guard let type = SchemaType(rawValue: typeName) else {
            throw EvtError(.refused(code: ""), "\(what) is a schema of type \(typeName), which evt does not know: it reads AVRO, JSON and PROTOBUF.")
        }
        return RegisteredSchema(id: id, type: type, text: schema)
    }

    private func malformed(_ what: String, _ missing: String) -> EvtError {
        EvtError(.refused(code: ""), "the schema registry's answer for \(what) holds \(missing). Check that the URL is a Confluent-compatible schema registry.")
    }
}

/// libcurl's write callback: appends the answer's bytes to the registry's buffer.
private func receiveAnswer(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let registry = Unmanaged<SchemaRegistry>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    guard registry.answer.count + length <= SchemaRegistry.answerLimit else { return 0 }   // CURLE_WRITE_ERROR
    registry.answer.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length))
    return length
}

/// libcurl's progress callback: a stop signal (SIGINT, SIGTERM) ends a request that waits.
private func abortOnStopSignal(_ context: UnsafeMutableRawPointer?, _ downloadTotal: curl_off_t, _ downloaded: curl_off_t,
                               _ uploadTotal: curl_off_t, _ uploaded: curl_off_t) -> Int32 {
    Signals.stopRequested ? 1 : 0
}
