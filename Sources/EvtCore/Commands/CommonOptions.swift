/// Options that several commands share, read one way for all of them.
extension ParsedArguments {
    /// `-F FILE` then `-X KEY=VALUE`, in that order (later wins), as in kcat (librdkafka
    /// itself validates them when the client is made), and `-v`.
    func kafkaSettings() throws -> KafkaSettings {
        var properties: [(String, String)] = []
        if let file = value("property-file") {
            properties += try KafkaConfig.properties(fromFile: file)
        }
        properties += try KafkaConfig.properties(fromArguments: values("property"))
        // The endpoint names the brokers; a second, silent source of them would be a trap.
        if let (key, _) = properties.first(where: { $0.0 == "bootstrap.servers" || $0.0 == "metadata.broker.list" }) {
            throw EvtError.usage("\(key) comes from the endpoint (kafka://HOST:PORT/TOPIC) or EVT_KAFKA_BROKERS, not from -X/-F.")
        }
        return KafkaSettings(properties: properties, verbose: flag("verbose"))
    }

    /// `--wait-replicas N`: how many Redis replicas must have a write before it counts.
    func waitReplicas() throws -> Int? {
        guard let text = value("wait-replicas") else { return nil }
        guard let number = Int(text), number >= 1 else {
            throw EvtError.usage("--wait-replicas \(text): expected a number of replicas, 1 or more.", usage: spec.usageLine)
        }
        return number
    }

    /// `--format NAME`: one of `F`'s cases; without it, `onATerminal` when stdout is a
    /// terminal (a person reads it), else `otherwise` (a program does).
    func format<F: RawRepresentable & CaseIterable>(_: F.Type, onATerminal: F, otherwise: F) throws -> F where F.RawValue == String {
        guard let text = value("format") else { return stdoutIsATerminal() ? onATerminal : otherwise }
        guard let chosen = F(rawValue: text) else {
            let names = F.allCases.map(\.rawValue)
            let choices = names.dropLast().joined(separator: ", ") + " or " + names.last!
            throw EvtError.usage("--format takes \(choices), not \(text).", usage: spec.usageLine)
        }
        return chosen
    }

    /// `--timeout DURATION`: how long to wait for acknowledgements (default 30 s).
    func timeoutMs() throws -> Int {
        guard let text = value("timeout") else { return 30_000 }
        let milliseconds = try DurationParser.milliseconds(text, option: "--timeout")
        guard milliseconds > 0 else {
            throw EvtError.usage("--timeout must be more than 0 (librdkafka reads 0 as \"wait forever\").", usage: spec.usageLine)
        }
        return milliseconds
    }
}

extension ParsedArguments {
    /// `--match FIELD=PATTERN` (tail, replay-from-offset, subscribe); nil when none is given,
    /// so that nothing is checked.
    func recordMatcher() throws -> RecordMatcher? {
        let words = values("match")
        guard !words.isEmpty else { return nil }
        return RecordMatcher(try words.map { try RecordMatcher.Condition(matchOption: $0, usage: spec.usageLine) })
    }
}

extension ParsedArguments {
    /// `--key KEY` (tail, replay-from-offset, count of a topic): the key's bytes, checked
    /// against what `source` can do.
    func recordKey(for source: Endpoint) throws -> [UInt8]? {
        let key = value("key")
        try source.require([("--key", key != nil, .keysAndHeaders)], usage: spec.usageLine)
        return key.map { Array($0.utf8) }
    }
}

extension RecordMatcher.Condition {
    /// One `--match` word: `key=GLOB`, `header.NAME=GLOB` or `value.PATH=VALUE`.
    init(matchOption word: String, usage: String?) throws {
        guard let equals = word.firstIndex(of: "=") else {
            throw EvtError.usage("--match \(word): expected key=GLOB, header.NAME=GLOB or value.PATH=VALUE.", usage: usage)
        }
        let field = word[..<equals]
        let wanted = String(word[word.index(after: equals)...])
        if field == "key" {
            self = .key(glob: wanted)
        } else if field.hasPrefix("header."), field.count > "header.".count {
            self = .header(name: String(field.dropFirst("header.".count)), glob: wanted)
        } else if field == "value" || field.hasPrefix("value.") {
            let path = field.split(separator: ".", omittingEmptySubsequences: false).dropFirst().map(String.init)
            guard !path.contains(where: \.isEmpty) else {
                throw EvtError.usage("--match \(word): a PATH has no empty parts (value.user.id).", usage: usage)
            }
            self = .value(path: path, equals: wanted)
        } else {
            throw EvtError.usage("--match \(word): expected key=GLOB, header.NAME=GLOB or value.PATH=VALUE, not \(field)=….", usage: usage)
        }
    }
}
