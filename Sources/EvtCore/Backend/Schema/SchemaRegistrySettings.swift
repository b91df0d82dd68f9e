#if canImport(Glibc)
import Glibc
#endif

/// Where the schema registry is and how to reach it (CONTRACT.md, "Schemas"): its URL from
/// `--schema-registry` or EVT_SCHEMA_REGISTRY_URL, basic-auth credentials, and the files
/// for https. Prints itself redacted: no description of it holds the password.
struct SchemaRegistrySettings: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// `http[s]://HOST[:PORT][/PATH]` without userinfo or a trailing slash: request paths
    /// (`/schemas/ids/1`) are appended to it.
    var baseURL: String
    /// The URL for messages: as given, with any password replaced by `***`.
    var redacted: String
    var user: String?
    var password: String?
    /// Where the credentials came from, for the message when the registry refuses them.
    var credentialsSource: String?
    /// EVT_SCHEMA_REGISTRY_CACERT: the CAs that vouch for an https registry, instead of the
    /// system's.
    var caCertificates: String?
    /// EVT_SCHEMA_REGISTRY_CERT / _KEY: a client certificate for a registry that wants one.
    var clientCertificate: String?
    var clientKey: String?

    var description: String { redacted }
    var debugDescription: String { redacted }

    /// The settings `--schema-registry URL` (`url`) or EVT_SCHEMA_REGISTRY_URL ask for; nil
    /// when neither names a registry. User and password come from EVT_SCHEMA_REGISTRY_USER
    /// and _PASSWORD, else from the URL's userinfo, percent-decoded (so a password may hold
    /// `@` or `:`).
    static func resolve(url: String?, environment: [String: String]) throws(EvtError) -> SchemaRegistrySettings? {
        let given = url ?? environment["EVT_SCHEMA_REGISTRY_URL"].flatMap { $0.isEmpty ? nil : $0 }
        guard let text = given else { return nil }
        let origin = url != nil ? "--schema-registry" : "EVT_SCHEMA_REGISTRY_URL"
        let redacted = Endpoint.redactingPassword(text)
        let shape = "\(origin) must look like http[s]://[USER:PASSWORD@]HOST[:PORT][/PATH], not \(redacted.isEmpty ? "an empty string" : redacted)"
        let lowered = text.lowercased()
        let scheme = lowered.hasPrefix("https://") ? "https://" : lowered.hasPrefix("http://") ? "http://" : nil
        guard let scheme, !text.contains("?"), !text.contains("#") else { throw EvtError.usage(shape + ".") }
        var rest = Substring(text.dropFirst(scheme.count))
        var userinfo: Substring?
        if let at = rest.lastIndex(of: "@"), !rest[..<at].contains("/") {
            userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
        }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let host = rest.split(separator: "/", omittingEmptySubsequences: false).first, !host.isEmpty,
              !host.hasPrefix(":") else {
            throw EvtError.usage(shape + ": it names no host.")
        }
        var settings = SchemaRegistrySettings(baseURL: scheme + rest, redacted: redacted)

        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        let user = value("EVT_SCHEMA_REGISTRY_USER")
        let password = environment["EVT_SCHEMA_REGISTRY_PASSWORD"]
        if user != nil || password != nil {
            guard let user, let password else {
                throw EvtError.usage("EVT_SCHEMA_REGISTRY_USER and EVT_SCHEMA_REGISTRY_PASSWORD go together: set both, or neither.")
            }
            settings.user = user
            settings.password = password
            settings.credentialsSource = "EVT_SCHEMA_REGISTRY_USER and EVT_SCHEMA_REGISTRY_PASSWORD"
        } else if let userinfo {
            let bad = { (why: String) in EvtError.usage("bad \(origin) \(redacted): \(why).") }
            guard let colon = userinfo.firstIndex(of: ":") else {
                throw bad("its userinfo needs USER:PASSWORD (percent-encode @ and : inside them as %40 and %3A)")
            }
            guard let user = try? Endpoint.percentDecoded(String(userinfo[..<colon]), bad: bad),
                  let password = try? Endpoint.percentDecoded(String(userinfo[userinfo.index(after: colon)...]), bad: bad) else {
                throw bad("a % in its userinfo must be followed by two hex digits")
            }
            settings.user = user
            settings.password = password
            settings.credentialsSource = "the user:password@ of \(origin)"
        }
        settings.caCertificates = value("EVT_SCHEMA_REGISTRY_CACERT")
        settings.clientCertificate = value("EVT_SCHEMA_REGISTRY_CERT")
        settings.clientKey = value("EVT_SCHEMA_REGISTRY_KEY")
        if settings.clientKey != nil && settings.clientCertificate == nil {
            throw EvtError.usage("EVT_SCHEMA_REGISTRY_KEY is set without EVT_SCHEMA_REGISTRY_CERT: give the client certificate too.")
        }
        let files = [("EVT_SCHEMA_REGISTRY_CACERT", settings.caCertificates), ("EVT_SCHEMA_REGISTRY_CERT", settings.clientCertificate),
                     ("EVT_SCHEMA_REGISTRY_KEY", settings.clientKey)]
        for case let (name, path?) in files {
            guard access(path, R_OK) == 0 else {
                throw EvtError.usage("cannot read \(path) (\(name)): \(String(cString: strerror(errno))).")
            }
        }
        return settings
    }

    private init(baseURL: String, redacted: String) {
        self.baseURL = baseURL
        self.redacted = redacted
    }
}
