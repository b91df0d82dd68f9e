#if canImport(Glibc)
import Glibc
#endif
internal import CRdKafka

/// What every Kafka client of one command is made with: the user's `-F`/`-X` properties and
/// `-v`, passed down from the command line to each client.
struct KafkaSettings {
    var properties: [(String, String)] = []
    /// Shows librdkafka's own log lines; otherwise only its errors, once per kind.
    var verbose = false
    /// What librdkafka reported about the brokers: one per run, shared by all its clients.
    var brokerErrors = KafkaBrokerErrors()

    /// These settings with more properties after the user's (so they win).
    func adding(_ more: [(String, String)]) -> KafkaSettings {
        KafkaSettings(properties: properties + more, verbose: verbose, brokerErrors: brokerErrors)
    }
}

/// Builds librdkafka configurations: evt's defaults first, then the user's `-F` file and
/// `-X` properties, which librdkafka itself validates (as kcat does).
enum KafkaConfig {
    /// `defaults`, then `settings.properties` (later wins), with evt's log and error callbacks.
    static func make(_ defaults: [(String, String)], _ settings: KafkaSettings) throws -> OpaquePointer {
        let properties = defaults + settings.properties
        let conf = rd_kafka_conf_new()!
        for (key, value) in properties {
            // librdkafka says only "ssl.ca.location failed: …system lib" for a file it cannot open.
            if KafkaConfig.fileProperties.contains(key) && value != "probe" && access(value, R_OK) != 0 {
                rd_kafka_conf_destroy(conf)
                throw EvtError.usage("Kafka property \(key)=\(value): cannot read it: \(String(cString: strerror(errno))).")
            }
            var errorText = [CChar](repeating: 0, count: 512)
            if rd_kafka_conf_set(conf, key, value, &errorText, errorText.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                if key == "sasl.oauthbearer.method" && value.lowercased() == "oidc" {
                    // This build refused it (Debian's 2.0.2 is built without libcurl); a build
                    // that has OIDC takes it, and then nothing is said.
                    throw EvtError.usage("-X sasl.oauthbearer.method=oidc: this librdkafka (\(libraryVersion), Debian's build) has no OIDC support (it needs libcurl), so evt cannot fetch OAuth tokens itself. Use a mechanism the cluster also offers (-X sasl.mechanisms=SCRAM-SHA-512 or PLAIN with sasl.username and sasl.password), or run evt with a librdkafka built with OIDC (Confluent's packages).")
                }
                // Never the value: a refused property is often a mistyped secret
                // (sasl.passwrd, SASL.PASSWORD), and librdkafka quotes some values it refuses.
                throw EvtError.usage("Kafka property \(key) was refused (its value is not shown): \(masking(value, in: text(errorText))).")
            }
        }
        // The error callback finds the run's KafkaBrokerErrors through the client's opaque
        // (KafkaClientContext); the verbosity picks the callbacks.
        if settings.verbose {
            rd_kafka_conf_set_log_cb(conf, kafkaLog)
            rd_kafka_conf_set_error_cb(conf, kafkaErrorEvery)
        } else {
            rd_kafka_conf_set_log_cb(conf, kafkaLogNothing)
            rd_kafka_conf_set_error_cb(conf, kafkaErrorOnce)
        }
        return conf
    }

    static func text(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A setting of client `rk` as librdkafka holds it; nil when unset or empty. Never asked
    /// for a secret.
    static func setting(_ name: String, of rk: OpaquePointer?) -> String? {
        guard let rk else { return nil }
        var text = [CChar](repeating: 0, count: 1024)
        var size = text.count
        guard rd_kafka_conf_get(rd_kafka_conf(rk), name, &text, &size) == RD_KAFKA_CONF_OK else { return nil }
        let value = KafkaConfig.text(text)
        return value.isEmpty ? nil : value
    }

    static func errorText(_ err: rd_kafka_resp_err_t) -> String {
        String(cString: rd_kafka_err2str(err))
    }

    /// What librdkafka's `err` means for a caller deciding to retry: a broker that cannot be
    /// reached or answer in time is a lost connection (as a lost Redis is); anything else is
    /// refused, with the code's name (`UNKNOWN_TOPIC_OR_PART`, `_MSG_SIZE_TOO_LARGE`).
    static func cause(_ err: rd_kafka_resp_err_t) -> FailureCause {
        switch err {
        case RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, RD_KAFKA_RESP_ERR__TIMED_OUT,
             RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
             RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION, RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
            return .connectionLost
        default:
            return .refused(code: String(cString: rd_kafka_err2name(err)))
        }
    }

    /// `message` (which says what failed and why) with the cause of `err`.
    static func error(_ err: rd_kafka_resp_err_t, _ message: String) -> EvtError {
        EvtError(cause(err), message)
    }

    /// Properties that name a file (or a directory of CAs) librdkafka opens when the client is made.
    static let fileProperties: Set<String> = ["ssl.ca.location", "ssl.certificate.location", "ssl.key.location",
                                              "ssl.crl.location", "ssl.keystore.location"]

    /// Whether a property's value must never be shown: any name that holds "password",
    /// "secret", "key" or "token" in any case (a mistyped one too), and sasl.oauthbearer.config,
    /// which librdkafka itself redacts. Not the file properties: their value is a path, and
    /// the message about a file that cannot be read must name it.
    static func isSecret(_ key: String) -> Bool {
        if fileProperties.contains(key) { return false }
        let name = key.lowercased()
        return ["password", "secret", "key", "token"].contains { name.contains($0) } || name == "sasl.oauthbearer.config"
    }

    /// librdkafka's reason for refusing a property, with the value it quotes (`Invalid value
    /// "…"`) replaced by `***`.
    private static func masking(_ value: String, in reason: String) -> String {
        let reason = reason.trimmingWhitespace()
        guard !value.isEmpty else { return reason }
        return reason.replacing("\"\(value)\"", with: "\"***\"")
    }

    /// Reads a `-F` properties file: KEY=VALUE lines, `#` comments, blank lines. A file that
    /// holds secrets and that group or others may read gets a warning (the values are not shown).
    static func properties(fromFile path: String) throws -> [(String, String)] {
        guard let contents = readWholeFile(path) else {
            throw EvtError.usage("cannot read the properties file \(path): \(String(cString: strerror(errno))).")
        }
        defer { warnIfExposed(path, contents) }
        var result: [(String, String)] = []
        for (number, rawLine) in contents.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw EvtError.usage("\(path):\(number + 1): expected KEY=VALUE.")
            }
            result.append((String(line[..<equals]).trimmingWhitespace(),
                           String(line[line.index(after: equals)...]).trimmingWhitespace()))
        }
        return result
    }

    /// The warning for a properties file with secrets in it that is readable beyond its owner.
    private static func warnIfExposed(_ path: String, _ contents: String) {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & (S_IRGRP | S_IROTH) != 0 else { return }
        let secrets = contents.split(separator: "\n").compactMap { line -> String? in
            guard let equals = line.firstIndex(of: "=") else { return nil }
            let key = line[..<equals].trimmingWhitespace()
            return !key.hasPrefix("#") && isSecret(key) ? key : nil
        }
        guard !secrets.isEmpty else { return }
        let readers = info.st_mode & S_IROTH != 0 ? "anyone on this machine" : "its group"
        let mode = String(info.st_mode & 0o777, radix: 8)
        Diagnostics.print("warning: the properties file \(path) holds \(secrets.joined(separator: ", ")) and \(readers) can read it (mode \(mode)); make it private: chmod 600 \(path)")
    }

    /// `-X key=value` words.
    static func properties(fromArguments words: [String]) throws -> [(String, String)] {
        try words.map { word in
            guard let equals = word.firstIndex(of: "="), equals != word.startIndex else {
                // `-X sasl.password:S` or `-X =S` may hold a secret: not shown then.
                let shown = word.hasPrefix("=") || isSecret(word) ? "" : " \(word)"
                throw EvtError.usage("-X\(shown): expected KEY=VALUE, as in kcat (e.g. -X linger.ms=10).")
            }
            return (String(word[..<equals]), String(word[word.index(after: equals)...]))
        }
    }
}

private func kafkaLog(_ rk: OpaquePointer?, _ level: Int32, _ facility: UnsafePointer<CChar>?, _ message: UnsafePointer<CChar>?) {
    guard let message else { return }
    Diagnostics.print("kafka: \(facility.map { String(cString: $0) } ?? ""): \(String(cString: message))")
}

private func kafkaLogNothing(_ rk: OpaquePointer?, _ level: Int32, _ facility: UnsafePointer<CChar>?, _ message: UnsafePointer<CChar>?) {}

/// -v: every error librdkafka reports (a refusal is also filed, to end the command).
private func kafkaErrorEvery(_ rk: OpaquePointer?, _ err: Int32, _ reason: UnsafePointer<CChar>?, _ opaque: UnsafeMutableRawPointer?) {
    let text = reason.map { String(cString: $0) } ?? "error \(err)"
    if let opaque { KafkaClientContext.of(opaque).brokerErrors.note(err, reason: text, client: rk) }
    Diagnostics.print("kafka: \(text)")
}

/// Otherwise each kind of error once (a broker that is down reports it every second), and
/// every fatal one; a refusal only through the message that ends the command.
private func kafkaErrorOnce(_ rk: OpaquePointer?, _ err: Int32, _ reason: UnsafePointer<CChar>?, _ opaque: UnsafeMutableRawPointer?) {
    let text = reason.map { String(cString: $0) } ?? "error \(err)"
    guard let opaque else { return }
    let show = KafkaClientContext.of(opaque).brokerErrors.note(err, reason: text, client: rk)
    guard show || err == RD_KAFKA_RESP_ERR__FATAL.rawValue else { return }
    Diagnostics.print("kafka: \(text)")
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        let text = String(self)
        guard let first = text.firstIndex(where: { !$0.isWhitespace }) else { return "" }
        let last = text.lastIndex(where: { !$0.isWhitespace })!
        return String(text[first...last])
    }
}

extension KafkaConfig {
    static var libraryVersion: String { String(cString: rd_kafka_version_str()) }
}
