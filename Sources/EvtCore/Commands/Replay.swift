/// `evt replay-from-offset SOURCE POSITION [--until POSITION] [-f] [--to TARGET]`: history
/// from a position, as NDJSON on stdout or straight into any target (`--to`: the copy loop,
/// so key, headers, timestamp and value bytes carry over as copy-between carries them).
public enum ReplayCommand {
    public static func run(_ arguments: ParsedArguments, environment: [String: String]) throws -> ExitStatus {
        let spec = arguments.spec
        guard arguments.operands.count == 2 else {
            throw EvtError.usage("replay-from-offset needs a SOURCE and a POSITION, e.g. evt replay-from-offset topic:orders/3 1200.", usage: spec.usageLine)
        }
        let source = try Endpoint.parse(arguments.operands[0], environment: environment)
        let from = try Position.parse(arguments.operands[1], option: "POSITION")
        let until = try arguments.value("until").map { try Position.parse($0, option: "--until") }
        let follow = arguments.flag("follow")
        if follow && until != nil {
            throw EvtError.usage("-f follows past the end; --until stops at a position: give one of them.", usage: spec.usageLine)
        }
        try source.require([("replay-from-offset", true, .history)], usage: spec.usageLine)
        let limit = try arguments.number("count") ?? Int.max
        var options = CopyOptions()
        options.kafka = try arguments.kafkaSettings()
        options.key = try arguments.recordKey(for: source)
        options.follow = follow

        let rate = try arguments.value("rate").map { try parseRate($0, spec: spec) }
        let matcher = try arguments.recordMatcher()
        let output = OutputWriter()
        // Progress on a terminal, unless the records themselves go to that terminal.
        let progress = ProgressLine(verb: "replayed", when: arguments.value("to") != nil || !stdoutIsATerminal())
        defer { progress.clear() }
        let pacer = Pacer(eventsPerSecond: rate, progress: progress, output: output)
        let paced: (() throws -> Void)? = rate != nil || progress.isOn ? { try pacer.recordWritten() } : nil
        if arguments.value("to") == nil && arguments.value("wait-replicas") != nil {
            throw EvtError.usage("--wait-replicas waits for the replicas of a --to target; without --to the events go to stdout.", usage: spec.usageLine)
        }
        if let targetText = arguments.value("to") {
            return try replay(source, into: try Endpoint.parse(targetText, environment: environment), targetText: targetText,
                              range: (from, until), limit: limit, matcher: matcher, paced: paced, arguments: arguments, options: options,
                              environment: environment)
        }
        do {
            try CopyLoop(follow: follow, ridesOutOutages: false, range: (from, until), limit: limit, matcher: matcher,
                         decoding: try arguments.schemaDecoding(environment: environment), afterRecord: paced,
                         source: { try Backends.copySource(for: source, options: options) },
                         target: { _ in NDJSONTarget(output: output) }).run()
            try output.flush()
        } catch is StdoutClosed {}
        return Signals.exitStatusAfterSignal ?? .success
    }

    /// `--to TARGET`: the copy loop without a checkpoint, so a replay writes what
    /// copy-between writes (RecordMapping) with publish's delivery rules.
    private static func replay(_ source: Endpoint, into target: Endpoint, targetText: String,
                               range: (from: Position, until: Position?), limit: Int, matcher: RecordMatcher?,
                               paced: (() throws -> Void)?,
                               arguments: ParsedArguments, options: CopyOptions, environment: [String: String]) throws -> ExitStatus {
        var options = options
        options.timeoutMs = try arguments.timeoutMs()
        options.waitReplicas = try arguments.waitReplicas()
        try target.require([("--wait-replicas", options.waitReplicas != nil, .replicatedWrites)], usage: arguments.spec.usageLine)
        options.unit = "replayed event"   // numbered in replay order: event 1 is the first record replayed
        let decoding = try options.useSchemas(arguments, target: target, environment: environment)
        let loop = CopyLoop(follow: options.follow, range: range, limit: limit, matcher: matcher, decoding: decoding,
                            afterRecord: paced, timeoutMs: options.timeoutMs,
                            source: { try Backends.copySource(for: source, options: options) },
                            target: { try Backends.copyTarget(for: target, source: $0, checkpoint: nil, options: options) })
        do {
            try loop.run()
        } catch let error as EvtError where error.status == .usage {
            throw error
        } catch {
            let message = (error as? EvtError)?.message ?? "\(error)"
            Diagnostics.print("\(clause(message)). The replay stopped after \(loop.copied) acknowledged events.")
            return (error as? EvtError)?.status ?? .failure
        }
        Diagnostics.print("replayed \(loop.copied) event\(loop.copied == 1 ? "" : "s") into \(Endpoint.redactingPassword(targetText))")
        return Signals.exitStatusAfterSignal ?? .success
    }
}

extension ReplayCommand {
    /// `--rate 500/s` (or `500`): events per second.
    static func parseRate(_ text: String, spec: CommandSpec) throws -> Double {
        let number = text.hasSuffix("/s") ? String(text.dropLast(2)) : text
        guard let rate = Double(number), rate > 0 else {
            throw EvtError.usage("--rate \(text): expected events per second, e.g. --rate 500/s.", usage: spec.usageLine)
        }
        return rate
    }
}

/// `--rate`: holds each record back until its time (flushing first, so readers downstream
/// see records as they are released); counts each for the progress line.
final class Pacer {
    private let interval: Double?
    private let progress: ProgressLine
    private let output: OutputWriter
    private let started = monotonicMilliseconds()
    private var count = 0

    init(eventsPerSecond: Double?, progress: ProgressLine, output: OutputWriter) {
        interval = eventsPerSecond.map { 1000 / $0 }
        self.progress = progress
        self.output = output
    }

    func recordWritten() throws {
        count += 1
        progress.advance()
        guard let interval else { return }
        let due = started + Int(Double(count) * interval)
        let wait = due - monotonicMilliseconds()
        if wait > 0 {
            try output.flush()
            Signals.sleep(milliseconds: wait)
        }
    }
}
