/// `--schema-registry`, `--decode`, `--value-schema`, `--key-schema` and `--register`, read
/// one way for every command that takes them (CONTRACT.md, "Schemas").
extension ParsedArguments {
    /// The registry named by `--schema-registry URL` or EVT_SCHEMA_REGISTRY_URL; nil for none.
    func schemaRegistry(environment: [String: String]) throws -> SchemaRegistry? {
        guard let settings = try SchemaRegistrySettings.resolve(url: value("schema-registry"), environment: environment) else {
            return nil
        }
        // A command with --timeout waits that long for the registry too; any other, 30 s.
        let timeoutMs = spec.option(named: "timeout") != nil ? try timeoutMs() : 30_000
        return try SchemaRegistry(settings, timeout: Double(timeoutMs) / 1000)
    }

    /// The read step: framed keys and values decoded with the registry's schemas; nil when no
    /// registry is configured or `--decode none` turns it off.
    func schemaDecoding(environment: [String: String]) throws -> SchemaDecoding? {
        switch value("decode") ?? "auto" {
        case "none": return nil
        case "auto": break
        case let other:
            throw EvtError.usage("--decode \(other): expected auto (decode what a registry's schema framed, the default) or none.", usage: spec.usageLine)
        }
        // `--decode auto` without a registry decodes nothing, as `auto` says: a script may
        // pass it whether or not the environment names one.
        guard let registry = try schemaRegistry(environment: environment) else { return nil }
        return SchemaDecoding(codecs: SchemaCodecs(fetch: { (id) throws(EvtError) in try registry.schema(id: id) }))
    }

    /// The write step for records going to `target` (a topic, stream or list name: its
    /// subjects are TARGET-value and TARGET-key): nil when no schema applies. Without
    /// `--value-schema`/`--key-schema`, an envelope's value_schema_id still needs a registry,
    /// so one configured is used for those. With `dryRun`, a schema file needs no registry.
    func schemaEncoding(target: String, environment: [String: String], dryRun: Bool = false) throws -> SchemaEncoding? {
        let valueSpec = try value("value-schema").map { try SchemaSpec($0, fileExists: isRegularFile) }
        let keySpec = try value("key-schema").map { try SchemaSpec($0, fileExists: isRegularFile) }
        let registering = flag("register")
        if registering && ![valueSpec, keySpec].contains(where: { if case .file = $0 { true } else { false } }) {
            throw EvtError.usage("--register registers a schema file: give --value-schema FILE (or --key-schema FILE).", usage: spec.usageLine)
        }
        let localOnly = dryRun && [valueSpec, keySpec].allSatisfy { spec in
            if case .file = spec { return true }
            return spec == nil
        } && !registering
        let registry = localOnly ? nil : try schemaRegistry(environment: environment)
        if registry == nil && valueSpec == nil && keySpec == nil { return nil }
        var local: [Int32: RegisteredSchema] = [:]
        var names: [Int32: String] = [:]
        func resolve(_ spec: SchemaSpec?, forKey: Bool) throws -> Int32? {
            guard let spec else { return nil }
            let subject = SchemaSpec.topicSubject(target, forKey: forKey)
            let option = forKey ? "--key-schema" : "--value-schema"
            if case .file(let path) = spec {
                let text = try readText(path, what: "\(option) file")
                guard let type = SchemaType(fileName: path) else {
                    throw EvtError.usage("\(option) \(path): evt tells a schema's kind by its name: .avsc for Avro, .json for JSON Schema.", usage: self.spec.usageLine)
                }
                guard let registry else {
                    guard dryRun else {
                        throw EvtError.usage("\(option) \(path): records framed with a schema need its id from a registry: give --schema-registry URL or set EVT_SCHEMA_REGISTRY_URL (--dry-run checks a file without one).", usage: self.spec.usageLine)
                    }
                    // A dry run with a local file: checked here, sent nowhere (its id, below 0,
                    // frames nothing).
                    let id = Int32(-1 - local.count)
                    local[id] = RegisteredSchema(id: id, type: type, text: text)
                    names[id] = path
                    return id
                }
                if registering {
                    let id = try registry.register(subject: subject, schema: text, type: type)
                    names[id] = "\(subject), from \(path)"
                    return id
                }
                guard let id = try registry.lookup(subject: subject, schema: text, type: type) else {
                    throw EvtError(.refused(code: "40403"), "\(path) is not registered under subject \(subject) at \(registry.settings.redacted). Register it with --register, or name a registered schema (an id or SUBJECT[:VERSION]).")
                }
                names[id] = "\(subject), from \(path)"
                return id
            }
            guard let registry else {
                throw EvtError.usage("\(option) \(value(forKey ? "key-schema" : "value-schema") ?? "") names a schema in a registry: give --schema-registry URL or set EVT_SCHEMA_REGISTRY_URL (a schema file needs none with --dry-run).", usage: self.spec.usageLine)
            }
            let schema: RegisteredSchema
            switch spec {
            case .id(let id): schema = try registry.schema(id: id)
            case .topicSubject: schema = try registry.latest(subject: subject)
            case .subject(let name, nil): schema = try registry.latest(subject: name)
            case .subject(let name, let version?): schema = try registry.version(subject: name, version: version)
            case .file: preconditionFailure("handled above")
            }
            names[schema.id] = switch spec {
            case .topicSubject: subject
            case .subject(let name, _): name
            default: nil
            }
            return schema.id
        }
        let valueID = try resolve(valueSpec, forKey: false)
        let keyID = try resolve(keySpec, forKey: true)
        let codecs = SchemaCodecs(fetch: { (id) throws(EvtError) -> RegisteredSchema in
            if let schema = local[id] { return schema }
            guard let registry else { throw EvtError(.usage, "no schema registry to fetch schema \(id) from") }
            return try registry.schema(id: id)
        })
        // A schema that does not parse is a usage error before any line is read.
        for (id, option) in [(valueID, "--value-schema"), (keyID, "--key-schema")] {
            guard let id else { continue }
            switch codecs.codec(id: id) {
            case .unusable(let error), .json(.failure(let error)):
                let name = id < 0 ? names[id] ?? "" : "\(id)" + (names[id].map { " (\($0))" } ?? "")
                throw EvtError(error.cause == .connectionLost ? error.cause : .usage, "\(option) \(name): \(error.message)")
            case .avro, .json(.success): break
            }
        }
        return SchemaEncoding(codecs: codecs, valueSchema: valueID, keySchema: keyID, names: names)
    }
}

extension SchemaType {
    /// The kind of a schema file, by its name: `.avsc` is Avro, `.json` JSON Schema.
    init?(fileName: String) {
        if fileName.hasSuffix(".avsc") { self = .avro } else if fileName.hasSuffix(".json") { self = .json } else { return nil }
    }
}

extension CopyOptions {
    /// Schemas on a copy or a replay into `target` (CONTRACT.md, "Schemas"): into a topic,
    /// values go encoded (`--value-schema`, or an entry's `value.schema_id`) and a record from
    /// a topic keeps its bytes; into anything else, framed values are decoded (the returned
    /// step, nil when none applies).
    mutating func useSchemas(_ arguments: ParsedArguments, target: Endpoint, environment: [String: String]) throws -> SchemaDecoding? {
        guard target.has(.keysAndHeaders) else {
            if arguments.value("value-schema") != nil || arguments.value("key-schema") != nil {
                throw EvtError.usage("--value-schema and --key-schema encode records for a topic; \(target.kindName) entries take the decoded JSON as it is.", usage: arguments.spec.usageLine)
            }
            return try arguments.schemaDecoding(environment: environment)
        }
        encoding = try arguments.schemaEncoding(target: target.subjectName, environment: environment)
        return nil
    }
}
