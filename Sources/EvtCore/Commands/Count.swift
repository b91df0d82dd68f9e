/// `evt count SOURCE [POSITION [--until POSITION]] [--match F=P]... [--key KEY] [--exact]`:
/// how many records a topic, stream or list holds, as one NDJSON line. Without a range or a
/// filter the server's own figures answer (a topic's watermarks, XLEN, LLEN); otherwise the
/// records are read as replay reads them and counted, keeping none.
public enum CountCommand {
    public static func run(_ arguments: ParsedArguments, environment: [String: String]) throws -> ExitStatus {
        let spec = arguments.spec
        guard (1...2).contains(arguments.operands.count) else {
            throw EvtError.usage(arguments.operands.isEmpty
                                 ? "count needs a SOURCE, e.g. evt count topic:orders or evt count stream:orders."
                                 : "count takes a SOURCE and at most one POSITION; got \(arguments.operands.count) operands.",
                                 usage: spec.usageLine)
        }
        let source = try Endpoint.parse(arguments.operands[0], environment: environment)
        if source.has(.pubSub) {
            throw EvtError.usage("a channel keeps nothing to count: a message is gone once delivered. evt ls channel:\(source.name) shows its subscribers.", usage: spec.usageLine)
        }
        let from = try arguments.operands.count == 2 ? Position.parse(arguments.operands[1], option: "POSITION") : nil
        let until = try arguments.value("until").map { try Position.parse($0, option: "--until") }
        let exactly = arguments.flag("exact")
        try source.require([("a POSITION", from != nil, .history), ("--until", until != nil, .history),
                            ("--match", !arguments.values("match").isEmpty, .history)], usage: spec.usageLine)
        var options = CopyOptions()
        options.kafka = try arguments.kafkaSettings()
        options.key = try arguments.recordKey(for: source)
        let matcher = try arguments.recordMatcher()
        // Keys and values are decoded only for --match to look into.
        let decoding = matcher == nil ? nil : try arguments.schemaDecoding(environment: environment)

        let count: SourceCount
        if from == nil && until == nil && matcher == nil && options.key == nil {
            let figures = try Backends.count(source, kafka: options.kafka)
            if figures.exact || !exactly {
                count = figures
            } else {
                count = try countByReading(source, from: .beginning, until: nil, matcher: nil, decoding: decoding,
                                           options: options, partitions: figures.partitions)
            }
        } else if matcher == nil, options.key == nil,
                  let counted = try Backends.countRange(source, from: from ?? .beginning, until: until) {
            count = counted
        } else {
            count = try countByReading(source, from: from ?? .beginning, until: until, matcher: matcher,
                                       decoding: decoding, options: options, partitions: nil)
        }
        if Signals.stopRequested { return Signals.exitStatusAfterSignal ?? .failure }
        let output = OutputWriter()
        CountOutput.appendJSON(count, to: &output.buffer)
        do { try output.flush() } catch is StdoutClosed {}
        return .success
    }

    /// Reads the records from `from` up to `until` (the end as of the start) and counts those
    /// that pass: the copy loop of replay, into a target that keeps nothing.
    private static func countByReading(_ source: Endpoint, from: Position, until: Position?, matcher: RecordMatcher?,
                                       decoding: SchemaDecoding?, options: CopyOptions,
                                       partitions known: [Int32: Int64]?) throws -> SourceCount {
        let target = CountingTarget()
        var read: [Int32] = []
        try CopyLoop(follow: false, ridesOutOutages: false, range: (from, until), matcher: matcher, decoding: decoding,
                     source: {
                         let made = try Backends.copySource(for: source, options: options)
                         read = made.partitions
                         return made
                     },
                     target: { _ in target }).run()
        var count = SourceCount(kind: source.kindName, name: source.name, count: Int64(target.total))
        if source.has(.keysAndHeaders) {
            // Every partition read, also those where nothing was counted.
            var each = target.perPartition
            for partition in read + (known.map { Array($0.keys) } ?? []) where each[partition] == nil { each[partition] = 0 }
            count.partitions = each
        }
        return count
    }
}
