#if canImport(Glibc)
import Glibc
#endif

/// `evt replay-from-offset SOURCE POSITION [--until POSITION] [-f] [--to TARGET]`: history
/// from a position, as NDJSON on stdout or straight into any target with publish's delivery
/// rules (`--to`: each record goes through the --envelope decoder, so key, headers, timestamp
/// and value bytes carry over).
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
        let limit = try arguments.number("count") ?? Int.max
        var sourceOptions = SourceOptions()
        sourceOptions.kafkaProperties = try PublishCommand.kafkaProperties(arguments)
        KafkaConfig.verbose = arguments.flag("verbose")

        var sink: EventSink?
        if let targetText = arguments.value("to") {
            var options = SinkOptions()
            options.kafkaProperties = sourceOptions.kafkaProperties
            options.timeoutMs = try arguments.value("timeout").map { try DurationParser.milliseconds($0, option: "--timeout") } ?? 30_000
            sink = try Backends.sink(for: try Endpoint.parse(targetText, environment: environment), options: options)
        }
        let reader = try Backends.source(for: source, options: sourceOptions)
        let output = OutputWriter()
        var sent = 0
        var failure: EvtError?
        if let sink {
            let decoder = InputDecoder(mode: .envelope, keyPath: nil)
            decoder.keepPartition = false   // the target partitions by key
            output.handOff = { records in
                var start = 0
                for index in 0..<records.count where records[index] == UInt8(ascii: "\n") {
                    sent += 1
                    try decoder.decode(UnsafeRawBufferPointer(rebasing: records[start..<index]), number: sent) {
                        try sink.send($0)
                    }
                    start = index + 1
                }
            }
        }
        let rate = try arguments.value("rate").map { try parseRate($0, spec: spec) }
        let pacer = Pacer(eventsPerSecond: rate, showProgress: isatty(2) != 0, output: output)
        if rate != nil || pacer.showProgress { output.afterRecord = { try pacer.recordWritten() } }
        defer { pacer.finish() }
        do {
            try reader.read(from: from, until: until, follow: follow, limit: limit, output: output)
            try output.flush()
        } catch is StdoutClosed {
        } catch let stopped as SinkStopped {
            failure = EvtError.failure("\(stopped.reason); stopped the replay after \(sent) events.")
        } catch {
            // With --to, what was already sent is still waited for and reported below.
            guard sink != nil else { throw error }
            failure = error as? EvtError ?? EvtError.failure("\(error)")
        }
        guard let sink else { return Signals.exitStatusAfterSignal ?? .success }
        sink.finish()
        if let failure { Diagnostics.print(failure.message) }
        // Numbered in replay order: event 1 is the first record replayed.
        for message in sink.tally.summary(sent: sent, unit: "replayed event") { Diagnostics.print(message) }
        if failure != nil || !sink.tally.allDelivered(sent: sent) { return .failure }
        Diagnostics.print("replayed \(sent) event\(sent == 1 ? "" : "s") into \(Endpoint.redactingPassword(arguments.value("to")!))")
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
/// see records as they are released); on a terminal, a progress line on stderr once a second.
final class Pacer {
    let showProgress: Bool
    private let interval: Double?
    private let output: OutputWriter
    private let started = monotonicMilliseconds()
    private var count = 0
    private var lastShown = monotonicMilliseconds()

    init(eventsPerSecond: Double?, showProgress: Bool, output: OutputWriter) {
        interval = eventsPerSecond.map { 1000 / $0 }
        self.showProgress = showProgress
        self.output = output
    }

    func recordWritten() throws {
        count += 1
        if let interval {
            let due = started + Int(Double(count) * interval)
            let wait = due - monotonicMilliseconds()
            if wait > 0 {
                try output.flush()
                Signals.sleep(milliseconds: wait)
            }
        }
        if showProgress && count % 256 == 0 {
            let now = monotonicMilliseconds()
            if now - lastShown >= 1000 {
                lastShown = now
                let seconds = Double(max(now - started, 1)) / 1000
                EvtMain.writeStderr("\revt: replayed \(count) events, \(Int(Double(count) / seconds))/s ")
            }
        }
    }

    func finish() {
        if showProgress && monotonicMilliseconds() - started >= 1000 { EvtMain.writeStderr("\n") }
    }
}
