/// `evt tail SOURCE [-n N] [-f]`: the last N events, oldest first, then (with -f) new ones.
public enum TailCommand {
    public static func run(_ arguments: ParsedArguments, environment: [String: String]) throws -> ExitStatus {
        let spec = arguments.spec
        guard arguments.operands.count == 1 else {
            throw EvtError.usage(arguments.operands.isEmpty
                                 ? "tail needs a SOURCE, e.g. topic:orders or stream:orders."
                                 : "tail reads one SOURCE; got \(arguments.operands.count).", usage: spec.usageLine)
        }
        let source = try Endpoint.parse(arguments.operands[0], environment: environment)
        let count = try arguments.number("lines", minimum: 0) ?? 10
        let follow = arguments.flag("follow")
        if source.has(.pubSub) && !follow {
            throw EvtError.usage("a channel keeps no history: use evt tail \(arguments.operands[0]) -f to print messages as they arrive.", usage: spec.usageLine)
        }
        if source.has(.queue) && follow {
            throw EvtError.usage("tail -f on a list would have to pop items; use evt subscribe to consume a list as a queue.", usage: spec.usageLine)
        }
        let key = try arguments.recordKey(for: source)
        let matcher = try arguments.recordMatcher()
        let decoding = try arguments.schemaDecoding(environment: environment)
        let output = OutputWriter()
        do {
            if source.has(.history) {
                // A topic or a stream: the last N of each partition are a read from -N.
                var options = CopyOptions()
                options.kafka = try arguments.kafkaSettings()
                options.key = key
                // Many records into a file or a pipe: a progress line on the terminal.
                let progress = ProgressLine(verb: "read", when: count > 100_000 && !stdoutIsATerminal())
                defer { progress.clear() }
                try CopyLoop(follow: follow, ridesOutOutages: false, range: (.fromEnd(Int64(count)), nil), matcher: matcher, decoding: decoding,
                             afterRecord: progress.isOn ? { progress.advance() } : nil,
                             source: { try Backends.copySource(for: source, options: options) },
                             target: { _ in NDJSONTarget(output: output) }).run()
            } else {
                // A list or a channel: no positions, but the same records into the same target.
                let target = NDJSONTarget(output: output)
                let cursor = SourceCursor(SourcePosition())
                func handOver(_ record: Record) throws {
                    if matcher?.matches(record) ?? true { _ = try target.write(record, after: cursor) }
                }
                try Backends.source(for: source).tail(count: count, follow: follow, into: Record(), { record in
                    try decoding.map { try $0.handOver(record, handOver) } ?? handOver(record)
                }, batchEnded: { try target.reached(cursor, batchEnded: true) })
            }
            try output.flush()
        } catch is StdoutClosed {
            return .success
        }
        return Signals.exitStatusAfterSignal ?? .success
    }
}
